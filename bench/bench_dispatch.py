"""Dispatcher benchmark: due outreach claimed, checked, bundled and sent, through the Twilio simulator.

Usage: python bench/bench_dispatch.py [--patients N] [--dispatchers K] [--postgres URL] [--sender store]

Writes N patients with one or two rows due now into a temporary SQLite file (or a PostgreSQL database),
then times `Dispatcher.run_once`. By default every text goes through midbot's real sender (dialog start,
stored Message, the twilio library's client) to the Twilio simulator running as its own process on
127.0.0.1, with a send rate that does not hold it back (issue 11 target: >= 250 texts/s on one process with --patients 1000).
With --sender store a stand-in stores the Message row and returns at once, so the figures are the
dispatcher's own cost. With --postgres, K dispatchers run concurrently (FOR UPDATE SKIP LOCKED) and every row must
be sent exactly once. The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp  # noqa: E402
from sqlalchemy import func, insert, select, update  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker  # noqa: E402

from bot.clock import FixedClock  # noqa: E402
from bot.db.migrate import upgrade  # noqa: E402
from bot.db.models import Message, Outreach, Patient, Prescription, Site  # noqa: E402
from bot.db.session import make_engine, make_sessionmaker  # noqa: E402
from bot.db.worker import DbWorker  # noqa: E402
from scheduler.dispatcher import Dispatcher  # noqa: E402
from scheduler.rules import RateLimiter  # noqa: E402
from scheduler.sender import SendOutcome  # noqa: E402

NOW = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)  # Tuesday noon in Chicago


class StoreOnlySender:
    """Writes the outbound Message row and links the rows to it, like the real sender, then 'sends'."""

    def __init__(self, sm: async_sessionmaker[AsyncSession]) -> None:
        self.sm = sm
        self.sent: Counter[int] = Counter()

    async def send(self, patient_id: str, outreach_ids: list[int], now: datetime) -> SendOutcome:
        async with self.sm.begin() as session:
            message = Message(
                direction="out",
                kind="outreach",
                patient_id=patient_id,
                from_number="+15005550006",
                to_number="+13125550100",
                body="bench",
                created_at=now,
                status="queued",
            )
            session.add(message)
            await session.flush()
            await session.execute(
                update(Outreach).where(Outreach.id.in_(outreach_ids)).values(message_id=message.id)
            )
        self.sent.update(outreach_ids)
        return SendOutcome("sent", message.id)

    async def reconcile(self, patient_id: str, outreach_ids: list[int], now: datetime) -> SendOutcome | None:
        return None


async def seed(sm: async_sessionmaker[AsyncSession], patients: int) -> int:
    created = datetime.now(UTC)
    rows = 0
    async with sm.begin() as session:
        await session.execute(
            insert(Site.__table__),
            [
                {
                    "id": "S1",
                    "name": "Clinic",
                    "phone": "+15005550006",
                    "time_zone": "America/Chicago",
                    "quiet_start": "09:00",
                    "quiet_end": "20:00",
                    "send_rate": 1000.0,
                    "settings": {},
                    "created_at": created,
                }
            ],
        )
        for start in range(0, patients, 5000):
            batch = range(start, min(start + 5000, patients))
            await session.execute(
                insert(Patient.__table__),
                [
                    {
                        "id": f"P{i:07d}",
                        "site_id": "S1",
                        "first_name": "A",
                        "last_name": "B",
                        "phone": f"+1312{i:07d}",
                        "phone_status": "ok",
                        "language": "en",
                        "sms_consent": True,
                        "detailed_consent": False,
                        "deliverability": {},
                        "created_at": created,
                        "updated_at": created,
                    }
                    for i in batch
                ],
            )
            await session.execute(
                insert(Prescription.__table__),
                [
                    {
                        "id": f"R{i:07d}",
                        "patient_id": f"P{i:07d}",
                        "site_id": "S1",
                        "drug": "capecitabine",
                        "therapy_class": "oncology",
                        "payer_type": "commercial",
                        "status": "active",
                        "status_changed_at": created,
                        "created_at": created,
                    }
                    for i in batch
                ],
            )
            out = []
            for i in batch:
                for step in ("run_out-5", "first_fill-7")[
                    : 1 + (i % 4 == 0)
                ]:  # a quarter get two: one bundle
                    due = NOW - timedelta(minutes=i % 120)
                    out.append(
                        {
                            "idempotency_key": f"P{i:07d}:R{i:07d}:p:{step}:2026-11-24",
                            "patient_id": f"P{i:07d}",
                            "prescription_id": f"R{i:07d}",
                            "program_id": "p",
                            "kind": "refill_reminder",
                            "step": step,
                            "due_at": due,
                            "deadline_at": due + timedelta(hours=24),
                            "state": "planned",
                            "reason": "",
                            "attempts": 0,
                            "created_at": created,
                            "updated_at": created,
                        }
                    )
            await session.execute(insert(Outreach.__table__), out)
            rows += len(out)
    return rows


async def main(args: argparse.Namespace) -> int:
    if args.postgres:
        import asyncpg

        name = f"midbot_bench_{int(time.time())}"
        admin = args.postgres.replace("postgresql+asyncpg://", "postgresql://")
        conn = await asyncpg.connect(admin)
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()
        url = f"{args.postgres.rsplit('/', 1)[0]}/{name}"
    else:
        scratch = tempfile.TemporaryDirectory(prefix="midbot-bench-")
        url = f"sqlite+aiosqlite:///{scratch.name}/dispatch.db"
    engine = make_engine(url)
    await upgrade(engine)
    sm = make_sessionmaker(engine)
    rows = await seed(sm, args.patients)
    count = args.dispatchers if args.postgres else 1
    async with _sender(args, sm) as sender:
        elapsed, summaries = await _run(args, sm, sender, count)
    sent = sum(s.sent for s in summaries)
    texts = sum(s.messages for s in summaries)
    async with sm() as session:
        states = dict(
            (await session.execute(select(Outreach.state, func.count()).group_by(Outreach.state))).all()
        )
        messages = await session.scalar(select(func.count()).select_from(Message))
        per_patient = (
            await session.execute(
                select(Message.patient_id, func.count())
                .where(Message.direction == "out")
                .group_by(Message.patient_id)
                .having(func.count() > 1)
            )
        ).all()
    duplicates = len(per_patient)
    return await _report(
        args,
        engine,
        url,
        rows,
        count,
        sent,
        texts,
        elapsed,
        states,
        messages,
        duplicates,
        admin if args.postgres else None,
        name if args.postgres else None,
        None if args.postgres else scratch,
    )


@asynccontextmanager
async def _sender(args: argparse.Namespace, sm: async_sessionmaker[AsyncSession]) -> AsyncIterator[Any]:
    """(sender, database worker): the real SMS engine against the simulator, or a stand-in."""
    if args.sender == "store":
        db = DbWorker(sm.kw["bind"])
        try:
            yield StoreOnlySender(sm), db
        finally:
            await db.close()
        return
    from bot.settings import Settings
    from bot.sms.service import messaging

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    account, token = "AC" + "b" * 32, "bench-token"
    simulator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "integrations.twilio.simulator",
            "--port",
            str(port),
            "--account-sid",
            account,
            "--auth-token",
            token,
            "--webhook-url",
            "http://127.0.0.1:9/none",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            await asyncio.sleep(0.05)
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            database_url="sqlite+aiosqlite:///unused.db",
            twilio_api_base_url=f"http://127.0.0.1:{port}",
            twilio_account_sid=account,
            twilio_auth_token=token,
            public_base_url="http://127.0.0.1:9",
        )
        async with (
            aiohttp.ClientSession() as http,
            messaging(settings, sm.kw["bind"], sm, FixedClock(NOW), http) as sms,
        ):
            yield sms.outreach, sms.db
    finally:
        simulator.terminate()
        simulator.wait(timeout=10)


async def _run(
    args: argparse.Namespace, sm: async_sessionmaker[AsyncSession], sender: Any, count: int
) -> tuple[float, list[Any]]:
    sender, db = sender
    dispatchers = [
        Dispatcher(
            sm,
            sender,
            FixedClock(NOW),
            owner=f"bench-{i}",
            batch_size=args.batch,
            lease_seconds=120,
            rate_limiter=RateLimiter(),
            db=db,
        )
        for i in range(count)
    ]
    t0 = time.perf_counter()
    summaries = await asyncio.gather(*(d.run_once() for d in dispatchers))
    return time.perf_counter() - t0, list(summaries)


async def _report(
    args: argparse.Namespace,
    engine: Any,
    url: str,
    rows: int,
    count: int,
    sent: int,
    texts: int,
    elapsed: float,
    states: dict[str, int],
    messages: int,
    duplicates: int,
    admin: str | None,
    name: str | None,
    scratch: Any,
) -> int:
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print(
        f"{backend}, {count} dispatcher(s), batch {args.batch}: {rows:,} due rows for {args.patients:,} patients"
    )
    print(
        f"  {sent:,} rows in {texts:,} texts in {elapsed:.2f} s: {sent / elapsed:,.0f} rows/s, "
        f"{texts / elapsed:,.0f} texts/s, {elapsed / max(texts, 1) * 1000:.2f} ms per text"
    )
    print(f"  states {states}, messages stored {messages:,}, rows sent twice: {duplicates}")
    await engine.dispose()
    if args.postgres:
        import asyncpg

        conn = await asyncpg.connect(admin)
        await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await conn.close()
    else:
        scratch.cleanup()
    # Concurrent dispatchers may split a patient's bundle; the daily cap then holds the rest for tomorrow.
    held = states.get("deferred", 0)
    ok = duplicates == 0 and states.get("sent", 0) + held == rows and texts == args.patients
    print(
        json.dumps(
            {
                "bench": "dispatch",
                "backend": backend,
                "dispatchers": count,
                "batch": args.batch,
                "patients": args.patients,
                "due_rows": rows,
                "rows_sent": sent,
                "texts": texts,
                "seconds": round(elapsed, 2),
                "rows_per_s": round(sent / elapsed, 1),
                "texts_per_s": round(texts / elapsed, 1),
                "ms_per_text": round(elapsed / max(texts, 1) * 1000, 2),
                "held_by_cap": held,
                "sent_twice": duplicates,
                "sender": args.sender,
                "target_texts_per_s": 250,
                "ratio_to_target": round(texts / elapsed / 250, 2),
                "pass": ok,
            }
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=5000)
    parser.add_argument("--dispatchers", type=int, default=4, help="concurrent dispatchers (PostgreSQL only)")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--postgres", metavar="URL", help="postgresql+asyncpg://user@host:port/db (admin db)")
    parser.add_argument(
        "--sender",
        choices=("simulator", "store"),
        default="simulator",
        help="simulator: midbot's real sender to the Twilio simulator; store: a stand-in",
    )
    sys.exit(asyncio.run(main(parser.parse_args())))
