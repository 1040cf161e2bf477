"""The task store: open a task with its SLA due time, change it with a timeline note, escalate it — once each.

Every path that opens or changes a task (the inbox, dialogs, delivery outcomes, staff pages and the API, the
SLA job) calls these functions on its unit of work's ``Connection``; each change writes its audit row in the
same transaction.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, case, insert, select, update

from bot.db import audit
from bot.db.models import Task, TaskNote
from bot.db.sitecfg import SiteConfig, parse_hhmm
from bot.db.unit import SiteCache
from bot.db.vocabulary import QUEUES

__all__ = [
    "DEFAULT_SLA_HOURS",
    "URGENT_SLA_HOURS",
    "add_note",
    "change_task",
    "compute_due_by",
    "escalate_task",
    "open_task",
    "wake_snoozed",
]

_LOGGER = logging.getLogger(__name__)
DEFAULT_SLA_HOURS = 24.0
URGENT_SLA_HOURS = 1.0
_INSERT_TASK = insert(Task).returning(Task.id)
_INSERT_NOTE = insert(TaskNote).returning(TaskNote.id)


def _is_business_day(cfg: SiteConfig, day: date) -> bool:
    return day.weekday() in cfg.business_days and day not in cfg.closed_dates


def _next_business_day(cfg: SiteConfig, day: date) -> date | None:
    for offset in range(1, 32):
        candidate = day + timedelta(days=offset)
        if _is_business_day(cfg, candidate):
            return candidate
    return None


def compute_due_by(cfg: SiteConfig, queue: str, now: datetime) -> datetime:
    """When a new task of ``queue`` must be handled, in UTC.

    * urgent_clinical: ``sla_hours["urgent_clinical"]`` (1 h) from now, around the clock;
    * clinical: the end of the site's business day, or of the next business day when the site has closed;
    * others: ``sla_hours[queue]`` (24 h) from now, carried past closed days to the next business day at
      the same local time ("business-ish" hours).
    """
    zone = ZoneInfo(cfg.time_zone)
    local = now.astimezone(zone)
    if queue == "urgent_clinical":
        return now + timedelta(hours=cfg.sla_hours.get("urgent_clinical", URGENT_SLA_HOURS))
    if queue == "clinical" and "clinical" not in cfg.sla_hours:
        close = parse_hhmm(cfg.business_hours[1])
        day: date | None = local.date()
        if not (_is_business_day(cfg, local.date()) and local.time().replace(tzinfo=None) < close):
            day = _next_business_day(cfg, local.date())
        if day is None:  # a site with no business days: fall back to a day
            return now + timedelta(hours=DEFAULT_SLA_HOURS)
        return datetime.combine(day, close, tzinfo=zone).astimezone(now.tzinfo)
    due = local + timedelta(hours=cfg.sla_hours.get(queue, DEFAULT_SLA_HOURS))
    for _ in range(31):
        if not cfg.business_days or _is_business_day(cfg, due.date()):
            break
        due += timedelta(days=1)
    return due.astimezone(now.tzinfo)


def open_task(
    conn: Connection,
    *,
    site_id: str,
    queue: str,
    kind: str,
    title: str,
    now: datetime,
    patient_id: str | None = None,
    priority: int = 3,
    detail: dict[str, Any] | None = None,
    prescription_id: str | None = None,
    source_message_id: int | None = None,
    sites: SiteCache | None = None,
) -> int:
    """Open a task in a queue with its SLA due time and its audit row; returns the task id.

    Args:
        conn: the unit of work (the caller commits).
        site_id: the site whose staff work the task.
        queue: one of QUEUES; urgent_clinical tasks always get priority 1.
        kind: what the task is about (side_effect, refill_request, fix_contact...).
        title: one line for the queue page (no drug names: it shows on shared screens).
        now: the app clock's time.
        patient_id: the patient, if known.
        priority: 1 (highest) to 4.
        detail: JSON-safe data for the task page (intent, severity, symptoms...).
        prescription_id: the therapy concerned, if any.
        source_message_id: the patient's message that raised it (a staff reply then answers it).
        sites: the unit of work's site cache, if it has one.

    Raises:
        ValueError: unknown queue or site.
    """
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}")
    sites = sites or SiteCache(conn)
    site = sites.get(site_id)
    if site is None:
        raise ValueError(f"unknown site {site_id!r}")
    priority = 1 if queue == "urgent_clinical" else min(max(int(priority), 1), 4)
    row = {
        "site_id": site_id,
        "patient_id": patient_id,
        "prescription_id": prescription_id,
        "queue": queue,
        "kind": kind[:40],
        "priority": priority,
        "status": "open",
        "title": title[:200],
        "detail": dict(detail or {}),
        "due_by": compute_due_by(sites.config(site), queue, now),
        "source_message_id": source_message_id,
        "created_at": now,
        "updated_at": now,
    }
    task_id: int = conn.execute(_INSERT_TASK, row).scalar_one()
    audit.record(
        conn,
        actor=audit.SYSTEM,
        action="task.open",
        site_id=site_id,
        patient_id=patient_id,
        target=f"task:{task_id}",
        detail={"queue": queue, "kind": kind[:40], "priority": priority},
        at=now,
    )
    _LOGGER.info("task %s opened in %s (site %s, priority %s)", task_id, queue, site_id, priority)
    return task_id


def add_note(
    conn: Connection,
    task_id: int,
    *,
    kind: str,
    text: str,
    now: datetime,
    actor: str,
    staff_user_id: int | None = None,
    detail: dict[str, Any] | None = None,
    action: str | None = None,
    message_id: int | None = None,
) -> int:
    """One entry on a task's timeline with its audit row (``action``, else ``task.KIND``); returns its id."""
    row = conn.execute(select(Task.site_id, Task.patient_id).where(Task.id == task_id)).one()
    values: dict[str, Any] = {
        "task_id": task_id,
        "staff_user_id": staff_user_id,
        "kind": kind,
        "text": text,
        "message_id": message_id,
        "created_at": now,
    }
    note_id: int = conn.execute(_INSERT_NOTE, values).scalar_one()
    audit.record(
        conn,
        actor=actor,
        action=action or f"task.{kind}",
        site_id=row.site_id,
        patient_id=row.patient_id,
        target=f"task:{task_id}",
        detail=detail or {},
        at=now,
    )
    return note_id


def change_task(
    conn: Connection,
    task_id: int,
    values: dict[str, Any],
    *,
    now: datetime,
    actor: str,
    note: tuple[str, str] | None = None,
    staff_user_id: int | None = None,
    detail: dict[str, Any] | None = None,
    only_if_status: tuple[str, ...] | None = None,
) -> bool:
    """Change a task's columns and, with ``note`` (kind, text), put it on the timeline; True if it changed.

    ``only_if_status`` makes the change conditional on the task's current status, so two people claiming
    at once cannot both win.
    """
    stmt = update(Task).where(Task.id == task_id)
    if only_if_status is not None:
        stmt = stmt.where(Task.status.in_(only_if_status))
    if "queue" in values and values["queue"] not in QUEUES:
        raise ValueError(f"unknown queue {values['queue']!r}")
    result = conn.execute(stmt.values(**values, updated_at=now))
    if result.rowcount != 1:
        return False
    if note is not None:
        add_note(
            conn,
            task_id,
            kind=note[0],
            text=note[1],
            now=now,
            actor=actor,
            staff_user_id=staff_user_id,
            detail=detail,
        )
    return True


def escalate_task(conn: Connection, task_id: int, now: datetime) -> bool:
    """Mark a task past its SLA escalated, once: priority up one step (floor 1), a timeline note, audit."""
    result = conn.execute(
        update(Task)
        .where(Task.id == task_id, Task.escalated_at.is_(None))
        .values(
            escalated_at=now,
            priority=case((Task.priority > 1, Task.priority - 1), else_=1),
            updated_at=now,
        )
    )
    if result.rowcount != 1:
        return False  # another replica got there first
    priority = conn.execute(select(Task.priority).where(Task.id == task_id)).scalar_one()
    add_note(
        conn,
        task_id,
        kind="escalated",
        text="SLA breached: priority raised",
        now=now,
        actor=audit.SYSTEM,
        detail={"priority": priority},
        action="task.escalate",
    )
    return True


def wake_snoozed(conn: Connection, site_id: str | None, now: datetime) -> int:
    """Bring back snoozed tasks whose time has come (to their assignee if they had one); returns how many."""
    stmt = update(Task).where(Task.status == "snoozed", Task.snoozed_until <= now)
    if site_id is not None:
        stmt = stmt.where(Task.site_id == site_id)
    result = conn.execute(
        stmt.values(
            status=case((Task.assignee_id.is_not(None), "claimed"), else_="open"),
            snoozed_until=None,
            updated_at=now,
        )
    )
    return int(result.rowcount or 0)
