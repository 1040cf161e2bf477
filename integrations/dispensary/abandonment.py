"""Primary and secondary abandonment and time to fill, from dates the dispensary record holds: pure.

Definitions (see docs/adherence.md):

* **Primary abandonment** — a prescription the pharmacy received is never started: the patient declined
  it (reason kept when known), or it was not dispensed within ``window_days`` (default 30) of receipt.
  Before the window closes an undispensed prescription is ``pending``, not abandoned.
* **Secondary abandonment** — an active therapy is stopped: the patient said they stopped, or no refill
  came within ``grace_days`` (default 30) after the supply ran out (early refills carried forward).
  Discontinued or completed prescriptions are planned stops, never abandonment.
* **Time to fill** — from receipt (or the written date) to the first dispense, in calendar days and in
  business days (Monday–Friday, minus the given holidays).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from integrations.dispensary.adherence import FillRecord, run_out_date

__all__ = [
    "PRIMARY_WINDOW_DAYS",
    "SECONDARY_GRACE_DAYS",
    "PrimaryAbandonment",
    "SecondaryAbandonment",
    "TimeToFill",
    "business_days_between",
    "primary_abandonment",
    "secondary_abandonment",
    "time_to_fill",
]

_LOGGER = logging.getLogger(__name__)

# Defaults a site can change. 30 days is the common claims-based window for "never picked up"; studies
# of oral oncolytics also use 90 (Doshi et al., JCO 2018), so both are parameters, not constants of law.
PRIMARY_WINDOW_DAYS = 30
SECONDARY_GRACE_DAYS = 30
_PLANNED_STOPS = frozenset({"discontinued", "completed"})


@dataclass(frozen=True, slots=True)
class PrimaryAbandonment:
    """Whether a received prescription was started."""

    status: Literal["filled", "pending", "abandoned"]
    abandoned: bool
    reason: str | None  # "declined", "declined: <why>", "not_dispensed_within_30_days"; None otherwise
    days_waiting: int  # days from receipt to first dispense, decline or as-of


@dataclass(frozen=True, slots=True)
class SecondaryAbandonment:
    """Whether an ongoing therapy was dropped after its supply ran out."""

    abandoned: bool
    reason: str | None  # "stopped", "stopped: <why>", "no_refill_within_30_days"; None otherwise
    run_out: date | None  # first day without supply (None: never filled)
    days_since_run_out: int  # 0 while supply lasts


@dataclass(frozen=True, slots=True)
class TimeToFill:
    """Receipt to first dispense."""

    calendar_days: int
    business_days: int


def _with_reason(base: str, why: str | None) -> str:
    return f"{base}: {why.strip()}" if why and why.strip() else base


def primary_abandonment(
    received_on: date,
    first_dispensed_on: date | None,
    *,
    as_of: date,
    declined_on: date | None = None,
    decline_reason: str | None = None,
    window_days: int = PRIMARY_WINDOW_DAYS,
) -> PrimaryAbandonment:
    """Classify a received prescription as filled, pending or abandoned.

    Args:
        received_on: when the pharmacy received the prescription.
        first_dispensed_on: its first dispense, or None.
        as_of: the day the question is asked.
        declined_on: when the patient declined it (by SMS or to staff), if they did.
        decline_reason: the patient's reason, when known (cost, side effects, ...).
        window_days: days after receipt before an undispensed prescription counts as abandoned.
    """
    if first_dispensed_on is not None and (declined_on is None or first_dispensed_on <= declined_on):
        return PrimaryAbandonment("filled", False, None, max(0, (first_dispensed_on - received_on).days))
    if declined_on is not None and declined_on <= as_of:
        waited = max(0, (declined_on - received_on).days)
        return PrimaryAbandonment("abandoned", True, _with_reason("declined", decline_reason), waited)
    waited = max(0, (as_of - received_on).days)
    if waited > window_days:
        return PrimaryAbandonment("abandoned", True, f"not_dispensed_within_{window_days}_days", waited)
    return PrimaryAbandonment("pending", False, None, waited)


def secondary_abandonment(
    fills: Sequence[FillRecord],
    *,
    as_of: date,
    status: str = "active",
    stopped_on: date | None = None,
    stop_reason: str | None = None,
    grace_days: int = SECONDARY_GRACE_DAYS,
) -> SecondaryAbandonment:
    """Whether an active therapy was abandoned by ``as_of``.

    Args:
        fills: the prescription's (or patient–drug's) fills; those after ``as_of`` are ignored.
        as_of: the day the question is asked.
        status: the prescription status; discontinued/completed are planned stops, not abandonment.
        stopped_on: when the patient said they stopped taking it, if they did.
        stop_reason: their reason, when known.
        grace_days: days after run-out without a refill before the therapy counts as abandoned.
    """
    known = [f for f in fills if f.dispensed_on <= as_of]
    run_out = run_out_date(known)
    since = max(0, (as_of - run_out).days) if run_out is not None else 0
    if status in _PLANNED_STOPS or run_out is None:
        return SecondaryAbandonment(False, None, run_out, since)
    if stopped_on is not None and stopped_on <= as_of and not any(f.dispensed_on > stopped_on for f in known):
        return SecondaryAbandonment(True, _with_reason("stopped", stop_reason), run_out, since)
    if since > grace_days:
        return SecondaryAbandonment(True, f"no_refill_within_{grace_days}_days", run_out, since)
    return SecondaryAbandonment(False, None, run_out, since)


def business_days_between(start: date, end: date, holidays: Collection[date] = ()) -> int:
    """Business days (Mon–Fri, not a holiday) after ``start`` up to and including ``end``; 0 if end ≤ start."""
    if end <= start:
        return 0
    days = (end - start).days
    weeks, rest = divmod(days, 7)
    count = weeks * 5
    first = start.toordinal() + 1
    for offset in range(rest):
        if date.fromordinal(first + weeks * 7 + offset).weekday() < 5:
            count += 1
    count -= sum(1 for h in set(holidays) if start < h <= end and h.weekday() < 5)
    return count


def time_to_fill(received_on: date, first_dispensed_on: date, holidays: Collection[date] = ()) -> TimeToFill:
    """Calendar and business days from receipt to first dispense (same day: 0 and 0).

    Raises:
        ValueError: the dispense is dated before the receipt.
    """
    if first_dispensed_on < received_on:
        raise ValueError("first dispense is before receipt")
    return TimeToFill(
        calendar_days=(first_dispensed_on - received_on).days,
        business_days=business_days_between(received_on, first_dispensed_on, holidays),
    )
