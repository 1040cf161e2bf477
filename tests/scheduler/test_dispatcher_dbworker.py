"""The dispatcher's decisions and outcomes run through a DbWorker: a given one, or its own per run."""

from __future__ import annotations

import threading
from datetime import timedelta

from sched_helpers import FakeSender, add_outreach, add_patient, add_rx, add_site, utc
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.clock import FixedClock
from bot.db.models import Outreach
from bot.db.worker import DbWorker
from scheduler.dispatcher import Dispatcher

NOON = utc(2026, 11, 24, 18)  # Tuesday 12:00 in Chicago


def _db_threads(settle: float = 0.0) -> int:
    """Live database threads (after giving stopping ones ``settle`` seconds to end)."""
    threads = [t for t in threading.enumerate() if t.name == "midbot-db"]
    for t in threads:
        t.join(settle)
    return sum(1 for t in threads if t.is_alive())


async def _world(sm: async_sessionmaker[AsyncSession]) -> list[int]:
    async with sm.begin() as s:
        await add_site(s)
        ids = []
        for i in (1, 2):
            await add_patient(s, f"P{i}", phone=f"+1312555{i:04d}")
            await add_rx(s, f"RX{i}", f"P{i}")
            ids.append((await add_outreach(s, f"P{i}", NOON - timedelta(hours=1))).id)
    return ids


async def test_a_given_worker_carries_the_hot_path_and_stays_open(
    sm: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    ids = await _world(sm)
    db = DbWorker(engine)
    before = _db_threads(settle=2.0)
    try:
        summary = await Dispatcher(sm, FakeSender(sm), FixedClock(NOON), owner="d1", db=db).run_once()
        assert summary.sent == 2 and summary.messages == 2
        assert _db_threads() == before + 1  # the given SQLite worker's thread ran the work and is kept
    finally:
        await db.close()
    async with sm() as s:
        rows = [await s.get(Outreach, i) for i in ids]
    assert [(r.state, r.lease_owner, r.attempts) for r in rows if r] == [("sent", None, 1)] * 2
