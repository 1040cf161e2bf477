"""Adherence measures from fill records: PDC (PQA method, CMA7 semantics), MPR and refill timeliness.

Pure functions over ``FillRecord`` values; no I/O. Days are counted inclusively: a fill of 30 days
dispensed on 1 March covers 1–30 March and its supply *runs out* on 31 March (the first uncovered day).

Method (PQA proportion of days covered, see docs/adherence.md):

* The index date is the first fill dispensed inside the period; the period runs from it to
  ``period_end`` (inclusive). Without ``period_end`` the period ends on the last covered day of all fills.
* Fills are walked in date order. An early refill's days start when the previous supply runs out
  (carry-over); supply past the period end is dropped; PDC is therefore ≤ 1.
* Fills dispensed *before* ``period_start`` still carry their remaining supply into the period
  (AdhereR CMA7: "carry-over from before and within the observation window").
* Inpatient stays (CMS Star Ratings censoring) are removed from the denominator, and supply held during
  a stay is not consumed: it shifts to the days after the stay.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

__all__ = [
    "ADHERENCE_THRESHOLD",
    "MIN_PERIOD_DAYS",
    "FillRecord",
    "NoFillInPeriod",
    "PdcResult",
    "pdc",
    "refill_on_time_rate",
    "run_out_date",
]

_LOGGER = logging.getLogger(__name__)

ADHERENCE_THRESHOLD = 0.8
# PQA: the index date must fall at least 91 days before the end of the measurement period.
MIN_PERIOD_DAYS = 91

Stay = tuple[int, int]  # inclusive ordinals


class NoFillInPeriod(ValueError):
    """No fill was dispensed inside the measurement period, so there is no index date."""


@dataclass(frozen=True, slots=True)
class FillRecord:
    """One dispense: the day it was handed over and how many days it lasts."""

    dispensed_on: date
    days_supply: int

    def __post_init__(self) -> None:
        if self.days_supply < 1:
            raise ValueError("days_supply must be at least 1")


@dataclass(frozen=True, slots=True)
class PdcResult:
    """The PDC of one patient–drug over one period, with its gaps."""

    index_date: date
    period_end: date
    days_in_period: int  # after removing inpatient days
    days_covered: int
    pdc: float  # 0..1, rounded to 4 decimals
    adherent: bool
    max_gap_days: int
    total_gap_days: int
    fills: int  # fills dispensed inside the period
    mpr: float  # total days supply of those fills / days in period; may exceed 1
    inpatient_days: int
    eligible: bool  # the period is at least MIN_PERIOD_DAYS long (PQA's 91-day rule)
    run_out: date  # the first day not covered after all fills up to period_end (may be after it)


def _merge_stays(inpatient: Sequence[tuple[date, date]]) -> list[Stay]:
    spans = sorted((a.toordinal(), b.toordinal()) for a, b in inpatient)
    merged: list[Stay] = []
    for start, end in spans:
        if end < start:
            raise ValueError("an inpatient stay ends before it starts")
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _stay_days(stays: Sequence[Stay], lo: int, hi: int) -> int:
    """Inpatient days within the half-open ordinal range [lo, hi)."""
    total = 0
    for start, end in stays:
        if start >= hi:
            break
        total += max(0, min(end + 1, hi) - max(start, lo))
    return total


def _supply_span(start: int, days: int, stays: Sequence[Stay]) -> tuple[int, int]:
    """Where ``days`` of supply starting on ``start`` lie, skipping inpatient days: [begin, end)."""
    for s, e in stays:
        if s <= start <= e:
            start = e + 1
    end = start + days
    for s, e in stays:
        if e < start:
            continue
        if s >= end:
            break
        end += e - max(s, start) + 1
    return start, end


def _intervals(ordered: Sequence[FillRecord], stays: Sequence[Stay]) -> list[tuple[int, int]]:
    """Supply intervals [begin, end) after carry-over: each starts when the previous one runs out."""
    spans: list[tuple[int, int]] = []
    cursor = 0
    for fill in ordered:
        begin = max(fill.dispensed_on.toordinal(), cursor)
        if stays:
            begin, cursor = _supply_span(begin, fill.days_supply, stays)
        else:
            cursor = begin + fill.days_supply
        spans.append((begin, cursor))
    return spans


def _gaps(spans: Sequence[tuple[int, int]], lo: int, hi: int, stays: Sequence[Stay]) -> tuple[int, int, int]:
    """(covered days, longest gap, total gap) inside [lo, hi), inpatient days excluded."""
    covered = longest = total = 0
    edge = lo
    for begin, end in spans:
        if begin >= hi:
            break
        b, e = max(begin, lo), min(end, hi)
        if b >= e:
            continue
        gap = b - edge - _stay_days(stays, edge, b) if b > edge else 0
        longest, total = max(longest, gap), total + gap
        covered += e - b - _stay_days(stays, b, e)
        edge = max(edge, e)
    tail = hi - edge - _stay_days(stays, edge, hi) if hi > edge else 0
    return covered, max(longest, tail), total + tail


def run_out_date(fills: Sequence[FillRecord], inpatient: Sequence[tuple[date, date]] = ()) -> date | None:
    """The first day without supply after all ``fills`` (early refills carried forward); None if no fill."""
    if not fills:
        return None
    spans = _intervals(sorted(fills, key=lambda f: f.dispensed_on), _merge_stays(inpatient))
    return date.fromordinal(spans[-1][1])


def pdc(
    fills: Sequence[FillRecord],
    period_start: date | None = None,
    period_end: date | None = None,
    inpatient: Sequence[tuple[date, date]] = (),
    *,
    threshold: float = ADHERENCE_THRESHOLD,
) -> PdcResult:
    """Proportion of days covered by the PQA method (CMA7 when the window starts at the index date).

    Args:
        fills: the patient's fills of one drug (any order; fills before ``period_start`` carry over).
        period_start: the earliest possible index date; None means the first fill.
        period_end: the last day of the period (inclusive); None means the last day covered by the fills.
        inpatient: inclusive (admitted, discharged) date pairs censored from the measure.
        threshold: PDC at or above which the patient counts as adherent (0.8; 0.9 for antiretrovirals).

    Returns:
        The PdcResult.

    Raises:
        NoFillInPeriod: no fill dispensed within the period.
        ValueError: an inpatient stay ends before it starts, or the period ends before it starts.
    """
    ordered = sorted(fills, key=lambda f: f.dispensed_on)
    if period_end is not None:
        ordered = [f for f in ordered if f.dispensed_on <= period_end]
    stays = _merge_stays(inpatient)
    in_period = [f for f in ordered if period_start is None or f.dispensed_on >= period_start]
    if not in_period:
        raise NoFillInPeriod("no fill dispensed in the period")
    spans = _intervals(ordered, stays)
    lo = in_period[0].dispensed_on.toordinal()
    hi = spans[-1][1] if period_end is None else period_end.toordinal() + 1
    if hi <= lo:
        raise ValueError("the period ends before the index date")
    inpatient_days = _stay_days(stays, lo, hi)
    days = hi - lo - inpatient_days
    covered, longest, total = _gaps(spans, lo, hi, stays)
    supply = sum(f.days_supply for f in in_period)
    ratio = covered / days if days > 0 else 0.0
    return PdcResult(
        index_date=in_period[0].dispensed_on,
        period_end=date.fromordinal(hi - 1),
        days_in_period=days,
        days_covered=covered,
        pdc=round(ratio, 4),
        adherent=days > 0 and ratio >= threshold,
        max_gap_days=longest,
        total_gap_days=total,
        fills=len(in_period),
        mpr=round(supply / days, 4) if days > 0 else 0.0,
        inpatient_days=inpatient_days,
        eligible=hi - lo >= MIN_PERIOD_DAYS,
        run_out=date.fromordinal(spans[-1][1]),
    )


def refill_on_time_rate(
    fills: Sequence[FillRecord],
    *,
    grace_days: int = 7,
    period_start: date | None = None,
    period_end: date | None = None,
) -> float | None:
    """Share of refills dispensed no later than ``grace_days`` after the supply on hand ran out.

    Each refill is compared with the run-out of all earlier fills (carry-over included), so an early
    refill is on time. Only refills dispensed within [period_start, period_end] are scored; earlier
    fills still set the run-out they are compared with.

    Returns:
        A fraction rounded to 4 decimals, or None when no refill falls in the period.
    """
    ordered = sorted(fills, key=lambda f: f.dispensed_on)
    on_time = scored = 0
    cursor: int | None = None
    for fill in ordered:
        day = fill.dispensed_on.toordinal()
        inside = (period_start is None or fill.dispensed_on >= period_start) and (
            period_end is None or fill.dispensed_on <= period_end
        )
        if cursor is not None and inside:
            scored += 1
            on_time += day <= cursor + grace_days
        cursor = max(day, cursor or day) + fill.days_supply
    return round(on_time / scored, 4) if scored else None
