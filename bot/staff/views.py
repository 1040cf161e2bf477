"""Saved views: a staff user's named queue filters, remembered for them on every device they sign in on.

A view stores only the queue page's own filter keys (queue, status, priority, mine, unassigned, overdue), in a
fixed order, so a saved link can hold nothing else and means the same thing tomorrow.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import parse_qsl, urlencode

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import SavedView
from bot.staff.auth import Principal
from bot.staff.errors import TaskInvalid, TaskNotFound

__all__ = ["MAX_VIEWS", "VIEW_KEYS", "clean_query", "delete_view", "list_views", "save_view"]

VIEW_KEYS = ("queue", "status", "priority", "mine", "unassigned", "overdue")
MAX_VIEWS = 20
MAX_NAME = 60


def clean_query(raw: str) -> str:
    """Only the queue filters, each once, in VIEW_KEYS order (``done=``, ``page=`` and the like dropped)."""
    given = {k: v for k, v in parse_qsl(raw, keep_blank_values=False) if k in VIEW_KEYS}
    return urlencode([(k, given[k][:40]) for k in VIEW_KEYS if k in given])


def _user(principal: Principal) -> int:
    if principal.user_id is None:
        raise TaskInvalid("saved views belong to staff users", "name")
    return principal.user_id


async def list_views(session: AsyncSession, principal: Principal) -> list[SavedView]:
    """The caller's saved views, by name."""
    if principal.user_id is None:
        return []
    rows = await session.scalars(
        select(SavedView).where(SavedView.user_id == principal.user_id).order_by(SavedView.name, SavedView.id)
    )
    return list(rows)


async def save_view(
    session: AsyncSession, principal: Principal, *, name: str, query: str, now: datetime
) -> SavedView:
    """Save (or, under a name already used, replace) the caller's view of ``query``.

    Raises:
        TaskInvalid: no name, a name over 60 characters, or MAX_VIEWS views already (field ``name``).
    """
    user_id = _user(principal)
    label = " ".join(name.split())
    if not label:
        raise TaskInvalid("give the view a name", "name")
    if len(label) > MAX_NAME:
        raise TaskInvalid(f"a view's name is at most {MAX_NAME} characters", "name")
    view = await session.scalar(
        select(SavedView).where(SavedView.user_id == user_id, SavedView.name == label)
    )
    if view is None:
        count = (
            await session.scalar(select(func.count(SavedView.id)).where(SavedView.user_id == user_id)) or 0
        )
        if count >= MAX_VIEWS:
            raise TaskInvalid(f"you have {MAX_VIEWS} saved views already: delete one first", "name")
        view = SavedView(user_id=user_id, name=label, created_at=now)
        session.add(view)
    view.query = clean_query(query)
    await session.flush()
    return view


async def delete_view(session: AsyncSession, principal: Principal, view_id: int) -> None:
    """Delete one of the caller's views (someone else's is "not found").

    Raises:
        TaskNotFound: no such view of the caller.
    """
    result = await session.execute(
        delete(SavedView).where(SavedView.id == view_id, SavedView.user_id == _user(principal))
    )
    if not getattr(result, "rowcount", 0):
        raise TaskNotFound(f"no saved view {view_id}")
