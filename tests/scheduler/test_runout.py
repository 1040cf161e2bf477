"""Run-out arithmetic: carry-over of early refills, gaps after late ones, first fill, copay."""

from __future__ import annotations

from datetime import date

from scheduler.runout import (
    FillRecord,
    coverage,
    days_left,
    first_fill_date,
    latest_copay_cents,
    run_out_date,
)


def test_single_fill_runs_out_after_its_supply() -> None:
    fills = [FillRecord(date(2026, 1, 6), 28)]
    assert run_out_date(fills) == date(2026, 2, 3)
    assert days_left(fills, date(2026, 1, 30)) == 4
    assert days_left(fills, date(2026, 3, 1)) == 0


def test_early_refill_carries_its_surplus_forward() -> None:
    # Refilled 5 days early: the second supply starts when the first runs out (PQA PDC carry-over).
    fills = [FillRecord(date(2026, 1, 1), 30), FillRecord(date(2026, 1, 26), 30)]
    assert coverage(fills) == [(date(2026, 1, 1), date(2026, 1, 31)), (date(2026, 1, 31), date(2026, 3, 2))]
    assert run_out_date(fills) == date(2026, 3, 2)


def test_carry_over_accumulates_over_several_early_refills() -> None:
    fills = [
        FillRecord(date(2026, 1, 1), 10),
        FillRecord(date(2026, 1, 5), 10),
        FillRecord(date(2026, 1, 9), 10),
    ]
    assert run_out_date(fills) == date(2026, 1, 31)


def test_late_refill_starts_on_its_own_date_and_the_gap_is_lost() -> None:
    fills = [FillRecord(date(2026, 1, 1), 30), FillRecord(date(2026, 2, 10), 30)]
    assert coverage(fills)[1] == (date(2026, 2, 10), date(2026, 3, 12))
    assert run_out_date(fills) == date(2026, 3, 12)


def test_fill_order_in_input_does_not_matter_and_zero_supply_is_ignored() -> None:
    fills = [
        FillRecord(date(2026, 2, 1), 30, 5000),
        FillRecord(date(2026, 1, 1), 30, 1000),
        FillRecord(date(2026, 2, 5), 0, 999),
    ]
    assert first_fill_date(fills) == date(2026, 1, 1)
    assert run_out_date(fills) == date(2026, 3, 3)
    assert latest_copay_cents(fills) == 5000


def test_no_fills() -> None:
    assert run_out_date([]) is None
    assert first_fill_date([]) is None
    assert days_left([], date(2026, 1, 1)) is None
