"""The dispatcher loop of `midbot dispatch` (run_forever) and its metrics; the in-app job is in tests/e2e."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from prometheus_client import CollectorRegistry
from sched_helpers import FakeSender, add_outreach, add_patient, add_rx, add_site, utc
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import FixedClock
from bot.db.session import make_sessionmaker
from bot.db.worker import DbWorker
from scheduler.jobs import run_forever
from scheduler.metrics import scheduler_metrics

NOON = utc(2026, 11, 24, 18)


async def seed(engine: AsyncEngine) -> None:
    async with make_sessionmaker(engine).begin() as s:
        await add_site(s)
        await add_patient(s)
        await add_rx(s)
        await add_outreach(s, "P1", NOON - timedelta(minutes=5))


async def wait_for(check: Callable[[], bool], seconds: float = 3.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def test_metrics_are_created_once_per_registry_and_run_forever_stops(engine: AsyncEngine) -> None:
    registry = CollectorRegistry()
    assert scheduler_metrics(registry) is scheduler_metrics(registry)
    assert scheduler_metrics() is not scheduler_metrics()
    await seed(engine)
    from scheduler.dispatcher import Dispatcher

    sm = make_sessionmaker(engine)
    sender = FakeSender(sm)
    stop = asyncio.Event()
    db = DbWorker(engine)
    task = asyncio.create_task(
        run_forever(Dispatcher(sm, sender, FixedClock(NOON), owner="loop", db=db), 0.01, stop)
    )
    await wait_for(lambda: bool(sender.sends))
    stop.set()  # the loop finishes the run in flight (drain) before it returns
    await asyncio.wait_for(task, 2)
    await db.close()
    assert len(sender.sends) == 1
