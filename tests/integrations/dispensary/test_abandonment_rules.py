"""Primary and secondary abandonment and time to fill."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from integrations.dispensary.abandonment import (
    business_days_between,
    primary_abandonment,
    secondary_abandonment,
    time_to_fill,
)
from integrations.dispensary.adherence import FillRecord

RECEIVED = date(2026, 3, 2)  # a Monday


def test_primary_filled_pending_and_abandoned() -> None:
    filled = primary_abandonment(RECEIVED, date(2026, 3, 4), as_of=date(2026, 5, 1))
    assert (filled.status, filled.abandoned, filled.days_waiting) == ("filled", False, 2)
    pending = primary_abandonment(RECEIVED, None, as_of=date(2026, 4, 1))  # day 30: still inside
    assert (pending.status, pending.abandoned, pending.days_waiting) == ("pending", False, 30)
    late = primary_abandonment(RECEIVED, None, as_of=date(2026, 4, 2))
    assert (late.status, late.reason, late.days_waiting) == ("abandoned", "not_dispensed_within_30_days", 31)
    longer = primary_abandonment(RECEIVED, None, as_of=date(2026, 4, 2), window_days=90)
    assert longer.status == "pending"


def test_primary_decline_keeps_the_reason() -> None:
    declined = primary_abandonment(
        RECEIVED, None, as_of=date(2026, 3, 10), declined_on=date(2026, 3, 5), decline_reason=" cost "
    )
    assert (declined.abandoned, declined.reason, declined.days_waiting) == (True, "declined: cost", 3)
    bare = primary_abandonment(RECEIVED, None, as_of=date(2026, 3, 10), declined_on=date(2026, 3, 5))
    assert bare.reason == "declined"
    # Filled before the decline: primary non-adherence did not happen.
    started = primary_abandonment(
        RECEIVED, date(2026, 3, 3), as_of=date(2026, 3, 10), declined_on=date(2026, 3, 5)
    )
    assert started.status == "filled"


def test_secondary_after_run_out() -> None:
    fills = [FillRecord(date(2026, 1, 1), 30), FillRecord(date(2026, 1, 25), 30)]  # runs out 3/02
    inside = secondary_abandonment(fills, as_of=date(2026, 4, 1))
    assert (inside.abandoned, inside.run_out, inside.days_since_run_out) == (False, date(2026, 3, 2), 30)
    past = secondary_abandonment(fills, as_of=date(2026, 4, 2))
    assert (past.abandoned, past.reason) == (True, "no_refill_within_30_days")
    assert secondary_abandonment(fills, as_of=date(2026, 2, 1)).days_since_run_out == 0
    planned = secondary_abandonment(fills, as_of=date(2026, 9, 1), status="discontinued")
    assert planned.abandoned is False and planned.days_since_run_out > 30


def test_secondary_when_the_patient_says_they_stopped() -> None:
    fills = [FillRecord(date(2026, 1, 1), 30)]
    stopped = secondary_abandonment(
        fills, as_of=date(2026, 1, 20), stopped_on=date(2026, 1, 15), stop_reason="side effects"
    )
    assert (stopped.abandoned, stopped.reason) == (True, "stopped: side effects")
    refilled = secondary_abandonment(
        [*fills, FillRecord(date(2026, 1, 18), 30)], as_of=date(2026, 1, 20), stopped_on=date(2026, 1, 15)
    )
    assert refilled.abandoned is False
    never = secondary_abandonment([], as_of=date(2026, 1, 20))
    assert (never.abandoned, never.run_out) == (False, None)


def test_time_to_fill_calendar_and_business_days() -> None:
    friday, monday = date(2026, 3, 6), date(2026, 3, 9)
    assert time_to_fill(friday, monday) == type(time_to_fill(friday, monday))(3, 1)
    same = time_to_fill(friday, friday)
    assert (same.calendar_days, same.business_days) == (0, 0)
    week = time_to_fill(RECEIVED, date(2026, 3, 9), holidays=[date(2026, 3, 4), date(2026, 3, 7)])
    assert (week.calendar_days, week.business_days) == (7, 4)  # the Saturday "holiday" changes nothing
    with pytest.raises(ValueError):
        time_to_fill(monday, friday)


def test_business_days_match_a_day_by_day_count() -> None:
    rng = random.Random(7)
    holidays = {date(2026, 1, 1) + timedelta(days=rng.randint(0, 400)) for _ in range(12)}
    for _ in range(300):
        start = date(2026, 1, 1) + timedelta(days=rng.randint(0, 200))
        end = start + timedelta(days=rng.randint(0, 120))
        brute = sum(
            1
            for n in range(1, (end - start).days + 1)
            if (d := start + timedelta(days=n)).weekday() < 5 and d not in holidays
        )
        assert business_days_between(start, end, holidays) == brute
