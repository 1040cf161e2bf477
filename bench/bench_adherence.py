"""Benchmark: PDC (and abandonment) for 100,000 patient–drugs; target ≤ 10 s. Run: python bench/bench_adherence.py."""

from __future__ import annotations

import argparse
import csv
import io
import logging
import random
import sys
import tempfile
import time
from contextlib import redirect_stdout
from datetime import date, timedelta
from pathlib import Path

from bot.cli import build_parser, main
from bot.cli.adherence import measure
from integrations.dispensary.adherence import FillRecord, pdc

_LOGGER = logging.getLogger(__name__)
TARGET_SECONDS = 10.0


def histories(count: int, fills_per: int, seed: int) -> list[list[FillRecord]]:
    """``count`` seeded fill histories: 28/30/90-day supplies, early, on-time and late refills."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        day = date(2025, 1, 1) + timedelta(days=rng.randint(0, 180))
        fills = []
        for _ in range(rng.randint(max(1, fills_per - 3), fills_per + 3)):
            supply = rng.choice((28, 30, 30, 90))
            fills.append(FillRecord(day, supply))
            day += timedelta(days=max(1, supply + rng.randint(-7, 25)))
        out.append(fills)
    return out


def write_csv(path: Path, data: list[list[FillRecord]]) -> int:
    """Write the histories as a `midbot adherence` input file; returns the row count."""
    rows = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("patient_id", "drug", "dispensed_on", "days_supply"))
        for number, fills in enumerate(data):
            for fill in fills:
                writer.writerow(
                    (
                        f"P{number // 2}",
                        "drugA" if number % 2 else "drugB",
                        fill.dispensed_on,
                        fill.days_supply,
                    )
                )
                rows += 1
    return rows


def main_bench() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patient-drugs", type=int, default=100_000)
    parser.add_argument("--fills-per", type=int, default=6, help="average fills per patient-drug")
    parser.add_argument("--seed", type=int, default=20260701)
    parser.add_argument("--no-cli", action="store_true", help="skip the end-to-end CSV run")
    args = parser.parse_args()

    data = histories(args.patient_drugs, args.fills_per, args.seed)
    fills = sum(len(h) for h in data)
    end = date(2026, 6, 30)

    started = time.perf_counter()
    mean = sum(pdc(h, period_end=end).pdc for h in data) / len(data)
    engine = time.perf_counter() - started

    started = time.perf_counter()
    for h in data:
        measure(h, period_start=None, period_end=end, as_of=end)
    full = time.perf_counter() - started

    print(f"patient-drugs: {len(data):,}  fills: {fills:,}  mean PDC: {mean:.4f}")
    print(
        f"pdc() only:                {engine:6.2f} s  ({engine / TARGET_SECONDS:.0%} of the {TARGET_SECONDS:.0f} s target)"
    )
    print(f"pdc() + abandonment:       {full:6.2f} s  ({full / TARGET_SECONDS:.0%} of the target)")
    if not args.no_cli:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "fills.csv"
            rows = write_csv(path, data)
            build_parser()  # imports of every command module are start-up, not the command
            started = time.perf_counter()
            with redirect_stdout(io.StringIO()) as out:
                code = main(["adherence", str(path), "--as-of", end.isoformat()])
            cli = time.perf_counter() - started
            lines = out.getvalue().count("\n")
        print(
            f"midbot adherence (CSV):    {cli:6.2f} s  ({rows:,} rows -> {lines:,} lines, exit {code}; {cli / TARGET_SECONDS:.0%} of the target)"
        )
    return 0 if max(engine, full) <= TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main_bench())
