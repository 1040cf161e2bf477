"""Fixtures shared by the tests of bot/: the real app, migrated and seeded with two sites, behind a test client."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from bot.clock import FixedClock
from bot.keys import SESSIONMAKER
from bot.logs import AccessLog
from bot.settings import Settings
from tests.bot.support import Seeded, build_app, migrate, seed


@pytest.fixture
async def api(aiohttp_client, settings: Settings, clock: FixedClock) -> tuple[TestClient, Seeded]:  # type: ignore[no-untyped-def]
    """The app with the seeded practice (sites north and south, staff, tokens, tasks) and a client for it."""
    await migrate(settings)
    client = await aiohttp_client(build_app(settings, clock), server_kwargs={"access_log_class": AccessLog})
    seeded = await seed(client.server.app[SESSIONMAKER], clock.now())
    return client, seeded


@pytest.fixture
def web_client(api: tuple[TestClient, Seeded]) -> tuple[TestClient, Seeded]:
    """The same, named for the page tests."""
    return api
