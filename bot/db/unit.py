"""Helpers for one unit of work on a ``Connection``: the write lock, cached site reads, patient rows.

Every shared write in ``bot.db`` takes a ``Connection`` and runs in its caller's transaction: on the database
worker (``bot.db.worker``), or from an ``AsyncSession`` through ``in_session`` (SQLAlchemy's ``run_sync``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from bot.db.models import Patient, Site
from bot.db.sitecfg import SiteConfig, site_config

__all__ = ["SiteCache", "in_session", "load_patients", "lock_for_write"]

P = ParamSpec("P")
T = TypeVar("T")
_PATIENT = Patient.__table__
_SITE = Site.__table__
# Statements built once: building one per call (``insert(T).values(**row)``) costs five times its execution.
_SITE_BY_ID = select(_SITE).where(_SITE.c.id == bindparam("site_id"))
_PATIENTS_BY = {
    column: select(_PATIENT)
    .where(_PATIENT.c[column].in_(bindparam("values", expanding=True)))
    .order_by(_PATIENT.c.id)
    for column in ("id", "phone")
}


async def in_session(
    session: AsyncSession, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """Run one of the store's writes on an ``AsyncSession``'s connection, in its transaction.

    Pending ORM changes are flushed first, so the write sees them; the ORM objects the session holds are not
    refreshed (reload what the write changed with ``populate_existing`` when you read it again).
    """
    await session.flush()

    def call(sync: Session) -> T:
        return fn(sync.connection(), *args, **kwargs)

    return await session.run_sync(call)


def lock_for_write(conn: Connection) -> None:
    """Make this transaction a writer from its first statement, so what it reads stays true until it commits.

    On the SQLite thread (pysqlite begins a transaction only at the first write) this is ``BEGIN IMMEDIATE``:
    the write lock, taken now. PostgreSQL callers lock the rows they read instead (``FOR UPDATE``); an
    in-memory SQLite database has a single connection, so nothing else can write meanwhile.
    """
    if conn.dialect.driver != "pysqlite":
        return
    dbapi = conn.connection.dbapi_connection
    if dbapi is not None and not getattr(dbapi, "in_transaction", True):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class SiteCache:
    """Sites (as detached ORM objects) and their SiteConfig, read at most once per unit of work."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._sites: dict[str, Site | None] = {}
        self._configs: dict[str, SiteConfig] = {}

    def get(self, site_id: str) -> Site | None:
        """The site, or None."""
        if site_id not in self._sites:
            row = self._conn.execute(_SITE_BY_ID, {"site_id": site_id}).mappings().first()
            self._sites[site_id] = Site(**row) if row is not None else None
        return self._sites[site_id]

    def config(self, site: Site) -> SiteConfig:
        """The site's typed settings."""
        if site.id not in self._configs:
            self._configs[site.id] = site_config(site)
        return self._configs[site.id]


def load_patients(conn: Connection, column: str, values: Iterable[str], lock: bool = False) -> list[Patient]:
    """Patients whose ``column`` ("id" or "phone") is one of ``values``, as detached ORM objects.

    Their changes are written with Core statements; ``lock`` reads them ``FOR UPDATE`` (PostgreSQL).
    """
    query = _PATIENTS_BY[column]
    if lock:
        query = query.with_for_update()
    rows = conn.execute(query, {"values": list(values)}).mappings()
    return [Patient(**row) for row in rows]
