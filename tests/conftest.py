"""Shared fixtures: settings on a file SQLite database, an optional real PostgreSQL, the app and a client."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import FixedClock
from bot.db.migrate import upgrade
from bot.db.session import make_engine
from bot.logs import StderrHandler
from bot.settings import Settings

POSTGRES_URL = os.environ.get("MIDBOT_TEST_POSTGRES_URL", "")
needs_postgres = pytest.mark.skipif(
    not POSTGRES_URL, reason="MIDBOT_TEST_POSTGRES_URL is not set (.ci/run starts a PostgreSQL and sets it)"
)


@pytest.fixture
def output_dir() -> Path:
    """Where tests leave artefacts (screenshots) for people to look at."""
    path = Path(os.environ.get("MIDBOT_TEST_OUTPUT", "test-output"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A file SQLite database under tmp_path (not :memory:, which aiosqlite shares badly)."""
    return f"sqlite+aiosqlite:///{tmp_path}/midbot.db"


async def _create_pg_database() -> tuple[str, str]:
    import asyncpg

    name = f"midbot_test_{secrets.token_hex(6)}"
    admin = POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = POSTGRES_URL.rsplit("/", 1)[0]
    return f"{base}/{name}", name


async def _drop_pg_database(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database for one test (skipped when no server is configured)."""
    if not POSTGRES_URL:
        pytest.skip("MIDBOT_TEST_POSTGRES_URL is not set (.ci/run starts a PostgreSQL and sets it)")
    url, name = await _create_pg_database()
    yield url
    await _drop_pg_database(name)


@pytest.fixture(params=["sqlite", "postgres"])
async def any_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Run a test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/midbot.db"
        return
    if not POSTGRES_URL:
        pytest.skip("MIDBOT_TEST_POSTGRES_URL is not set (.ci/run starts a PostgreSQL and sets it)")
    url, name = await _create_pg_database()
    yield url
    await _drop_pg_database(name)


@pytest.fixture
async def engine(sqlite_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated SQLite engine."""
    eng = make_engine(sqlite_url)
    await upgrade(eng)
    yield eng
    await eng.dispose()


@pytest.fixture
def clock() -> FixedClock:
    """A controllable clock, set to a Tuesday morning in November 2026 (UTC)."""
    return FixedClock(datetime(2026, 11, 24, 15, 0, tzinfo=UTC))


@pytest.fixture
def settings(sqlite_url: str) -> Settings:
    """Settings for an app under test: file SQLite, no .env, no background dispatcher."""
    return Settings(  # type: ignore[call-arg]
        database_url=sqlite_url,
        _env_file=None,
        public_base_url="http://127.0.0.1:8080",
        run_dispatcher=False,
        log_format="text",
    )


# -- PHI log scan ---------------------------------------------------------------------------------------------
# Every log record of the session (at INFO and above, as production logs) and the subprocess output tests hand
# in are scanned at the end; any phone number, seeded name, drug name or message body fails the session.


@pytest.fixture(autouse=True)
def _no_leaked_log_handler() -> Iterator[None]:
    """A CLI command run in-process installs midbot's stderr handler on the root logger; take it off after the
    test, so the next test's captured stderr holds only what that test's command wrote."""
    root = logging.getLogger()
    level = root.level
    yield
    for handler in [h for h in root.handlers if isinstance(h, StderrHandler)]:
        root.removeHandler(handler)
    root.setLevel(level)


def pytest_configure(config: pytest.Config) -> None:
    from tests import phi

    phi.install()
    root = logging.getLogger()
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    # SQLAlchemy logs every statement when its logger is enabled for INFO (echo); that is not ours to scan.
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from tests import phi

    if os.environ.get("MIDBOT_TEST_PHI_SCAN", "1") == "0":
        return
    found = phi.violations()
    if found:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = [f"PHI log scan: {len(found)} log line(s) hold PHI (ids only in logs):", *found[:50]]
        if reporter is not None:
            reporter.write_line("\n".join(lines), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
