"""Planner benchmark: 100,000 patients and 300,000 fills on SQLite, full plan and one-fill re-plan.

Usage: python bench/bench_planner.py [--patients N] [--fills N] [--keep PATH]

Generates the data straight into a temporary SQLite file (bulk inserts), then times a full `replan` (one
transaction, as `midbot plan --all`), an idempotent second run, and the incremental re-plan of one patient
after a new fill. Prints the figures and their ratio to the targets (<= 60 s and <= 500 MB peak RSS for the
full plan; <= 20 ms for one fill). The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, insert, select  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: E402

from bot.db.migrate import upgrade  # noqa: E402
from bot.db.models import Fill, Outreach, Patient, Prescription, Site  # noqa: E402
from bot.db.session import make_engine, make_sessionmaker  # noqa: E402
from scheduler.planner import replan  # noqa: E402

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
TODAY = NOW.date()
SITES = (("S1", "America/Chicago"), ("S2", "America/New_York"), ("S3", "America/Los_Angeles"))
DRUGS = ("capecitabine", "abiraterone", "enzalutamide", "palbociclib", "imatinib", "lenalidomide")
PAYERS = ("commercial", "medicare_d", "medicaid", "cash", "other")
CHUNK = 10_000


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fill_dates(rng: random.Random, count: int) -> list[tuple[date, int]]:
    """``count`` fills of one prescription ending near today, mostly on time, some early, some late."""
    supply = rng.choice((28, 28, 30, 21, 14))
    day = TODAY - timedelta(days=rng.randint(0, supply)) - timedelta(days=(count - 1) * supply)
    out = []
    for _ in range(count):
        out.append((day, supply))
        day += timedelta(days=supply + rng.randint(-5, 7))
    return out


async def generate(engine: AsyncEngine, patients: int, fills: int, seed: int = 7) -> tuple[int, int]:
    """Bulk-insert sites, patients, prescriptions and fills; returns (prescriptions, fills) written."""
    rng = random.Random(seed)
    created = datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.execute(
            insert(Site.__table__),
            [
                {
                    "id": s,
                    "name": f"Clinic {s}",
                    "phone": f"+1500555000{i}",
                    "time_zone": tz,
                    "quiet_start": "09:00",
                    "quiet_end": "20:00",
                    "send_rate": 1.0,
                    "settings": {},
                    "created_at": created,
                }
                for i, (s, tz) in enumerate(SITES)
            ],
        )
    fills_per_rx = fills / (patients * 1.3)
    n_rx = n_fill = 0
    for start in range(0, patients, CHUNK):
        p_rows, rx_rows, f_rows = [], [], []
        for i in range(start, min(start + CHUNK, patients)):
            pid, site = f"P{i:07d}", SITES[i % len(SITES)][0]
            p_rows.append(
                {
                    "id": pid,
                    "site_id": site,
                    "first_name": "A",
                    "last_name": "B",
                    "phone": f"+1312{i:07d}",
                    "phone_status": "ok",
                    "language": "es" if i % 5 == 0 else "en",
                    "time_zone": None,
                    "sms_consent": i % 50 != 0,
                    "detailed_consent": False,
                    "opted_out_at": None,
                    "deliverability": {},
                    "created_at": created,
                    "updated_at": created,
                }
            )
            for k in range(1 if rng.random() < 0.7 else 2):
                rx = f"R{i:07d}{k}"
                rx_rows.append(
                    {
                        "id": rx,
                        "patient_id": pid,
                        "site_id": site,
                        "drug": rng.choice(DRUGS),
                        "therapy_class": "oncology",
                        "payer_type": rng.choice(PAYERS),
                        "status": "active" if rng.random() < 0.9 else "completed",
                        "written_on": TODAY - timedelta(days=200),
                        "status_changed_at": created,
                        "created_at": created,
                    }
                )
                count = max(1, round(rng.expovariate(1 / fills_per_rx)))
                for j, (day, supply) in enumerate(fill_dates(rng, count)):
                    f_rows.append(
                        {
                            "id": f"{rx}-{j}",
                            "prescription_id": rx,
                            "dispensed_on": day,
                            "days_supply": supply,
                            "quantity": supply * 2,
                            "copay_cents": rng.choice((0, 1000, 2500, 15000, 60000)),
                            "created_at": created,
                        }
                    )
        async with engine.begin() as conn:
            await conn.execute(insert(Patient.__table__), p_rows)
            await conn.execute(insert(Prescription.__table__), rx_rows)
            await conn.execute(insert(Fill.__table__), f_rows)
        n_rx += len(rx_rows)
        n_fill += len(f_rows)
    return n_rx, n_fill


async def main(args: argparse.Namespace) -> int:
    if args.keep:
        Path(args.keep).mkdir(parents=True, exist_ok=True)
        return await run(args, Path(args.keep))
    with tempfile.TemporaryDirectory(prefix="midbot-bench-") as folder:
        return await run(args, Path(folder))


async def run(args: argparse.Namespace, folder: Path) -> int:
    """Generate, plan, re-plan and report; the database lives in ``folder``."""
    db = folder / "bench.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    engine = make_engine(f"sqlite+aiosqlite:///{db}")
    await upgrade(engine)
    sm = make_sessionmaker(engine)
    t0 = time.perf_counter()
    n_rx, n_fill = await generate(engine, args.patients, args.fills)
    print(
        f"generated {args.patients:,} patients, {n_rx:,} prescriptions, {n_fill:,} fills "
        f"in {time.perf_counter() - t0:.1f} s"
    )

    t0 = time.perf_counter()
    async with sm.begin() as session:
        full = await replan(session, patient_ids=None, now=NOW)
    full_s = time.perf_counter() - t0
    rss = peak_rss_mb()
    async with sm() as session:
        rows = await session.scalar(select(func.count()).select_from(Outreach))
    print(f"full plan: {full.as_dict()} -> {rows:,} outreach rows in {full_s:.1f} s, peak RSS {rss:.0f} MB")

    t0 = time.perf_counter()
    async with sm.begin() as session:
        again = await replan(session, patient_ids=None, now=NOW)
    print(f"idempotent re-run: {again.as_dict()} in {time.perf_counter() - t0:.1f} s")

    times = []
    rng = random.Random(11)
    for n in range(args.repeats):
        i = rng.randrange(args.patients)
        rx, pid = f"R{i:07d}0", f"P{i:07d}"
        async with sm.begin() as session:
            session.add(
                Fill(
                    id=f"bench-{n}",
                    prescription_id=rx,
                    dispensed_on=TODAY - timedelta(days=2),
                    days_supply=28,
                    quantity=56,
                    copay_cents=1000,
                )
            )
        t0 = time.perf_counter()
        async with sm.begin() as session:
            await replan(session, patient_ids={pid}, now=NOW)
        times.append((time.perf_counter() - t0) * 1000)
    median, p95 = statistics.median(times), sorted(times)[int(len(times) * 0.95) - 1]
    print(
        f"one-fill re-plan: median {median:.1f} ms, p95 {p95:.1f} ms, max {max(times):.1f} ms "
        f"over {len(times)} patients"
    )
    print(
        f"ratios to target: full plan {full_s / 60:.2f} of 60 s, peak RSS {rss / 500:.2f} of 500 MB, "
        f"one fill {median / 20:.2f} of 20 ms (p95 {p95 / 20:.2f})"
    )
    await engine.dispose()
    ok = full_s <= 60 and rss <= 500 and median <= 20
    print(
        json.dumps(
            {
                "bench": "planner",
                "patients": args.patients,
                "prescriptions": n_rx,
                "fills": n_fill,
                "outreach_rows": rows,
                "full_plan_s": round(full_s, 2),
                "peak_rss_mb": round(rss),
                "rerun_unchanged": again.unchanged,
                "one_fill_median_ms": round(median, 2),
                "one_fill_p95_ms": round(p95, 2),
                "full_plan_ratio": round(full_s / 60, 3),
                "rss_ratio": round(rss / 500, 3),
                "one_fill_ratio": round(median / 20, 3),
                "pass": ok,
            }
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--fills", type=int, default=300_000)
    parser.add_argument("--repeats", type=int, default=50, help="one-fill re-plans to time")
    parser.add_argument("--keep", metavar="DIR", help="write the database here and keep it")
    sys.exit(asyncio.run(main(parser.parse_args())))
