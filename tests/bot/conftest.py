"""Fixtures shared by the tests of bot/: the real app, migrated and seeded with two sites, behind a test client."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.clock import FixedClock
from bot.keys import SESSIONMAKER
from bot.logs import AccessLog
from bot.settings import Settings
from tests.bot.support import Seeded, build_app, migrate, seed


@pytest.fixture
async def api(aiohttp_client, settings: Settings, clock: FixedClock) -> tuple[TestClient, Seeded]:  # type: ignore[no-untyped-def]
    """The app with the seeded practice (sites north and south, staff, tokens, tasks) and a client for it."""
    await migrate(settings)
    # Started here: aiohttp_client's server_kwargs never reach the runner (aiohttp 3.14), so the access log
    # would be aiohttp's own line, query string (a searched name) included.
    server = TestServer(build_app(settings, clock))
    await server.start_server(access_log_class=AccessLog)
    client = await aiohttp_client(server)
    seeded = await seed(client.server.app[SESSIONMAKER], clock.now())
    return client, seeded


@pytest.fixture
def web_client(api: tuple[TestClient, Seeded]) -> tuple[TestClient, Seeded]:
    """The same, named for the page tests."""
    return api
