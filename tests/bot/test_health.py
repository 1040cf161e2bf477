"""The process answers /healthz and /readyz, and readiness tracks the schema."""

from __future__ import annotations

from bot.app import create_app
from bot.db.migrate import upgrade
from bot.db.session import make_engine
from bot.settings import Settings


async def test_healthz_and_readyz_after_migration(aiohttp_client, settings: Settings) -> None:
    engine = make_engine(settings.database_url)
    await upgrade(engine)
    await engine.dispose()
    client = await aiohttp_client(create_app(settings))
    health = await client.get("/healthz")
    assert health.status == 200 and (await health.json())["status"] == "ok"
    ready = await client.get("/readyz")
    body = await ready.json()
    assert ready.status == 200, body
    assert body["migration"] == body["head"] and body["database"] == "ok"
    assert ready.headers["X-Request-Id"]
    assert "script-src 'self'" in ready.headers["Content-Security-Policy"]


async def test_readyz_is_503_before_migration(aiohttp_client, settings: Settings) -> None:
    client = await aiohttp_client(create_app(settings))
    ready = await client.get("/readyz")
    assert ready.status == 503
    assert (await ready.json())["migration"] is None
