"""The simulation report as one self-contained HTML page: inline CSS, server-rendered SVG charts, no script."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

__all__ = ["render_html"]

# Colour-blind-safe (Okabe-Ito), one per queue / series; text labels carry the meaning too.
_COLOURS = ("#D55E00", "#E69F00", "#0072B2", "#009E73", "#CC79A7", "#56B4E9")
_QUEUE_NAMES = {
    "urgent_clinical": "Urgent clinical",
    "clinical": "Clinical",
    "refill": "Refill",
    "financial": "Financial",
    "general": "General",
}
_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:62rem;
padding:0 1rem;color:#1a1a1a}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0 1rem}th,td{border-bottom:1px solid #ddd;padding:.25rem .6rem;
text-align:right}th:first-child,td:first-child{text-align:left}caption{text-align:left;font-weight:600}
.note{color:#555;font-size:.9rem}svg{max-width:100%;height:auto}figure{margin:1rem 0}
figcaption{font-weight:600;margin-bottom:.3rem}
"""


def render_html(report: dict[str, Any]) -> str:
    """The page for a report made by ``bot.sim.report.weekly_report``; the same input gives the same bytes."""
    weeks: list[dict[str, Any]] = report["weeks"]
    sim = report["simulation"]
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>midbot simulation</title>",
        f"<style>{_CSS}</style></head><body><main>",
        "<h1>What midbot would do: a simulated period</h1>",
        _parameters(sim, report["sites"]),
        "<h2>Texts per week</h2>",
        _figure(
            "Texts midbot sends, per week",
            _bars(
                [f"Week {w['week']}" for w in weeks],
                [
                    ("Outreach", [w["outreach_texts"] for w in weeks]),
                    ("Replies and follow-ups", [w["reply_texts"] for w in weeks]),
                ],
                stacked=True,
            ),
        ),
        _weekly_table(weeks, report["totals"]),
        "<h2>Tasks for the pharmacy team</h2>",
        _figure("Tasks opened per day, by queue", _task_days(weeks, "opened")),
        _figure("SLA load: tasks whose SLA deadline falls on each day, by queue", _task_days(weeks, "due")),
        _queue_table(report),
        "<h2>Refill reminders</h2>",
        _figure(
            "Refill reminders that arrived before the supply ran out",
            _bars(
                [f"Week {w['week']}" for w in weeks],
                [
                    ("Before run-out", [w["reminders_before_run_out"] for w in weeks]),
                    (
                        "On or after run-out",
                        [w["refill_reminders"] - w["reminders_before_run_out"] for w in weeks],
                    ),
                ],
                stacked=True,
            ),
        ),
        _rates(sim),
        "</main></body></html>",
    ]
    return "\n".join(parts) + "\n"


def _parameters(sim: dict[str, Any], sites: list[dict[str, Any]]) -> str:
    names = ", ".join(f"{escape(s['name'])} ({escape(s['id'])})" for s in sites)
    rows = [
        ("Sites", names),
        ("Patients", escape(str(sim.get("patients")))),
        ("Period", f"{escape(str(sim['start']))} to {escape(str(sim['end']))} ({sim['weeks']} weeks)"),
        ("Source", escape(str(sim.get("source")))),
        ("Programs", escape(str(sim.get("programs")))),
        ("Seed", escape(str(sim.get("seed")))),
        ("Price per segment", f"${escape(str(sim.get('price_per_segment')))}"),
    ]
    body = "".join(f"<tr><th scope=row>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return f"<table><caption>Simulation</caption>{body}</table>"


def _weekly_table(weeks: list[dict[str, Any]], totals: dict[str, Any]) -> str:
    head = (
        "<tr><th scope=col>Week</th><th scope=col>Texts</th><th scope=col>Segments</th>"
        "<th scope=col>Cost</th><th scope=col>Replies in</th><th scope=col>Reminders</th>"
        "<th scope=col>Before run-out</th><th scope=col>Opt-outs</th></tr>"
    )
    rows = [
        _row(
            f"{w['week']} ({w['from']} to {w['to']})",
            [w["texts"], w["segments"], f"${w['cost']:.2f}", w["replies_received"], w["refill_reminders"]]
            + [w["reminders_before_run_out"], w["opt_outs"]],
        )
        for w in weeks
    ]
    rows.append(
        _row(
            "Total",
            [totals["texts"], totals["segments"], f"${totals['cost']:.2f}", totals["replies_received"]]
            + [totals["refill_reminders"], totals["reminders_before_run_out"], totals["opt_outs"]],
        )
    )
    return f"<table><caption>Weekly figures</caption>{head}{''.join(rows)}</table>"


def _row(label: str, cells: Sequence[object]) -> str:
    return (
        f"<tr><th scope=row>{escape(label)}</th>"
        + "".join(f"<td>{escape(str(c))}</td>" for c in cells)
        + "</tr>"
    )


def _queue_table(report: dict[str, Any]) -> str:
    totals = report["totals"]
    sla = report["sites"][0]["sla"] if report["sites"] else {}
    head = "<tr><th scope=col>Queue</th><th scope=col>Tasks</th><th scope=col>Per day</th><th scope=col>SLA</th></tr>"
    rows = [
        _row(
            _QUEUE_NAMES.get(q, q),
            [totals["tasks"][q], f"{totals['tasks_per_day_average'][q]:.2f}", sla.get(q, "")],
        )
        for q in totals["tasks"]
    ]
    return f"<table><caption>Tasks per queue</caption>{head}{''.join(rows)}</table>"


def _task_days(weeks: list[dict[str, Any]], key: str) -> str:
    days = [day for w in weeks for day in w["tasks_per_day"]]
    per_day = {day: counts for w in weeks for day, counts in w["tasks_per_day"].items()}
    queues = list(next(iter(per_day.values())).keys()) if per_day else []
    series = [(_QUEUE_NAMES.get(q, q), [per_day[d][q][key] for d in days]) for q in queues]
    return _bars([d[5:] for d in days], series, stacked=True)


def _rates(sim: dict[str, Any]) -> str:
    rates = sim.get("rates") or {}
    rows = "".join(_row(name.replace("_", " "), [value]) for name, value in rates.items())
    return (
        "<h2>Patient behaviour used</h2>"
        '<p class="note">Published rates from midbot\'s DOMAIN.md (PRO-TECT, Carevive, PENNY-GI, PMC3208889, '
        "Jeong et al., Doshi et al.) and marked assumptions; see <code>bot/sim/behaviour.py</code>.</p>"
        f"<table><caption>Rates</caption>{rows}</table>"
    )


def _figure(caption: str, svg: str) -> str:
    return f"<figure><figcaption>{escape(caption)}</figcaption>{svg}</figure>"


def _bars(labels: list[str], series: list[tuple[str, list[int]]], *, stacked: bool) -> str:
    """A bar chart as SVG: one group per label, the series stacked (or side by side), a legend, value axis."""
    width, height, left, top, bottom = 760, 300, 44, 34, 46
    plot_w, plot_h = width - left - 10, height - top - bottom
    totals = [sum(s[1][i] for s in series) for i in range(len(labels))] if stacked else []
    peak = max(totals or [v for _n, vals in series for v in vals] or [0])
    scale = _nice(peak)
    slot = plot_w / max(1, len(labels))
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'font-family="system-ui,sans-serif" font-size="11">'
    ]
    out += _legend([name for name, _v in series], left)
    for tick in range(5):
        value = scale * tick / 4
        y = top + plot_h - plot_h * tick / 4
        out.append(f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{value:g}</text>')
    every = max(1, len(labels) // 14)
    for i, label in enumerate(labels):
        x0 = left + slot * i
        out += _group(i, x0, slot, series, stacked, scale, top, plot_h)
        if i % every == 0:
            out.append(
                f'<text x="{x0 + slot / 2:.1f}" y="{height - bottom + 16}" text-anchor="middle">'
                f"{escape(label)}</text>"
            )
    out.append("</svg>")
    return "".join(out)


def _group(
    i: int,
    x0: float,
    slot: float,
    series: list[tuple[str, list[int]]],
    stacked: bool,
    scale: float,
    top: int,
    plot_h: int,
) -> list[str]:
    out: list[str] = []
    base = float(top + plot_h)
    bar_w = slot * 0.7 if stacked else slot * 0.7 / max(1, len(series))
    for k, (name, values) in enumerate(series):
        value = values[i]
        h = plot_h * value / scale if scale else 0.0
        x = x0 + slot * 0.15 + (0 if stacked else bar_w * k)
        y = base - h
        if value:
            out.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{_COLOURS[k % len(_COLOURS)]}"><title>{escape(name)}: {value}</title></rect>'
            )
        if stacked:
            base = y
    return out


def _legend(names: list[str], left: int) -> list[str]:
    out, x = [], float(left)
    for k, name in enumerate(names):
        out.append(f'<rect x="{x:.1f}" y="8" width="12" height="12" fill="{_COLOURS[k % len(_COLOURS)]}"/>')
        out.append(f'<text x="{x + 16:.1f}" y="18">{escape(name)}</text>')
        x += 24 + 7 * len(name)
    return out


def _nice(peak: float) -> float:
    """A round axis maximum at or above ``peak`` (1, 2, 2.5 or 5 times a power of ten, at least 4)."""
    if peak <= 4:
        return 4.0
    magnitude = 10 ** (len(str(int(peak))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= peak:
            return float(step * magnitude)
    return float(10 * magnitude)
