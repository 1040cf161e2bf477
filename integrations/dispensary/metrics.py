"""Program metrics per site and month, beside NCODA benchmarks: computations, CSV and small SVG charts.

Definitions (months are the site's local calendar months; outcomes are judged as of ``now``):

* ``primary_abandonment`` — prescriptions received in the month (received event, else written date) that
  were declined or not dispensed within 30 days; pending ones are left out, prescriber stops too.
* ``time_to_fill`` — median days from written (else received) to first dispense, first fills in the month.
* ``pdc_adherent`` — share of patient–drugs with PDC ≥ 80 % over the 180 days ending with the month
  (PQA-eligible periods only: index date ≥ 91 days before the end). Read against the share reported for
  specialty pharmacies (71.6 %, Stokes 2017), which measures the same thing.
* ``mean_pdc`` — the mean PDC of the same patient–drugs: an adherence rate, read against NCODA's
  "adherence > 90 %" (a share of patients above a cut-off is not an adherence rate, so the two are not mixed).
* ``secondary_abandonment`` — patient–drugs whose supply ran out in the month (early refills carried
  forward) and that got no refill within 30 days; planned stops (discontinued/completed) excluded.
* ``outreach_response`` — outreach texts sent in the month that got a reply from the patient within 72 h.
* ``sla_compliance`` — tasks due in the month resolved by their due time (open and overdue ones count as
  missed; open ones not yet due are left out).
* ``opt_out`` — patients who opted out in the month over patients texted in the month.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import utcnow
from bot.db.audit import csv_cell
from bot.db.models import (
    ConsentEvent,
    Fill,
    Message,
    Outreach,
    Patient,
    Prescription,
    PrescriptionEvent,
    Site,
    Task,
)
from integrations.dispensary.abandonment import primary_abandonment
from integrations.dispensary.adherence import FillRecord, NoFillInPeriod, pdc
from integrations.dispensary.computed import PDC_WINDOW_DAYS, local_date, site_zone

__all__ = [
    "METRIC_KEYS",
    "Metric",
    "metrics_csv",
    "monthly_series",
    "parse_month",
    "program_metrics",
    "sparkline_svg",
]

_LOGGER = logging.getLogger(__name__)

Better = Literal["lower", "higher"]
_PLANNED_STOPS = frozenset({"discontinued", "completed"})
_FAILED = frozenset({"failed", "undelivered"})
RESPONSE_WINDOW = timedelta(hours=72)


@dataclass(frozen=True, slots=True)
class Metric:
    """One program figure for a site and month, with the benchmark it is read against.

    Attributes:
        key: stable identifier (see METRIC_KEYS).
        label: what it is, in words.
        value: the figure (a percentage 0-100 or days), or None when nothing could be measured.
        unit: "%" or "days".
        benchmark: the reference figure (NCODA where it has one), or None.
        better: whether "lower" or "higher" values are better.
        n: how many items the figure is computed over (its denominator).
        benchmark_label: where the benchmark comes from, with the industry figure when known.
        strict: the benchmark is a strict bound ("< 5%", "> 90%"): a value equal to it does not meet it.
    """

    key: str
    label: str
    value: float | None
    unit: str
    benchmark: float | None
    better: Better
    n: int
    benchmark_label: str = ""
    strict: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    @property
    def meets_benchmark(self) -> bool | None:
        """Whether the value is on the good side of the benchmark (None when either is missing)."""
        if self.value is None or self.benchmark is None:
            return None
        if self.value == self.benchmark:
            return not self.strict
        return self.value < self.benchmark if self.better == "lower" else self.value > self.benchmark


@dataclass(frozen=True, slots=True)
class _Spec:
    label: str
    unit: str
    benchmark: float | None
    better: Better
    benchmark_label: str
    strict: bool = False


# Each figure is read against a benchmark that measures the same thing (DOMAIN "Benchmarks for the metrics
# page"): NCODA's "adherence > 90%" is an adherence rate (mean PDC), not the share of patients at PDC >= 80%.
_SPECS: dict[str, _Spec] = {
    "primary_abandonment": _Spec(
        "Primary abandonment", "%", 5.0, "lower", "NCODA MID < 5% (industry 20%)", strict=True
    ),
    "time_to_fill": _Spec(
        "Median time to fill", "days", 2.0, "lower", "NCODA MID < 2 days (industry 14-30)", strict=True
    ),
    "mean_pdc": _Spec(
        "Mean adherence (PDC)", "%", 90.0, "higher", "NCODA MID adherence > 90% (industry 60%)", strict=True
    ),
    "pdc_adherent": _Spec(
        "Patient-drugs with PDC >= 80%",
        "%",
        71.6,
        "higher",
        "Specialty pharmacies 71.6%, retail 56.4% (Stokes et al. 2017)",
    ),
    "secondary_abandonment": _Spec(
        "Secondary abandonment", "%", 10.0, "lower", "NCODA MID 10% (industry 30%)"
    ),
    "outreach_response": _Spec(
        "Outreach replied to within 72 h",
        "%",
        70.0,
        "higher",
        "Penn PENNY-GI check-in engagement after redesign: 70%",
    ),
    "sla_compliance": _Spec("Tasks resolved within SLA", "%", None, "higher", ""),
    "opt_out": _Spec("Opt-out rate", "%", None, "lower", ""),
}
METRIC_KEYS: tuple[str, ...] = tuple(_SPECS)


def parse_month(month: str) -> tuple[date, date]:
    """``YYYY-MM`` -> (first day, first day of the next month).

    Raises:
        ValueError: not a YYYY-MM month.
    """
    try:
        first = datetime.strptime(month, "%Y-%m").date()
    except (TypeError, ValueError):
        raise ValueError(f"month: expected YYYY-MM, got {month!r}") from None
    if len(month) != 7:
        raise ValueError(f"month: expected YYYY-MM, got {month!r}")
    nxt = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    return first, nxt


def _month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _shift_month(month: str, back: int) -> str:
    first, _ = parse_month(month)
    index = first.year * 12 + first.month - 1 - back
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


# --- loading ---------------------------------------------------------------------------------------------


@dataclass
class _Therapy:
    rx: Prescription
    fills: list[FillRecord] = field(default_factory=list)
    received_on: date | None = None
    declined_on: date | None = None

    @property
    def start_on(self) -> date | None:
        """When the time to fill starts: written (NCODA), else received."""
        return self.rx.written_on or self.received_on

    @property
    def first_fill(self) -> date | None:
        return min((f.dispensed_on for f in self.fills), default=None)


@dataclass
class _SiteData:
    zone: ZoneInfo
    therapies: list[_Therapy]
    outreach: list[Message]
    inbound: dict[str, list[datetime]]
    texted: list[tuple[str, datetime]]
    tasks: list[Task]
    opt_outs: list[tuple[str, datetime]]


async def _load_therapies(session: AsyncSession, site_id: str, zone: ZoneInfo) -> list[_Therapy]:
    rxs = {
        rx.id: _Therapy(rx)
        for rx in await session.scalars(select(Prescription).where(Prescription.site_id == site_id))
    }
    if not rxs:
        return []
    ids = list(rxs)
    for fill in await session.scalars(select(Fill).where(Fill.prescription_id.in_(ids))):
        if fill.days_supply >= 1:
            rxs[fill.prescription_id].fills.append(FillRecord(fill.dispensed_on, fill.days_supply))
    events = await session.scalars(
        select(PrescriptionEvent)
        .where(
            PrescriptionEvent.prescription_id.in_(ids), PrescriptionEvent.name.in_(["received", "declined"])
        )
        .order_by(PrescriptionEvent.occurred_at)
    )
    for event in events:
        therapy = rxs[event.prescription_id]
        day = local_date(event.occurred_at, zone)
        if event.name == "received" and therapy.received_on is None:
            therapy.received_on = day
        elif event.name == "declined" and therapy.declined_on is None:
            therapy.declined_on = day
    for therapy in rxs.values():
        if therapy.received_on is None:
            therapy.received_on = therapy.rx.written_on
    return list(rxs.values())


async def _load(session: AsyncSession, site_id: str, start: datetime, end: datetime) -> _SiteData:
    site = await session.get(Site, site_id)
    if site is None:
        raise LookupError(f"site: unknown site {site_id!r}")
    zone = site_zone(site)
    therapies = await _load_therapies(session, site_id, zone)
    outreach_ids = select(Outreach.message_id).where(Outreach.message_id.is_not(None))
    messages = list(
        await session.scalars(
            select(Message)
            .where(
                Message.site_id == site_id,
                Message.created_at >= start,
                Message.created_at < end + RESPONSE_WINDOW,
            )
            .order_by(Message.created_at)
        )
    )
    linked = set(
        await session.scalars(
            outreach_ids.join(Message, Message.id == Outreach.message_id).where(
                Message.site_id == site_id, Message.created_at >= start, Message.created_at < end
            )
        )
    )
    outreach = [
        m
        for m in messages
        if m.direction == "out" and m.created_at < end and (m.kind == "outreach" or m.id in linked)
    ]
    inbound: dict[str, list[datetime]] = {}
    for m in messages:
        if m.direction == "in" and m.patient_id:
            inbound.setdefault(m.patient_id, []).append(m.created_at)
    texted = [
        (m.patient_id, m.created_at)
        for m in messages
        if m.direction == "out" and m.patient_id and m.created_at < end
    ]
    tasks = list(
        await session.scalars(
            select(Task).where(Task.site_id == site_id, Task.due_by >= start, Task.due_by < end)
        )
    )
    opt_outs = [
        (e.patient_id, e.created_at)
        for e in await session.scalars(
            select(ConsentEvent)
            .join(Patient, Patient.id == ConsentEvent.patient_id)
            .where(Patient.site_id == site_id, ConsentEvent.change == "opt_out")
            .where(ConsentEvent.created_at >= start, ConsentEvent.created_at < end)
        )
    ]
    return _SiteData(zone, therapies, outreach, inbound, texted, tasks, opt_outs)


# --- computing -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Window:
    first: date
    nxt: date
    start: datetime
    end: datetime
    today: date
    now: datetime

    def holds(self, day: date | None) -> bool:
        return day is not None and self.first <= day < self.nxt


def _window(month: str, zone: ZoneInfo, now: datetime) -> _Window:
    first, nxt = parse_month(month)
    start = datetime.combine(first, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(nxt, time(0), tzinfo=zone).astimezone(UTC)
    return _Window(first, nxt, start, end, local_date(now, zone), now)


def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def _primary(data: _SiteData, w: _Window, window_days: int) -> tuple[float | None, int]:
    abandoned = scored = 0
    for t in data.therapies:
        if not w.holds(t.received_on) or t.received_on is None:
            continue
        if t.rx.status in _PLANNED_STOPS and t.declined_on is None and not t.fills:
            continue  # the prescriber stopped it before it was filled: not the patient's decision
        verdict = primary_abandonment(
            t.received_on, t.first_fill, as_of=w.today, declined_on=t.declined_on, window_days=window_days
        )
        if verdict.status == "pending":
            continue
        scored += 1
        abandoned += verdict.abandoned
    return _pct(abandoned, scored), scored


def _time_to_fill(data: _SiteData, w: _Window) -> tuple[float | None, int]:
    days = [
        (t.first_fill - t.start_on).days
        for t in data.therapies
        if t.first_fill is not None
        and t.start_on is not None
        and w.holds(t.first_fill)
        and t.first_fill >= t.start_on
    ]
    return (round(float(statistics.median(days)), 1) if days else None), len(days)


def _pdc_end(t: _Therapy, w: _Window, zone: ZoneInfo) -> date:
    end = min(w.nxt - timedelta(days=1), w.today)
    if t.rx.status in _PLANNED_STOPS and t.rx.status_changed_at is not None:
        end = min(end, local_date(t.rx.status_changed_at, zone))
    return end


def _pdc_results(data: _SiteData, w: _Window, threshold: float) -> list[tuple[float, bool]]:
    """(PDC, adherent) of every patient-drug with a PQA-eligible period ending with the month."""
    out: list[tuple[float, bool]] = []
    for t in data.therapies:
        if not t.fills:
            continue
        end = _pdc_end(t, w, data.zone)
        try:
            result = pdc(t.fills, end - timedelta(days=PDC_WINDOW_DAYS - 1), end, threshold=threshold)
        except (NoFillInPeriod, ValueError):
            continue
        if result.eligible:
            out.append((result.pdc, result.adherent))
    return out


def _pdc_share(results: Sequence[tuple[float, bool]]) -> tuple[float | None, int]:
    return _pct(sum(adherent for _pdc, adherent in results), len(results)), len(results)


def _pdc_mean(results: Sequence[tuple[float, bool]]) -> tuple[float | None, int]:
    if not results:
        return None, 0
    return round(100.0 * statistics.fmean(value for value, _adherent in results), 1), len(results)


def _lapses(fills: Sequence[FillRecord]) -> list[tuple[date, date | None]]:
    """(run-out day, next fill day or None) after each fill, early refills carried forward."""
    ordered = sorted(fills, key=lambda f: f.dispensed_on)
    out: list[tuple[date, date | None]] = []
    end: date | None = None
    for i, fill in enumerate(ordered):
        end = max(end or fill.dispensed_on, fill.dispensed_on) + timedelta(days=fill.days_supply)
        nxt = ordered[i + 1].dispensed_on if i + 1 < len(ordered) else None
        out.append((end, nxt))
    return out


def _episode(run_out: date, nxt: date | None, status: str, w: _Window, grace: int) -> bool | None:
    """True abandoned, False continued, None not scored (pending or a planned stop)."""
    if nxt is not None and nxt < run_out:
        return None  # an early refill: supply never ran out at this point
    if nxt is not None:
        return (nxt - run_out).days > grace
    if status in _PLANNED_STOPS:
        return None
    return True if (w.today - run_out).days > grace else None


def _secondary(data: _SiteData, w: _Window, grace: int) -> tuple[float | None, int]:
    abandoned = scored = 0
    for t in data.therapies:
        outcomes = [
            _episode(run_out, nxt, t.rx.status, w, grace)
            for run_out, nxt in _lapses(t.fills)
            if w.holds(run_out)
        ]
        judged = [o for o in outcomes if o is not None]
        if judged:
            scored += 1
            abandoned += any(judged)
    return _pct(abandoned, scored), scored


def _responses(data: _SiteData, w: _Window) -> tuple[float | None, int]:
    answered = scored = 0
    for message in data.outreach:
        if not w.start <= message.created_at < w.end or message.status in _FAILED or not message.patient_id:
            continue  # (a series loads several months at once: only this month's texts count here)
        scored += 1
        replies = data.inbound.get(message.patient_id, [])
        answered += any(message.created_at < at <= message.created_at + RESPONSE_WINDOW for at in replies)
    return _pct(answered, scored), scored


def _sla(data: _SiteData, w: _Window) -> tuple[float | None, int]:
    met = scored = 0
    for task in data.tasks:
        if not w.start <= task.due_by < w.end:
            continue
        if task.resolved_at is None and task.due_by >= w.now:
            continue  # still open and not yet due
        scored += 1
        met += task.resolved_at is not None and task.resolved_at <= task.due_by
    return _pct(met, scored), scored


def _opt_out(data: _SiteData, w: _Window) -> tuple[float | None, int]:
    opted = {pid for pid, at in data.opt_outs if w.start <= at < w.end}
    texted = {pid for pid, at in data.texted if w.start <= at < w.end} | opted
    return _pct(len(opted), len(texted)), len(texted)


@dataclass(frozen=True)
class _Params:
    primary_days: int = 30
    secondary_days: int = 30
    pdc_threshold: float = 0.8


def _compute(data: _SiteData, w: _Window, params: _Params) -> list[Metric]:
    pdcs = _pdc_results(data, w, params.pdc_threshold)
    figures = {
        "primary_abandonment": _primary(data, w, params.primary_days),
        "time_to_fill": _time_to_fill(data, w),
        "mean_pdc": _pdc_mean(pdcs),
        "pdc_adherent": _pdc_share(pdcs),
        "secondary_abandonment": _secondary(data, w, params.secondary_days),
        "outreach_response": _responses(data, w),
        "sla_compliance": _sla(data, w),
        "opt_out": _opt_out(data, w),
    }
    return [
        Metric(
            key,
            spec.label,
            figures[key][0],
            spec.unit,
            spec.benchmark,
            spec.better,
            figures[key][1],
            spec.benchmark_label,
            spec.strict,
        )
        for key, spec in _SPECS.items()
    ]


async def program_metrics(
    session: AsyncSession,
    *,
    site_id: str,
    month: str,
    now: datetime | None = None,
    primary_days: int = 30,
    secondary_days: int = 30,
    pdc_threshold: float = 0.8,
) -> list[Metric]:
    """The site's program metrics for one month (YYYY-MM, the site's local calendar), in METRIC_KEYS order.

    Raises:
        ValueError: a malformed month.
        LookupError: an unknown site.
    """
    now = now or utcnow()
    site = await session.get(Site, site_id)
    if site is None:
        raise LookupError(f"site: unknown site {site_id!r}")
    w = _window(month, site_zone(site), now)
    data = await _load(session, site_id, w.start, w.end)
    return _compute(data, w, _Params(primary_days, secondary_days, pdc_threshold))


async def monthly_series(
    session: AsyncSession,
    *,
    site_id: str,
    months: int = 6,
    now: datetime | None = None,
    until: str | None = None,
) -> dict[str, list[tuple[str, float | None]]]:
    """Each metric's value for the last ``months`` months ending with ``until`` (default: this month).

    Returns:
        ``{key: [(YYYY-MM, value), ...]}``, oldest month first, for charts.
    """
    if not 1 <= months <= 36:
        raise ValueError("months: must be between 1 and 36")
    now = now or utcnow()
    site = await session.get(Site, site_id)
    if site is None:
        raise LookupError(f"site: unknown site {site_id!r}")
    zone = site_zone(site)
    last = until or _month_of(local_date(now, zone))
    labels = [_shift_month(last, back) for back in range(months - 1, -1, -1)]
    first_w, last_w = _window(labels[0], zone, now), _window(labels[-1], zone, now)
    data = await _load(session, site_id, first_w.start, last_w.end)
    series: dict[str, list[tuple[str, float | None]]] = {key: [] for key in METRIC_KEYS}
    for label in labels:
        for metric in _compute(data, _window(label, zone, now), _Params()):
            series[metric.key].append((label, metric.value))
    return series


# --- output ----------------------------------------------------------------------------------------------

CSV_FIELDS = (
    "site_id",
    "month",
    "key",
    "label",
    "value",
    "unit",
    "benchmark",
    "better",
    "n",
    "benchmark_label",
)


def metrics_csv(rows: Sequence[Metric], *, site_id: str = "", month: str = "") -> str:
    """Metrics as CSV text with a header row (empty cells for missing values, formula-like text neutralised)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for m in rows:
        cells = (
            site_id,
            month,
            m.key,
            m.label,
            m.value,
            m.unit,
            m.benchmark,
            m.better,
            m.n,
            m.benchmark_label,
        )
        writer.writerow([csv_cell(cell) for cell in cells])  # formula-like text neutralised (OWASP)
    return out.getvalue()


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _scale(values: Sequence[float], height: float, pad: float) -> tuple[float, float]:
    low, high = min(values), max(values)
    if high - low < 1e-9:
        low, high = low - 1.0, high + 1.0
    return low, (height - 2 * pad) / (high - low)


def sparkline_svg(
    values: Sequence[float | None], benchmark: float | None, *, width: int = 160, height: int = 40
) -> str:
    """A small self-contained SVG line chart: the values, and the benchmark as a dashed line.

    Only numbers reach the markup (no text from data, no script, no style attributes), so the string is
    safe to embed in a page under a strict Content-Security-Policy. Missing values break the line.
    """
    pad = 4.0
    clean = [_finite(float(v)) if v is not None else None for v in values]
    bench = _finite(benchmark)
    known = [v for v in clean if v is not None] + ([bench] if bench is not None else [])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-hidden="true" focusable="false">'
    ]
    if known:
        low, k = _scale(known, height, pad)
        step = (width - 2 * pad) / max(len(clean) - 1, 1)

        def y(v: float) -> float:
            return round(height - pad - (v - low) * k, 1)

        if bench is not None:
            parts.append(
                f'<line x1="{pad}" y1="{y(bench)}" x2="{width - pad}" y2="{y(bench)}" stroke="#888888" '
                'stroke-width="1" stroke-dasharray="3 3"/>'
            )
        parts += _polylines(clean, step, pad, y)
    parts.append("</svg>")
    return "".join(parts)


def _polylines(clean: Sequence[float | None], step: float, pad: float, y: Any) -> list[str]:
    out: list[str] = []
    run: list[str] = []
    last: tuple[float, float] | None = None
    for i, v in enumerate([*clean, None]):
        if v is None:
            if len(run) > 1:
                out.append(
                    f'<polyline points="{" ".join(run)}" fill="none" stroke="#1f6feb" stroke-width="2" '
                    'stroke-linejoin="round"/>'
                )
            run = []
            continue
        x = round(pad + i * step, 1)
        run.append(f"{x},{y(v)}")
        last = (x, y(v))
    if last is not None:
        out.append(f'<circle cx="{last[0]}" cy="{last[1]}" r="2.5" fill="#1f6feb"/>')
    return out
