"""Durable, exactly-once storage of inbound messages with group commit.

Concurrent webhook requests hand their message to one writer that inserts everything waiting in a single
transaction (``INSERT … ON CONFLICT (provider_sid) DO NOTHING RETURNING``, one cached statement executed for
the whole batch). Each request is answered only after its row is committed, so Twilio never gets a 200 for a
message we could lose, while the database sees one commit per batch instead of one per request.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from bot.db.models import Message
from bot.db.worker import DbWorker, Priority
from bot.sms.batching import GroupWriter, Pressure

__all__ = ["InboundStore"]

_LOGGER = logging.getLogger(__name__)
_MAX_BATCH = 200


class InboundStore:
    """Stores inbound messages; ``store`` returns the new row id, or None for a replayed MessageSid."""

    def __init__(self, db: DbWorker, pressure: Pressure | None = None) -> None:
        self._db = db
        self._pressure = pressure or Pressure()
        insert = sqlite.insert if db.dialect == "sqlite" else postgresql.insert
        self._statement = (
            insert(Message)
            .on_conflict_do_nothing(index_elements=["provider_sid"])
            .returning(Message.id, Message.provider_sid)
        )
        self._writer: GroupWriter[dict[str, Any], int | None] = GroupWriter(
            self._write, name="inbound store", max_batch=_MAX_BATCH
        )

    async def store(self, values: dict[str, Any]) -> int | None:
        """Insert one inbound message (durably, before returning)."""
        with self._pressure.answering():
            return await self._writer.submit(values)

    async def close(self) -> None:
        """Write what is queued, then stop the writer."""
        await self._writer.close()

    async def _write(self, rows: list[dict[str, Any]]) -> list[int | None]:
        ids = await self._db.run_at(Priority.ANSWER, lambda conn: self._insert(conn, rows))
        results: list[int | None] = []
        seen: set[str] = set()
        for row in rows:
            sid = row["provider_sid"]
            # A MessageSid twice in one batch: the first caller gets the row, the other is a replay.
            results.append(ids.get(sid) if sid not in seen else None)
            seen.add(sid)
        return results

    def _insert(self, conn: Connection, rows: list[dict[str, Any]]) -> dict[str, int]:
        unique: dict[str, dict[str, Any]] = {}
        for row in rows:
            unique.setdefault(row["provider_sid"], row)
        result = conn.execute(self._statement, list(unique.values()))
        return {str(sid): message_id for message_id, sid in result.all()}
