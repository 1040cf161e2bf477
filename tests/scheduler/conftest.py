"""Fixtures for scheduler tests: migrated SQLite and PostgreSQL sessionmakers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sched_helpers import close_workers
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.db.migrate import upgrade
from bot.db.session import make_engine, make_sessionmaker


@pytest.fixture
def sm(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """A sessionmaker on the migrated SQLite test database."""
    return make_sessionmaker(engine)


@pytest.fixture
async def pg_sm(postgres_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A sessionmaker on a fresh, migrated PostgreSQL database (skipped without a server)."""
    eng = make_engine(postgres_url)
    await upgrade(eng)
    yield make_sessionmaker(eng)
    await eng.dispose()


@pytest.fixture(autouse=True)
async def _close_db_workers() -> AsyncIterator[None]:
    yield
    await close_workers()
