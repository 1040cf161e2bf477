"""Run-out arithmetic on a prescription's fills: supply carried forward the way PQA's PDC shifts it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

__all__ = ["FillRecord", "coverage", "days_left", "first_fill_date", "latest_copay_cents", "run_out_date"]


@dataclass(frozen=True, slots=True)
class FillRecord:
    """The parts of a fill the arithmetic needs."""

    dispensed_on: date
    days_supply: int
    copay_cents: int = 0


def _ordered(fills: Iterable[FillRecord]) -> list[FillRecord]:
    return sorted((f for f in fills if f.days_supply > 0), key=lambda f: f.dispensed_on)


def coverage(fills: Iterable[FillRecord]) -> list[tuple[date, date]]:
    """Each fill's covered days as ``[start, end)``: an early refill starts when the previous supply ends."""
    spans: list[tuple[date, date]] = []
    end: date | None = None
    for fill in _ordered(fills):
        start = fill.dispensed_on if end is None or fill.dispensed_on > end else end
        end = start + timedelta(days=fill.days_supply)
        spans.append((start, end))
    return spans


def run_out_date(fills: Iterable[FillRecord]) -> date | None:
    """The first day without medication (last supply's end, with surplus carried forward); None if no fills.

    A 28-day fill dispensed 2026-01-06 covers 01-06 to 02-02 and runs out on 02-03.
    """
    spans = coverage(fills)
    return spans[-1][1] if spans else None


def first_fill_date(fills: Iterable[FillRecord]) -> date | None:
    """The therapy's first dispense date (the anchor of first_fill triggers)."""
    ordered = _ordered(fills)
    return ordered[0].dispensed_on if ordered else None


def latest_copay_cents(fills: Iterable[FillRecord]) -> int | None:
    """The copay of the most recent fill (what the next refill is expected to cost)."""
    ordered = _ordered(fills)
    return ordered[-1].copay_cents if ordered else None


def days_left(fills: Iterable[FillRecord], today: date) -> int | None:
    """Days of supply on hand at the start of ``today`` (0 when already out); None without fills."""
    run_out = run_out_date(fills)
    return None if run_out is None else max(0, (run_out - today).days)
