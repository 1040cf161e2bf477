"""The same sink, computed-signal and metrics paths on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web
from pydantic import SecretStr
from sqlalchemy import select

from bot.db.migrate import upgrade
from bot.db.models import SinkCursor
from bot.db.session import make_engine, make_sessionmaker
from bot.settings import Settings
from integrations.dispensary.computed import compute_signals
from integrations.dispensary.metrics import program_metrics
from integrations.dispensary.sinks import push_signals

from .conftest import SECRET, FakeSleep, add_signals, seed_people
from .test_computed_signals import NOW
from .test_computed_signals import _seed as seed_therapies
from .test_program_metrics import _seed_october
from .test_webhook_sink import Receiver


async def test_concurrent_pushes_compute_and_metrics(
    any_db_url: str, aiohttp_server, settings: Settings
) -> None:
    engine = make_engine(any_db_url)
    await upgrade(engine)
    maker = make_sessionmaker(engine)
    try:
        async with maker.begin() as session:
            await seed_people(session)
            await seed_therapies(session)
            await _seed_october(session)
        async with maker.begin() as session:
            computed = await compute_signals(session, now=NOW)
        assert computed >= 8  # the 8 of the computed-signal scenario, plus those of the October data
        async with maker.begin() as session:
            assert await compute_signals(session, now=NOW) == 0
        ids = await add_signals(maker, 7)

        receiver = Receiver(fail_first=1)
        app = web.Application()
        app.router.add_post("/hook", receiver.handle)
        server = await aiohttp_server(app)
        cfg = settings.model_copy(
            update={
                "signal_webhook_url": str(server.make_url("/hook")),
                "signal_webhook_secret": SecretStr(SECRET),
            }
        )
        async with aiohttp.ClientSession() as http:
            reports = await asyncio.gather(
                *[
                    push_signals(maker, http, cfg, sink="webhook", sleep=FakeSleep(), batch_size=3)
                    for _ in range(4)
                ]
            )
        assert sum(r.sent for r in reports) == computed + 7  # every signal once
        assert len(receiver.accepted) == len(set(receiver.accepted)) == computed + 7
        assert set(ids) <= set(receiver.accepted)
        async with maker() as session:
            cursor = (await session.scalars(select(SinkCursor))).one()
            assert cursor.last_signal_id == max(receiver.accepted) and cursor.lease_owner is None
            rows = await program_metrics(session, site_id="s1", month="2026-10", now=NOW)
        assert {m.key: m.value for m in rows}["primary_abandonment"] == 60.0  # r2, r3 and rxD of 5
    finally:
        await engine.dispose()
