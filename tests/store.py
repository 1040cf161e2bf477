"""Test helpers over the store's one write path: seed tasks and signals from an ``AsyncSession`` and get the
ORM rows back, as the app's own async callers do (``bot.db.unit.in_session``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import signals, tasks
from bot.db.models import Signal, Task
from bot.db.unit import in_session


async def open_task(session: AsyncSession, **kwargs: Any) -> Task:
    """``bot.db.tasks.open_task`` in the session's transaction; returns the Task row."""
    task_id = await in_session(session, tasks.open_task, **kwargs)
    task = await session.get(Task, task_id)
    assert task is not None
    return task


async def record_signal(session: AsyncSession, **kwargs: Any) -> Signal | None:
    """``bot.db.signals.record_signal`` in the session's transaction; the Signal row, or None (a duplicate)."""
    signal_id = await in_session(session, signals.record_signal, **kwargs)
    return await session.get(Signal, signal_id) if signal_id is not None else None
