"""Fixtures of the dispensary tests: a migrated store (SQLite and PostgreSQL) holding two sites."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.migrate import upgrade
from bot.db.models import Site
from bot.db.session import make_engine, make_sessionmaker

SITES = (("lakeside", "America/Chicago"), ("desert", "America/Phoenix"))


async def add_sites(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Create the two test sites."""
    async with sessionmaker.begin() as session:
        for site_id, zone in SITES:
            session.add(Site(id=site_id, name=site_id.title(), phone="+13125550100", time_zone=zone))


@pytest.fixture
async def store(any_db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A sessionmaker on a migrated database with the sites lakeside and desert."""
    engine = make_engine(any_db_url)
    await upgrade(engine)
    sessionmaker = make_sessionmaker(engine)
    await add_sites(sessionmaker)
    yield sessionmaker
    await engine.dispose()
