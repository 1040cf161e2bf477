"""The metrics page's SVG charts: axes, a value on every column, the benchmark line, misses in words."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from bot.web.charts import ChartPoint, bar_chart_svg, benchmark_words, format_value
from bot.web.metrics import series_csv
from integrations.dispensary.metrics import Metric

SVG = "{http://www.w3.org/2000/svg}"
MONTHS = ["2026-06", "2026-07", "2026-08", "2026-09", "2026-10", "2026-11"]


def _chart(values: list[float | None], *, unit: str = "%", bench: float | None = 70.0, better: str = "higher",
           strict: bool = False) -> ET.Element:  # fmt: skip
    metric = Metric("outreach_response", "Replies", None, unit, bench, better, 0, "", strict)  # type: ignore[arg-type]
    points = []
    for month, value in zip(MONTHS, values, strict=True):
        judged = Metric(metric.key, "", value, unit, bench, better, 0, "", strict).meets_benchmark  # type: ignore[arg-type]
        points.append(ChartPoint(month, value, judged))
    svg = bar_chart_svg(points, key="outreach_response", label="Replies", unit=unit, benchmark=bench,
                        better=better, strict=strict)  # fmt: skip
    return ET.fromstring(str(svg))


def _texts(root: ET.Element, cls: str) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text") if t.get("class") == cls]


def test_a_percentage_chart_has_axes_values_and_a_benchmark_line() -> None:
    root = _chart([None, 40.0, 0.0, 75.0, 100.0, 58.3])
    assert root.get("role") == "img" and "Nov 2026 58.3%" in (root.get("aria-label") or "")
    ticks = [t.text for t in root.iter(f"{SVG}text") if t.get("text-anchor") == "end"]
    assert ticks == ["0%", "25%", "50%", "75%", "100%"] and _texts(root, "unit") == ["per cent"]
    assert _texts(root, "value") == ["no data", "40%", "0%", "75%", "100%", "58.3%"]
    bars = {b.get("data-month"): b for b in root.iter(f"{SVG}rect") if b.get("class") == "bar"}
    full = float(bars["2026-10"].get("height") or 0)
    # The column's height is its value on a 0-100 axis: 58.3% is not drawn as nothing (it "read 0").
    assert float(bars["2026-11"].get("height") or 0) == pytest.approx(full * 0.583, abs=0.2)
    assert float(bars["2026-08"].get("height") or 0) == 0.0
    line = next(el for el in root.iter(f"{SVG}line") if el.get("class") == "benchmark")
    base = float(bars["2026-10"].get("y") or 0) + full
    assert base - float(line.get("y1") or 0) == pytest.approx(full * 0.70, abs=0.2)
    assert "≥ 70%" in [t.text for t in root.iter(f"{SVG}text")]
    # Months under the benchmark say so in words, and are hatched, not only red.
    assert _texts(root, "flag") == ["misses"] * 3  # 40%, 0% and 58.3%
    assert bars["2026-07"].get("fill") == "url(#miss-outreach_response)"
    assert not any(el.tag.endswith(("script", "foreignObject")) for el in root.iter())
    assert not any(name.startswith("on") or name == "style" for el in root.iter() for name in el.attrib)


def test_a_days_chart_scales_to_its_values_and_strict_bounds_read_as_such() -> None:
    root = _chart([1.0, 2.0, 7.5, None, None, 3.0], unit="days", bench=2.0, better="lower", strict=True)
    ticks = [t.text for t in root.iter(f"{SVG}text") if t.get("text-anchor") == "end"]
    assert ticks[0] == "0" and float(ticks[-1] or 0) >= 7.5 and _texts(root, "unit") == ["days"]
    assert _texts(root, "value") == ["1 d", "2 d", "7.5 d", "no data", "no data", "3 d"]
    assert _texts(root, "flag") == ["misses"] * 3  # 2 days is not under "< 2 days"
    assert benchmark_words(2.0, "days", "lower", True) == "< 2 days"
    assert benchmark_words(10.0, "%", "lower", False) == "≤ 10%"
    assert format_value(1.0, "days") == "1 day" and format_value(None, "%") == "–"


def test_the_charts_figures_download_neutralises_formula_cells() -> None:
    metric = Metric("opt_out", '=HYPERLINK("x")', 3.0, "%", None, "lower", 4, "")
    text = series_csv([metric], {"opt_out": [("2026-10", -1.5), ("2026-11", None)]}, site_id="@site")
    header, first, second = text.splitlines()
    assert header == "site_id,month,key,label,value,unit,benchmark,against_benchmark"
    assert first.startswith('\'@site,2026-10,opt_out,"\'=HYPERLINK(""x"")",-1.5,%,,')
    assert second.endswith(",,%,,")
