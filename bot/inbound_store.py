"""Durable, exactly-once storage of inbound messages with group commit.

Concurrent webhook requests hand their message to one writer that inserts everything waiting in a single
statement and transaction (``INSERT … ON CONFLICT (provider_sid) DO NOTHING RETURNING``). Each request is
answered only after its row is committed, so Twilio never gets a 200 for a message we could lose, while the
database sees one commit per batch instead of one per request.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db.models import Message

__all__ = ["InboundStore"]

_LOGGER = logging.getLogger(__name__)
_MAX_BATCH = 200

Pending = tuple[dict[str, Any], "asyncio.Future[int | None]"]


class InboundStore:
    """Stores inbound messages; ``store`` returns the new row id, or None for a replayed MessageSid."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._insert = (sqlite.insert if engine.dialect.name == "sqlite" else postgresql.insert)(Message)
        self._queue: asyncio.Queue[Pending] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None

    async def store(self, values: dict[str, Any]) -> int | None:
        """Insert one inbound message (durably, before returning)."""
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((values, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write_loop())
        return await future

    async def close(self) -> None:
        """Stop the writer once the queue is empty."""
        if self._writer is not None and not self._writer.done():
            while not self._queue.empty():
                await asyncio.sleep(0.01)
            self._writer.cancel()

    async def _write_loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < _MAX_BATCH:
                batch.append(self._queue.get_nowait())
            try:
                ids = await self._insert_batch([values for values, _ in batch])
            except Exception as exc:  # every waiting request fails; Twilio will see a 500 and may retry
                _LOGGER.exception("storing %d inbound messages failed", len(batch))
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            seen: set[str] = set()
            for values, future in batch:
                sid = values["provider_sid"]
                result = ids.get(sid) if sid not in seen else None
                seen.add(sid)
                if not future.done():
                    future.set_result(result)

    async def _insert_batch(self, rows: list[dict[str, Any]]) -> dict[str, int]:
        unique: dict[str, dict[str, Any]] = {}
        for row in rows:
            unique.setdefault(row["provider_sid"], row)
        statement = (
            self._insert.values(list(unique.values()))
            .on_conflict_do_nothing(index_elements=["provider_sid"])
            .returning(Message.id, Message.provider_sid)
        )
        async with self._engine.begin() as conn:
            result = await conn.execute(statement)
            return {sid: message_id for message_id, sid in result.all()}
