"""A throwaway copy of the store: every table's rows from one database into a fresh SQLite file.

`midbot simulate` works on such a copy so the real database is only read. Sign-in material is not copied:
sessions, API tokens, login attempts and the status-callback backlog are left out, and staff password hashes
are blanked (the rows stay, since tasks and messages point at them).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Table, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.db import models  # noqa: F401  (every table must be on the metadata)
from bot.db.base import Base
from bot.db.migrate import current_revision, head_revision

__all__ = ["SKIPPED_TABLES", "SnapshotError", "copy_store", "has_patients"]

_LOGGER = logging.getLogger(__name__)
SKIPPED_TABLES = frozenset({"staff_session", "login_attempt", "api_token", "provider_status"})
_BLANKED = {"staff_user": {"password_hash": "!"}}
_CHUNK = 500


class SnapshotError(Exception):
    """The source database cannot be copied (not migrated, or at another revision)."""


async def has_patients(engine: AsyncEngine) -> bool:
    """True when the database is migrated and holds at least one patient (it is only read)."""
    if await current_revision(engine) is None:
        return False
    async with engine.connect() as conn:
        count = await conn.scalar(select(func.count()).select_from(models.Patient.__table__))
    return bool(count)


async def copy_store(source: AsyncEngine, target: AsyncEngine) -> dict[str, int]:
    """Copy every table of ``source`` into ``target`` (a migrated, empty SQLite database).

    Returns:
        Rows copied per table.

    Raises:
        SnapshotError: the source is not at the schema revision this midbot expects.
    """
    head, found = head_revision(), await current_revision(source)
    if found != head:
        raise SnapshotError(
            f"the database is at schema revision {found or 'none'}, this midbot expects {head}: "
            "run `midbot migrate` first"
        )
    counts: dict[str, int] = {}
    async with source.connect() as read, target.begin() as write:
        # Message and task point at each other: check the foreign keys once, at commit.
        await write.execute(text("PRAGMA defer_foreign_keys=ON"))
        for table in Base.metadata.tables.values():
            if table.name not in SKIPPED_TABLES:
                counts[table.name] = await _copy_table(read, write, table)
    _LOGGER.info("store copied: %s rows", sum(counts.values()))
    return counts


async def _copy_table(read: AsyncConnection, write: AsyncConnection, table: Table) -> int:
    blank = _BLANKED.get(table.name, {})
    copied = 0
    result = await read.stream(select(table))
    async for chunk in result.partitions(_CHUNK):
        rows: list[dict[str, Any]] = [{**row._mapping, **blank} for row in chunk]
        await write.execute(table.insert(), rows)
        copied += len(rows)
    return copied
