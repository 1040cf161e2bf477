"""The dispatcher inside an aiohttp app: APScheduler job on startup, clean shutdown, /metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta

from aiohttp import web
from prometheus_client import CollectorRegistry
from sched_helpers import FakeSender, add_outreach, add_patient, add_rx, add_site, outreach, utc
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import FixedClock
from bot.db.session import make_sessionmaker
from bot.keys import CLOCK, SESSIONMAKER, SETTINGS
from bot.settings import Settings
from scheduler.jobs import DISPATCH_SCHEDULER, DISPATCHER, run_forever, setup_dispatcher
from scheduler.metrics import metrics_routes, scheduler_metrics

NOON = utc(2026, 11, 24, 18)


def make_app(
    engine: AsyncEngine, settings: Settings, senders: list[FakeSender], registry: CollectorRegistry
) -> web.Application:
    app = web.Application()
    app[SETTINGS] = settings.model_copy(update={"run_dispatcher": True, "dispatch_interval_seconds": 0.05})
    app[CLOCK] = FixedClock(NOON)
    app[SESSIONMAKER] = make_sessionmaker(engine)

    @asynccontextmanager
    async def sender_factory(app: web.Application) -> AsyncIterator[FakeSender]:
        senders.append(FakeSender(app[SESSIONMAKER]))
        yield senders[-1]

    setup_dispatcher(app, sender_factory=sender_factory, registry=registry)
    app.add_routes(metrics_routes(registry))
    return app


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


async def test_the_app_runs_the_dispatcher_job_and_exposes_metrics(
    engine: AsyncEngine,
    settings: Settings,
    aiohttp_client,  # type: ignore[no-untyped-def]
) -> None:
    await seed(engine)
    senders: list[FakeSender] = []
    registry = CollectorRegistry()
    client = await aiohttp_client(make_app(engine, settings, senders, registry))
    app = client.server.app
    assert app[DISPATCH_SCHEDULER].running and app[DISPATCHER].owner
    await wait_for(lambda: registry.get_sample_value("midbot_outreach_sent_total") == 1)
    assert len(senders[0].sends) == 1
    async with make_sessionmaker(engine)() as s:
        assert [r.state for r in await outreach(s)] == ["sent"]
    resp = await client.get("/metrics")
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
    body = await resp.text()
    assert "midbot_outreach_sent_total 1.0" in body and "midbot_outreach_dispatch_lag_seconds_bucket" in body
    await client.close()
    assert not app[DISPATCH_SCHEDULER].running


async def test_no_dispatcher_when_the_setting_is_off(
    engine: AsyncEngine, settings: Settings, aiohttp_client
) -> None:  # type: ignore[no-untyped-def]
    senders: list[FakeSender] = []
    app = make_app(engine, settings, senders, CollectorRegistry())
    app[SETTINGS] = settings  # run_dispatcher=False in the test settings
    client = await aiohttp_client(app)
    assert DISPATCHER not in client.server.app and senders == []


async def test_metrics_are_created_once_per_registry_and_run_forever_stops(engine: AsyncEngine) -> None:
    registry = CollectorRegistry()
    assert scheduler_metrics(registry) is scheduler_metrics(registry)
    assert scheduler_metrics() is not scheduler_metrics()
    await seed(engine)
    from scheduler.dispatcher import Dispatcher

    sm = make_sessionmaker(engine)
    sender = FakeSender(sm)
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_forever(Dispatcher(sm, sender, FixedClock(NOON), owner="loop"), 0.01, stop)
    )
    await wait_for(lambda: bool(sender.sends))
    stop.set()  # the loop finishes the run in flight (drain) before it returns
    await asyncio.wait_for(task, 2)
    assert len(sender.sends) == 1
