"""Several dispatchers at once on PostgreSQL (FOR UPDATE SKIP LOCKED): every row goes out exactly once."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import timedelta

from sched_helpers import FakeSender, add_outreach, add_patient, add_rx, add_site, outreach, utc, worker_for
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import FixedClock
from bot.db.models import Message
from scheduler.dispatcher import Dispatcher, DispatchSummary, _Row
from scheduler.rules import RateLimiter

NOON = utc(2026, 11, 24, 18)  # 12:00 in Chicago
PATIENTS = 40


class JitterSender(FakeSender):
    """Yields to the loop at random moments so the dispatchers interleave."""

    def __init__(self, sm: async_sessionmaker[AsyncSession], rng: random.Random) -> None:
        super().__init__(sm)
        self.rng = rng

    async def send(self, patient_id, outreach_ids, now):  # type: ignore[no-untyped-def]
        await asyncio.sleep(self.rng.random() / 500)
        return await super().send(patient_id, outreach_ids, now)


async def _run_all(sm: async_sessionmaker[AsyncSession], sender: FakeSender, now, count: int = 4) -> list:  # type: ignore[no-untyped-def]
    dispatchers = [
        Dispatcher(
            sm,
            sender,
            FixedClock(now),
            owner=f"d{i}",
            batch_size=7,
            lease_seconds=120,
            rate_limiter=RateLimiter(),
            db=worker_for(sm),
        )
        for i in range(count)
    ]
    return await asyncio.gather(*(d.run_once() for d in dispatchers))


async def test_concurrent_dispatchers_send_each_row_exactly_once(
    pg_sm: async_sessionmaker[AsyncSession],
) -> None:
    rng = random.Random(5)
    async with pg_sm.begin() as s:
        await add_site(s, send_rate=1000.0)
        for i in range(PATIENTS):
            await add_patient(s, f"P{i:03d}")
            await add_rx(s, f"RX{i:03d}", f"P{i:03d}")
            await add_outreach(s, f"P{i:03d}", NOON - timedelta(minutes=i), hours=48)
            if i % 3 == 0:  # a second row due the same day: bundled, or held back by the daily cap
                await add_outreach(s, f"P{i:03d}", NOON - timedelta(minutes=i), step="run_out-2", hours=48)
    sender = JitterSender(pg_sm, rng)
    summaries = await _run_all(pg_sm, sender, NOON)
    sent_ids = Counter(i for _, ids in sender.sends for i in ids)
    assert sent_ids and max(sent_ids.values()) == 1
    assert sum(s.claimed for s in summaries) >= len(sent_ids)
    async with pg_sm() as s:
        per_patient = dict(
            (await s.execute(select(Message.patient_id, func.count()).group_by(Message.patient_id))).all()
        )
        rows = await outreach(s)
    assert set(per_patient.values()) == {1}  # the daily cap held across dispatchers
    assert {(r.state, r.reason) for r in rows} <= {
        ("sent", ""),
        ("sent", "bundled"),
        ("deferred", "daily_cap"),
    }
    # The next day, whatever the cap held back goes out; still nothing twice.
    await _run_all(pg_sm, sender, NOON + timedelta(days=1))
    sent_ids = Counter(i for _, ids in sender.sends for i in ids)
    async with pg_sm() as s:
        rows = await outreach(s)
    assert {r.state for r in rows} == {"sent"}
    assert sorted(sent_ids) == sorted(r.id for r in rows) and set(sent_ids.values()) == {1}


async def test_skip_locked_claims_never_overlap(pg_sm: async_sessionmaker[AsyncSession]) -> None:
    async with pg_sm.begin() as s:
        await add_site(s)
        for i in range(30):
            await add_patient(s, f"P{i:03d}")
            await add_rx(s, f"RX{i:03d}", f"P{i:03d}")
            await add_outreach(s, f"P{i:03d}", NOON)
    dispatchers = [
        Dispatcher(
            pg_sm, FakeSender(pg_sm), FixedClock(NOON), owner=f"d{i}", batch_size=10, db=worker_for(pg_sm)
        )
        for i in range(5)
    ]
    claims = await asyncio.gather(*(d._claim(NOON) for d in dispatchers))
    ids = [r.id for rows in claims for r in rows]
    assert len(ids) == len(set(ids)) == 30
    assert sorted(len(rows) for rows in claims) == [0, 0, 10, 10, 10]


async def test_two_dispatchers_holding_rows_of_one_patient_respect_the_daily_cap(
    pg_sm: async_sessionmaker[AsyncSession],
) -> None:
    lease = NOON + timedelta(minutes=2)
    async with pg_sm.begin() as s:
        await add_site(s, send_rate=1000.0)
        await add_patient(s, "P1")
        await add_rx(s, "RX1", "P1")
        await add_rx(s, "RX2", "P1")
        # Each dispatcher holds one of the patient's rows, as after a claim split between them.
        a = await add_outreach(
            s, "P1", NOON, rx_id="RX1", state="claimed", lease_owner="d1", lease_expires_at=lease
        )
        b = await add_outreach(
            s, "P1", NOON, rx_id="RX2", state="claimed", lease_owner="d2", lease_expires_at=lease
        )
    sender = FakeSender(pg_sm, delay=0.05)
    d1, d2 = (
        Dispatcher(pg_sm, sender, FixedClock(NOON), owner=o, rate_limiter=RateLimiter(), db=worker_for(pg_sm))
        for o in ("d1", "d2")
    )
    held = [_Row(r.id, "P1", r.prescription_id, r.step, "claimed", r.due_at, r.deadline_at) for r in (a, b)]
    await asyncio.gather(
        d1._process_batch([held[0]], NOON, DispatchSummary()),
        d2._process_batch([held[1]], NOON, DispatchSummary()),
    )
    assert len(sender.sends) == 1  # the per-patient lock serialises the two decisions
    async with pg_sm() as s:
        states = sorted((r.state, r.reason) for r in await outreach(s))
    assert states == [("deferred", "daily_cap"), ("sent", "")]
