"""Server-rendered SVG charts for the metrics page: axes, value labels, a benchmark line, misses in words.

No script and no chart library: each chart is a small SVG string built from numbers we format ourselves
(every text is escaped anyway), so it renders under the strict Content-Security-Policy and without
JavaScript. A month that misses its benchmark is drawn hatched and labelled "misses" (never colour alone).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape

__all__ = ["ChartPoint", "bar_chart_svg", "benchmark_words", "format_value", "month_words"]

WIDTH, HEIGHT = 440, 230
LEFT, RIGHT, TOP, BOTTOM = 46, 78, 22, 42
INK, MUTED, GRID = "#1b1f24", "#5a6270", "#d5d9e0"
MEETS, MISSES, UNJUDGED = "#0b5cad", "#b3261e", "#5a6270"
Scale = Callable[[float], float]
# A white outline under a label, so it stays readable where it crosses the benchmark line or a gridline.
_HALO = {"stroke": "#ffffff", "stroke_width": "3", "paint_order": "stroke", "stroke_linejoin": "round"}


@dataclass(frozen=True, slots=True)
class ChartPoint:
    """One month of a metric: its value (None when nothing could be measured) and whether it meets."""

    month: str  # YYYY-MM
    value: float | None
    meets: bool | None


def format_value(value: float | None, unit: str) -> str:
    """``58.3%``, ``2 days``, ``1.5 days``, or ``–`` for no value (the table and the charts use this one)."""
    if value is None or not math.isfinite(value):
        return "–"
    number = f"{value:g}"
    if unit == "%":
        return f"{number}%"
    return f"{number} day" if unit == "days" and value == 1 else f"{number} {unit}"


def benchmark_words(benchmark: float | None, unit: str, better: str, strict: bool) -> str:
    """The benchmark as a bound: ``< 5%``, ``≤ 10%``, ``> 90%``, ``≥ 71.6%`` (empty when there is none)."""
    if benchmark is None:
        return ""
    if better == "lower":
        sign = "<" if strict else "≤"
    else:
        sign = ">" if strict else "≥"
    return f"{sign} {format_value(benchmark, unit)}"


def month_words(month: str, *, year: bool = True) -> str:
    """``2026-10`` -> ``Oct 2026`` (or ``Oct``)."""
    at = datetime.strptime(month, "%Y-%m")
    return at.strftime("%b %Y" if year else "%b")


def _nice_step(raw: float) -> float:
    magnitude = math.pow(10.0, math.floor(math.log10(raw)))
    return next(f * magnitude for f in (1.0, 2.0, 2.5, 5.0, 10.0) if f * magnitude >= raw)


def _axis(values: Sequence[float], unit: str) -> tuple[float, list[float]]:
    """The top of the value axis and its ticks: 0-100 for percentages, a round number of days otherwise."""
    if unit == "%":
        return 100.0, [0.0, 25.0, 50.0, 75.0, 100.0]
    high = max([*values, 1.0]) * 1.2
    step = _nice_step(high / 4)
    top = step * math.ceil(high / step)
    return top, [step * i for i in range(int(round(top / step)) + 1)]


def _tick(value: float, unit: str) -> str:
    return f"{value:g}%" if unit == "%" else f"{value:g}"


def _text(x: float, y: float, words: str, **attrs: str) -> str:
    extra = "".join(f' {k.rstrip("_").replace("_", "-")}="{escape(v)}"' for k, v in attrs.items())
    return f'<text x="{x:.1f}" y="{y:.1f}"{extra}>{escape(words)}</text>'


def _frame(ticks: Sequence[float], unit: str, to_y: Scale) -> list[str]:
    """Gridlines, tick labels and the two axes, with the unit over the value axis."""
    parts: list[str] = []
    for value in ticks:
        at = to_y(value)
        parts.append(
            f'<line x1="{LEFT}" y1="{at:.1f}" x2="{WIDTH - RIGHT}" y2="{at:.1f}" stroke="{GRID}" '
            'stroke-width="1"/>'
        )
        parts.append(
            _text(LEFT - 6, at + 4, _tick(value, unit), text_anchor="end", font_size="11", fill=MUTED)
        )
    base = to_y(0.0)
    parts.append(
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{base:.1f}" stroke="{INK}" stroke-width="1"/>'
    )
    parts.append(
        f'<line x1="{LEFT}" y1="{base:.1f}" x2="{WIDTH - RIGHT}" y2="{base:.1f}" stroke="{INK}" '
        'stroke-width="1"/>'
    )
    parts.append(
        _text(2, TOP - 8, "per cent" if unit == "%" else unit, font_size="11", fill=MUTED, class_="unit")
    )
    return parts


def _bar(point: ChartPoint, index: int, slot: float, unit: str, to_y: Scale, pattern: str) -> list[str]:
    centre = LEFT + slot * (index + 0.5)
    base = to_y(0.0)
    label = month_words(point.month, year=index == 0 or point.month.endswith("-01"))
    parts = [_text(centre, base + 16, label.split(" ")[0], text_anchor="middle", font_size="11", fill=INK)]
    if " " in label:
        parts.append(_text(centre, base + 30, label.split(" ")[1], text_anchor="middle", font_size="10",
                           fill=MUTED))  # fmt: skip
    if point.value is None:
        parts.append(_text(centre, base - 6, "no data", text_anchor="middle", font_size="10", fill=MUTED,
                           class_="value", data_month=point.month))  # fmt: skip
        return parts
    width = min(34.0, slot * 0.6)
    top = to_y(max(point.value, 0.0))
    colour = {True: MEETS, False: MISSES, None: UNJUDGED}[point.meets]
    fill = f"url(#{pattern})" if point.meets is False else colour
    verdict = {True: "meets the benchmark", False: "misses the benchmark", None: "no benchmark"}[point.meets]
    parts.append(
        f'<rect x="{centre - width / 2:.1f}" y="{top:.1f}" width="{width:.1f}" '
        f'height="{max(base - top, 0.0):.1f}" fill="{fill}" stroke="{colour}" stroke-width="1.5" '
        f'class="bar" data-month="{point.month}" data-value="{point.value:g}">'
        f"<title>{escape(month_words(point.month))}: {escape(format_value(point.value, unit))}, "
        f"{verdict}</title></rect>"
    )
    words = format_value(point.value, unit).replace(" days", " d").replace(" day", " d")
    label_y = top - (18 if point.meets is False else 5)
    parts.append(_text(centre, label_y, words, text_anchor="middle", font_size="11", font_weight="600",
                       fill=INK, class_="value", data_month=point.month, **_HALO))  # fmt: skip
    if point.meets is False:
        parts.append(_text(centre, top - 5, "misses", text_anchor="middle", font_size="10", font_weight="700",
                           fill=MISSES, class_="flag", **_HALO))  # fmt: skip
    return parts


def _benchmark(value: float, words: str, to_y: Scale) -> list[str]:
    at = to_y(value)
    return [
        f'<line x1="{LEFT}" y1="{at:.1f}" x2="{WIDTH - RIGHT}" y2="{at:.1f}" stroke="{INK}" '
        'stroke-width="1.5" stroke-dasharray="6 4" class="benchmark"/>',
        _text(WIDTH - RIGHT + 6, at - 2, "benchmark", font_size="10", fill=MUTED),
        _text(WIDTH - RIGHT + 6, at + 11, words, font_size="11", font_weight="600", fill=INK),
    ]


def bar_chart_svg(
    points: Sequence[ChartPoint],
    *,
    key: str,
    label: str,
    unit: str,
    benchmark: float | None,
    better: str,
    strict: bool,
) -> Markup:
    """A column chart of a metric's months with a value axis, month labels, a value on every column, the
    benchmark as a dashed line with its bound in words, and "misses" over every month that misses it.

    Args:
        points: the months, oldest first.
        key: the metric's key (makes the chart's ids unique on the page).
        label: the metric in words (the chart's accessible name).
        unit: ``%`` (axis 0-100) or ``days`` (axis from 0 to a round number above the largest value).
        benchmark: the benchmark value, or None.
        better: ``lower`` or ``higher``.
        strict: the benchmark is a strict bound.
    """
    values = [p.value for p in points if p.value is not None and math.isfinite(p.value)]
    bench = benchmark if benchmark is not None and math.isfinite(benchmark) else None
    top, ticks = _axis([*values, *([bench] if bench is not None else [])], unit)
    plot = HEIGHT - TOP - BOTTOM

    def y(value: float) -> float:
        return HEIGHT - BOTTOM - plot * min(value, top) / top

    words = benchmark_words(bench, unit, better, strict)
    summary = "; ".join(f"{month_words(p.month)} {format_value(p.value, unit)}" for p in points)
    name = f"{label}, last {len(points)} months: {summary}" + (f". Benchmark {words}." if words else ".")
    pattern = f"miss-{key}"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
        f'height="{HEIGHT}" role="img" aria-label="{escape(name)}" class="chart-svg" id="chart-svg-{key}">',
        f"<title>{escape(name)}</title>",
        f'<defs><pattern id="{pattern}" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)">'
        f'<rect width="6" height="6" fill="#fdecea"/><line x1="0" y1="0" x2="0" y2="6" stroke="{MISSES}" '
        'stroke-width="3"/></pattern></defs>',
        *_frame(ticks, unit, y),
    ]
    slot = (WIDTH - LEFT - RIGHT) / max(len(points), 1)
    for index, point in enumerate(points):
        parts += _bar(point, index, slot, unit, y, pattern)
    if bench is not None:
        parts += _benchmark(bench, words, y)
    parts.append("</svg>")
    return Markup("".join(parts))
