"""Engine and session factory for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import StaticPool

__all__ = ["make_engine", "make_sessionmaker", "make_sync_sqlite_engine"]


def _sqlite_path(url: str) -> Path | None:
    rest = url.split(":///", 1)[1] if ":///" in url else ""
    if not rest or rest.startswith(":memory:"):
        return None
    return Path(rest.split("?", 1)[0])


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the web server read while the dispatcher writes; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Per connection, in memory only: a bigger page cache (about 16 MB) and temporary tables off disk.
    cursor.execute("PRAGMA cache_size=-16000")
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()


def make_engine(database_url: str, **kwargs: Any) -> AsyncEngine:
    """Create the async engine; for SQLite, make the folder and set WAL and foreign keys on connect.

    SQL parameters are never put in error messages or logs (``hide_parameters``): they carry phone numbers
    and message bodies.
    """
    kwargs.setdefault("hide_parameters", True)
    if database_url.startswith("sqlite"):
        path = _sqlite_path(database_url)
        if path is not None and path.parent and not path.parent.exists():
            os.makedirs(path.parent, exist_ok=True)
        if path is not None:  # (``:memory:`` gets SQLAlchemy's single shared connection instead)
            # A pool big enough for the webhook, inbox workers and jobs, so connections are reused.
            kwargs.setdefault("pool_size", 20)
            kwargs.setdefault("max_overflow", 20)
        engine = create_async_engine(database_url, **kwargs)
        event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    return create_async_engine(database_url, **kwargs)


def make_sync_sqlite_engine(database_url: str) -> Engine | None:
    """A synchronous (pysqlite) engine on the same SQLite file, for work run in a thread of its own.

    It holds one connection (the thread's), with the same PRAGMAs as the async engine. None when the URL
    is not a SQLite file (PostgreSQL, or ``:memory:``, which another connection would not see).
    """
    if not database_url.startswith("sqlite") or _sqlite_path(database_url) is None:
        return None
    sync_url = "sqlite://" + database_url.split("://", 1)[1]
    engine = create_engine(
        sync_url, poolclass=StaticPool, connect_args={"check_same_thread": False}, hide_parameters=True
    )
    event.listen(engine, "connect", _on_sqlite_connect)
    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """One sessionmaker per engine; every unit of work opens its own session from it."""
    return async_sessionmaker(engine, expire_on_commit=False)
