"""Benchmark: `midbot import fills` of 100,000 rows into SQLite; target ≤ 30 s. Run: python bench/bench_import.py.

With ``--beside-webhook``: the import runs beside bench_webhook.py's open loop against a running `midbot serve`
on the same SQLite file (SQLite has one writer at a time): first one import of ``--fills`` rows (default
300,000, with re-planning), then two imports at once; the webhook's p50/p99/max during each, and, side by
side in the same run, without an import. Targets: webhook p99 < 1 s during the import, both concurrent
imports complete (exit 0), no webhook errors.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import io
import logging
import os
import random
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from bot.cli import build_parser, main
from bot.db.migrate import upgrade
from bot.db.models import Site
from bot.db.session import make_engine, make_sessionmaker

_LOGGER = logging.getLogger(__name__)
TARGET_SECONDS = 30.0


def _write(path: Path, header: tuple[str, ...], rows: list[tuple[object, ...]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def generate(directory: Path, fills: int, seed: int) -> dict[str, Path]:
    """patients.csv, prescriptions.csv, fills.csv: one prescription per 5 fills, two per patient."""
    rng = random.Random(seed)
    n_rx = max(1, fills // 5)
    n_patients = max(1, n_rx // 2)
    patients = [
        (
            f"P{i:06d}",
            "bench",
            "Pat",
            f"Num{i}",
            "1955-03-04",
            f"+1312555{i % 10000:04d}",
            rng.choice(("en", "es")),
            "",
            "true",
            "false",
        )
        for i in range(n_patients)
    ]
    prescriptions = [
        (
            f"RX{i:07d}",
            f"P{i % n_patients:06d}",
            rng.choice(("capecitabine", "olaparib", "abiraterone")),
            "",
            "commercial",
            "active",
            "2025-01-02",
        )
        for i in range(n_rx)
    ]
    rows = []
    for i in range(fills):
        day = date(2025, 1, 5) + timedelta(days=(i // n_rx) * 30 + rng.randint(-3, 5))
        rows.append(
            (f"F{i:08d}", f"RX{i % n_rx:07d}", day.isoformat(), 30, 60, f"{rng.randint(0, 20000) / 100:.2f}")
        )
    return {
        "patients": _write(
            directory / "patients.csv",
            (
                "patient_id",
                "site_id",
                "first_name",
                "last_name",
                "birth_date",
                "phone",
                "language",
                "time_zone",
                "sms_consent",
                "detailed_consent",
            ),
            patients,
        ),
        "prescriptions": _write(
            directory / "prescriptions.csv",
            ("prescription_id", "patient_id", "drug", "therapy_class", "payer_type", "status", "written_on"),
            prescriptions,
        ),
        "fills": _write(
            directory / "fills.csv",
            ("fill_id", "prescription_id", "dispensed_on", "days_supply", "quantity", "copay"),
            rows,
        ),
    }


async def _add_site(url: str) -> None:
    engine = make_engine(url)
    await upgrade(engine)
    async with make_sessionmaker(engine).begin() as session:
        session.add(Site(id="bench", name="Bench", phone="+13125550100", time_zone="America/Chicago"))
    await engine.dispose()


def _timed(argv: list[str]) -> tuple[float, int, str]:
    out = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(argv)
    return time.perf_counter() - started, code, out.getvalue().strip()


def report(label: str, secs: float) -> None:
    """Print a timing with its share of the target."""
    print(f"{label:<36} {secs:6.2f} s  ({secs / TARGET_SECONDS:.0%} of the {TARGET_SECONDS:.0f} s target)")


def main_bench() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fills", type=int, default=None, help="rows (100,000; 300,000 with --beside-webhook)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--beside-webhook", action="store_true", help="import while webhooks arrive")
    parser.add_argument("--rate", type=float, default=50.0, help="webhooks a second (--beside-webhook)")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="bound of each phase")
    args = parser.parse_args()
    if args.beside_webhook:
        from bench_beside import beside_webhook

        return beside_webhook(args.fills or 300_000, args.rate, args.max_seconds, args.seed, generate)
    args.fills = args.fills or 100_000
    build_parser()  # imports of every command module are start-up, not the import itself
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        os.environ["MIDBOT_DATABASE_URL"] = url
        asyncio.run(_add_site(url))
        files = generate(Path(tmp), args.fills, args.seed)
        for kind in ("patients", "prescriptions"):
            secs, code, out = _timed(["import", kind, str(files[kind]), "--no-replan"])
            print(f"setup: {kind:<14} {secs:6.2f} s  exit {code}  {out}")
        secs, code, out = _timed(["import", "fills", str(files["fills"]), "--no-replan"])
        print(out)
        report(f"import {args.fills:,} new fills", secs)
        first = secs
        secs, code2, out = _timed(["import", "fills", str(files["fills"]), "--no-replan"])
        print(out)
        report(f"re-import {args.fills:,} (unchanged)", secs)
        changed = Path(tmp) / "fills-28.csv"
        changed.write_text(
            files["fills"].read_text(encoding="utf-8").replace(",30,60,", ",28,56,"), encoding="utf-8"
        )
        secs, code3, out = _timed(["import", "fills", str(changed), "--no-replan"])
        print(out)
        report(f"update all {args.fills:,} fills", secs)
        secs, code4, out = _timed(["import", "fills", str(files["fills"])])
        print(out)
        report("update all again + re-plan patients", secs)
    return 0 if code == code2 == code3 == code4 == 0 and first <= TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main_bench())
