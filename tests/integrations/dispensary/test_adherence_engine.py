"""The PDC engine: PQA worked examples, carry-over, truncation, gaps, censoring and invariants."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from integrations.dispensary.adherence import (
    FillRecord,
    NoFillInPeriod,
    pdc,
    refill_on_time_rate,
    run_out_date,
)


def _f(day: str, supply: int) -> FillRecord:
    return FillRecord(date.fromisoformat(day), supply)


def test_pqa_example_early_refill_is_carried_forward() -> None:
    # A 9/25 refill while the 9/03 supply lasts until 10/02 starts on 10/03 (PQA worked example).
    fills = [_f("2025-09-03", 30), _f("2025-09-25", 30)]
    result = pdc(fills, date(2025, 1, 1), date(2025, 12, 31))
    assert run_out_date(fills[:1]) == date(2025, 10, 3)
    assert result.index_date == date(2025, 9, 3)
    assert result.days_in_period == 120  # 9/03 .. 12/31
    assert result.days_covered == 60  # 9/03 .. 11/01, not 9/03 .. 10/24 with an overlap
    assert result.pdc == 0.5
    assert result.run_out == date(2025, 11, 2)
    assert result.total_gap_days == 60 and result.max_gap_days == 60


def test_pqa_example_supply_past_period_end_is_truncated() -> None:
    # A 10/15 fill of 90 days counts only up to 12/31.
    result = pdc([_f("2025-10-15", 90)], date(2025, 1, 1), date(2025, 12, 31))
    assert result.days_in_period == 78
    assert result.days_covered == 78
    assert result.pdc == 1.0
    assert result.mpr == round(90 / 78, 4)  # MPR may exceed 1; PDC may not
    assert result.eligible is False  # index date less than 91 days before the period end


def test_year_with_a_gap_and_an_early_refill() -> None:
    fills = [_f("2025-01-01", 30), _f("2025-03-02", 30), _f("2025-03-25", 30)]
    result = pdc(fills, period_end=date(2025, 4, 30))
    # Covered 1/01-1/30, gap 1/31-3/01 (30 days), covered 3/02-4/30 (second fill + carried third).
    assert (result.days_in_period, result.days_covered) == (120, 90)
    assert result.max_gap_days == 30 and result.total_gap_days == 30
    assert result.pdc == 0.75 and result.adherent is False
    assert result.fills == 3


def test_default_period_ends_on_the_last_covered_day() -> None:
    result = pdc([_f("2025-01-01", 30), _f("2025-02-15", 30)])
    assert result.period_end == date(2025, 3, 16)
    assert result.days_in_period == 75
    assert result.days_covered == 60
    assert result.max_gap_days == 15


def test_fills_before_the_period_carry_their_supply_in() -> None:
    fills = [_f("2024-12-10", 30), _f("2025-01-05", 30)]  # old supply lasts to 1/08
    result = pdc(fills, date(2025, 1, 1), date(2025, 3, 31))
    assert result.index_date == date(2025, 1, 5)
    assert result.days_in_period == 86
    # 1/05-1/08 from the old fill, then the 1/05 fill shifted to 1/09-2/07.
    assert result.days_covered == 34
    assert result.fills == 1


def test_trailing_gap_counts_to_the_period_end() -> None:
    result = pdc([_f("2025-01-01", 30)], period_end=date(2025, 3, 31))
    assert result.days_covered == 30
    assert result.max_gap_days == result.total_gap_days == 60
    assert result.pdc == round(30 / 90, 4)


def test_inpatient_days_are_censored_and_supply_shifts_after_the_stay() -> None:
    fills = [_f("2025-01-01", 30)]
    stay = [(date(2025, 1, 10), date(2025, 1, 19))]
    plain = pdc(fills, period_end=date(2025, 2, 28))
    censored = pdc(fills, period_end=date(2025, 2, 28), inpatient=stay)
    assert plain.days_in_period == 59 and plain.days_covered == 30
    # 1/01-1/09 then, after the 10-day stay, 21 days 1/20-2/09: still 30 days covered, of 49.
    assert censored.inpatient_days == 10
    assert censored.days_in_period == 49
    assert censored.days_covered == 30
    assert censored.pdc == round(30 / 49, 4)
    assert censored.run_out == date(2025, 2, 10)
    assert censored.total_gap_days == 19


def test_a_fill_dispensed_during_a_stay_starts_after_discharge() -> None:
    result = pdc(
        [_f("2025-01-01", 5), _f("2025-01-06", 10)],
        period_end=date(2025, 1, 31),
        inpatient=[(date(2025, 1, 6), date(2025, 1, 10))],
    )
    assert result.run_out == date(2025, 1, 21)
    assert result.days_covered == 15
    assert result.days_in_period == 26


def test_no_fill_in_the_period_has_no_index_date() -> None:
    with pytest.raises(NoFillInPeriod):
        pdc([_f("2024-06-01", 30)], date(2025, 1, 1), date(2025, 12, 31))
    with pytest.raises(NoFillInPeriod):
        pdc([], None, None)


def test_threshold_is_a_parameter() -> None:
    fills = [_f("2025-01-01", 85)]
    assert pdc(fills, period_end=date(2025, 4, 10)).adherent is True  # 85/100
    assert pdc(fills, period_end=date(2025, 4, 10), threshold=0.9).adherent is False


def test_invalid_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="days_supply"):
        FillRecord(date(2025, 1, 1), 0)
    with pytest.raises(ValueError, match="stay"):
        pdc([_f("2025-01-01", 30)], inpatient=[(date(2025, 1, 5), date(2025, 1, 1))])


def test_invariants_hold_on_random_histories() -> None:
    rng = random.Random(20260701)
    for _ in range(500):
        start = date(2025, 1, 1) + timedelta(days=rng.randint(0, 60))
        fills = []
        day = start
        for _ in range(rng.randint(1, 12)):
            supply = rng.choice([7, 14, 28, 30, 90])
            fills.append(FillRecord(day, supply))
            day += timedelta(days=max(1, supply + rng.randint(-10, 40)))
        end = start + timedelta(days=rng.randint(0, 400))
        result = pdc(fills, period_end=end)
        assert 0 <= result.pdc <= 1
        assert result.days_covered + result.total_gap_days == result.days_in_period
        assert result.max_gap_days <= result.total_gap_days


def test_refill_on_time_rate() -> None:
    fills = [_f("2025-01-01", 30), _f("2025-01-28", 30), _f("2025-03-15", 30)]
    # The early refill is on time; the third comes 13 days after the 3/02 run-out.
    assert refill_on_time_rate(fills) == 0.5
    assert refill_on_time_rate(fills, grace_days=14) == 1.0
    assert refill_on_time_rate(fills, period_start=date(2025, 3, 1)) == 0.0
    assert refill_on_time_rate(fills[:1]) is None
    assert run_out_date([]) is None
