"""SLA escalation: a task past its due time is escalated once — priority up a step, a timeline note, and a
notice (ids only) posted to the site's on-call webhook.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import aiohttp
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import Site, Task
from bot.db.sitecfg import site_config
from bot.db.tasks import escalate_task, wake_snoozed
from bot.db.unit import in_session

__all__ = ["escalate_overdue"]

_LOGGER = logging.getLogger(__name__)
_WEBHOOK_TIMEOUT = aiohttp.ClientTimeout(total=10)


def _notice(task: Task, now: datetime) -> dict[str, Any]:
    return {
        "event": "task.sla_breached",
        "task_id": task.id,
        "site_id": task.site_id,
        "queue": task.queue,
        "kind": task.kind,
        "priority": task.priority,
        "age_minutes": int((now - task.created_at).total_seconds() // 60),
        "overdue_minutes": int((now - task.due_by).total_seconds() // 60),
        "due_by": task.due_by.isoformat(),
        "escalated_at": now.isoformat(),
    }


async def _post_notice(http: aiohttp.ClientSession, url: str, notice: dict[str, Any]) -> bool:
    try:
        async with http.post(url, json=notice, timeout=_WEBHOOK_TIMEOUT) as response:
            if response.status >= 300:
                _LOGGER.warning("on-call webhook answered %s for task %s", response.status, notice["task_id"])
                return False
            return True
    except (TimeoutError, aiohttp.ClientError) as exc:
        _LOGGER.warning("on-call webhook failed for task %s: %s", notice["task_id"], type(exc).__name__)
        return False


async def escalate_overdue(
    sessionmaker: async_sessionmaker[AsyncSession],
    http: aiohttp.ClientSession,
    now: datetime,
    *,
    default_webhook_url: str = "",
    limit: int = 200,
) -> int:
    """Escalate tasks past their SLA, once each: raise priority one step (floor 1), note it, and POST a
    notice (ids only) to the site's on-call webhook (``oncall_webhook_url`` site setting, else
    ``default_webhook_url``). Snoozed tasks whose time has come are woken first.

    Returns:
        The number of tasks escalated by this call.
    """
    notices: list[tuple[str, dict[str, Any]]] = []
    async with sessionmaker.begin() as session:
        await in_session(session, wake_snoozed, None, now)
        due = await session.scalars(
            select(Task.id)
            .where(Task.status.in_(("open", "claimed")), Task.due_by <= now, Task.escalated_at.is_(None))
            .order_by(Task.due_by)
            .limit(limit)
        )
        webhooks: dict[str, str] = {}
        for task_id in list(due):
            if not await in_session(session, escalate_task, task_id, now):
                continue  # another replica got there first
            task = await session.get(Task, task_id, populate_existing=True)
            assert task is not None
            if task.site_id not in webhooks:
                site = await session.get(Site, task.site_id)
                url = site_config(site).oncall_webhook_url if site else ""
                webhooks[task.site_id] = url or default_webhook_url
            notices.append((webhooks[task.site_id], _notice(task, now)))
    for url, notice in notices:
        _LOGGER.info(
            "task %s escalated (site %s, queue %s)", notice["task_id"], notice["site_id"], notice["queue"]
        )
        if url:
            await _post_notice(http, url, notice)
    return len(notices)
