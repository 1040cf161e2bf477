"""The task service: open, claim, release, snooze, move, resolve and log calls; SLA due times and escalation.

Every function that reads or changes a task takes the caller's ``Principal`` and filters by its site in the
query itself, so a task of another site is "not found" (404), never "forbidden".

Errors::

    TaskError (status 400, field)
    ├── TaskInvalid      400  bad input; ``field`` names it
    ├── TaskForbidden    403  the caller's role may not do this
    ├── TaskNotFound     404  no such task / patient for this site
    └── TaskConflict     409  the task's state does not allow it (resolved, claimed by someone else, refused)
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from sqlalchemy import case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import audit
from bot.auth import QUEUES, Principal, get_scoped
from bot.clock import Clock
from bot.db.models import Fill, Message, Patient, Prescription, Signal, Site, StaffUser, Task, TaskNote
from scheduler.sitecfg import SiteConfig, parse_hhmm, site_config

__all__ = [
    "ACTIVE_STATUSES",
    "OUTCOMES",
    "QUEUES",
    "STATUSES",
    "STATUS_FILTERS",
    "PatientRecord",
    "QueueSummary",
    "ReplyOutcome",
    "TaskConflict",
    "TaskError",
    "TaskForbidden",
    "TaskInvalid",
    "TaskNotFound",
    "TherapyView",
    "claim_task",
    "compute_due_by",
    "drug_mentions",
    "escalate_overdue",
    "get_task",
    "list_messages",
    "list_tasks",
    "load_patient_record",
    "log_call",
    "move_task",
    "open_task",
    "queue_summary",
    "release_task",
    "reply_snippets",
    "resolve_task",
    "send_reply",
    "snooze_task",
    "task_notes",
    "wake_snoozed",
]

_LOGGER = logging.getLogger(__name__)

OUTCOMES: tuple[str, ...] = (
    "refill_processed",
    "advice_given",
    "referred_to_clinician",
    "patient_unreachable",
    "copay_assistance_started",
    "no_action_needed",
    "duplicate",
    "wrong_number",
    "other",
)
STATUSES: tuple[str, ...] = ("open", "claimed", "snoozed", "resolved")
ACTIVE_STATUSES: tuple[str, ...] = ("open", "claimed", "snoozed")
STATUS_FILTERS: dict[str, tuple[str, ...]] = {
    "active": ACTIVE_STATUSES,
    "open": ("open",),
    "claimed": ("claimed",),
    "snoozed": ("snoozed",),
    "resolved": ("resolved",),
    "all": STATUSES,
}
MAX_NOTE = 2000
MAX_BODY = 1600
MAX_SNOOZE = timedelta(days=30)
DEFAULT_SLA_HOURS = 24.0
URGENT_SLA_HOURS = 1.0
_WEBHOOK_TIMEOUT = aiohttp.ClientTimeout(total=10)
# Urgent clinical tasks sit above everything else, then priority, then the nearest due time.
_URGENT_FIRST = case((Task.queue == "urgent_clinical", 0), else_=1)


class TaskError(Exception):
    """A task operation was refused; ``status`` is the HTTP status, ``field`` the input at fault."""

    status = 400

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class TaskInvalid(TaskError):
    """Bad input."""

    status = 400


class TaskForbidden(TaskError):
    """The caller's role may not do this."""

    status = 403


class TaskNotFound(TaskError):
    """No such task (or patient) for the caller's site."""

    status = 404


class TaskConflict(TaskError):
    """The task's current state does not allow this."""

    status = 409


# -- SLA -------------------------------------------------------------------------------------------------


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


# -- opening and reading ---------------------------------------------------------------------------------


async def open_task(
    session: AsyncSession,
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
) -> Task:
    """Open a task in a queue with its SLA due time (in the caller's unit of work).

    Args:
        session: the unit of work (the caller commits).
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

    Raises:
        ValueError: unknown queue or site.
    """
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}")
    site = await session.get(Site, site_id)
    if site is None:
        raise ValueError(f"unknown site {site_id!r}")
    priority = 1 if queue == "urgent_clinical" else min(max(int(priority), 1), 4)
    task = Task(
        site_id=site_id,
        patient_id=patient_id,
        prescription_id=prescription_id,
        queue=queue,
        kind=kind[:40],
        priority=priority,
        status="open",
        title=title[:200],
        detail=dict(detail or {}),
        due_by=compute_due_by(site_config(site), queue, now),
        source_message_id=source_message_id,
        created_at=now,
        updated_at=now,
    )
    session.add(task)
    await session.flush()
    await audit.record(
        session,
        actor=audit.SYSTEM,
        action="task.open",
        site_id=site_id,
        patient_id=patient_id,
        target=f"task:{task.id}",
        detail={"queue": queue, "kind": task.kind, "priority": priority},
        at=now,
    )
    _LOGGER.info("task %s opened in %s (site %s, priority %s)", task.id, queue, site_id, priority)
    return task


async def get_task(session: AsyncSession, principal: Principal, task_id: int) -> Task:
    """A task of the caller's site whose queue the caller works.

    Raises:
        TaskNotFound: no such task at the caller's site.
        TaskForbidden: the caller's role does not work the task's queue.
    """
    task = await get_scoped(session, Task, task_id, principal.site_id)
    if task is None:
        raise TaskNotFound(f"no task {task_id}")
    if not principal.can_work(task.queue):
        raise TaskForbidden(f"your role does not work the {task.queue} queue")
    return task


async def wake_snoozed(session: AsyncSession, site_id: str | None, now: datetime) -> int:
    """Bring back snoozed tasks whose time has come (to their assignee if they had one)."""
    filters = [Task.status == "snoozed", Task.snoozed_until <= now]
    if site_id is not None:
        filters.append(Task.site_id == site_id)
    result = await session.execute(
        update(Task)
        .where(*filters)
        .values(
            status=case((Task.assignee_id.is_not(None), "claimed"), else_="open"),
            snoozed_until=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _list_filters(
    principal: Principal, queue: str | None, status: str, priority: int | None, mine: bool, unassigned: bool
) -> list[Any]:
    if queue is not None and queue not in QUEUES:
        raise TaskInvalid(f"queue must be one of {', '.join(QUEUES)}", "queue")
    if queue is not None and not principal.can_work(queue):
        raise TaskForbidden(f"your role does not work the {queue} queue", "queue")
    if status not in STATUS_FILTERS:
        raise TaskInvalid(f"status must be one of {', '.join(STATUS_FILTERS)}", "status")
    if priority is not None and not 1 <= priority <= 4:
        raise TaskInvalid("priority must be 1 to 4", "priority")
    if mine and principal.user_id is None:
        raise TaskInvalid("mine is only for signed-in staff", "mine")
    filters: list[Any] = [
        Task.site_id == principal.site_id,
        Task.queue == queue if queue else Task.queue.in_(principal.queues),
        Task.status.in_(STATUS_FILTERS[status]),
    ]
    if priority is not None:
        filters.append(Task.priority == priority)
    if mine:
        filters.append(Task.assignee_id == principal.user_id)
    if unassigned:
        filters.extend([Task.assignee_id.is_(None), Task.status != "claimed"])
    return filters


async def list_tasks(
    session: AsyncSession,
    principal: Principal,
    *,
    now: datetime,
    queue: str | None = None,
    status: str = "active",
    priority: int | None = None,
    mine: bool = False,
    unassigned: bool = False,
    page: int = 1,
    page_size: int = 50,
) -> tuple[list[Task], int]:
    """One page of the caller's tasks, most urgent first (urgent clinical, priority, due time), and the total.

    Raises:
        TaskInvalid / TaskForbidden: a bad filter (``field`` names it) or a queue the role does not work.
    """
    if page < 1:
        raise TaskInvalid("page must be 1 or more", "page")
    if not 1 <= page_size <= 200:
        raise TaskInvalid("page_size must be 1 to 200", "page_size")
    filters = _list_filters(principal, queue, status, priority, mine, unassigned)
    await wake_snoozed(session, principal.site_id, now)
    total = await session.scalar(select(func.count(Task.id)).where(*filters)) or 0
    rows = await session.scalars(
        select(Task)
        .where(*filters)
        .order_by(_URGENT_FIRST, Task.priority, Task.due_by, Task.id)
        .limit(page_size)
        .offset((page - 1) * page_size)
    )
    return list(rows), total


@dataclass(frozen=True, slots=True)
class QueueSummary:
    """A queue at a glance: open work, urgent items, SLA breaches and the oldest item's age."""

    queue: str
    count: int = 0
    urgent: int = 0
    breached: int = 0
    unassigned: int = 0
    oldest_created_at: datetime | None = None
    oldest_age_seconds: int | None = None


async def queue_summary(session: AsyncSession, principal: Principal, *, now: datetime) -> list[QueueSummary]:
    """Counts of open and claimed tasks per queue the caller works (snoozed ones are out of sight)."""
    await wake_snoozed(session, principal.site_id, now)
    rows = await session.execute(
        select(
            Task.queue,
            func.count(Task.id),
            func.sum(case((Task.priority == 1, 1), else_=0)),
            func.sum(case((Task.due_by < now, 1), else_=0)),
            func.sum(case((Task.status == "open", 1), else_=0)),
            func.min(Task.created_at),
        )
        .where(
            Task.site_id == principal.site_id,
            Task.queue.in_(principal.queues),
            Task.status.in_(("open", "claimed")),
        )
        .group_by(Task.queue)
    )
    found = {}
    for queue, count, urgent, breached, unassigned, oldest in rows:
        age = int((now - oldest).total_seconds()) if oldest is not None else None
        found[queue] = QueueSummary(
            queue, int(count), int(urgent or 0), int(breached or 0), int(unassigned or 0), oldest, age
        )
    return [found.get(queue, QueueSummary(queue)) for queue in principal.queues]


async def task_notes(session: AsyncSession, task: Task) -> list[TaskNote]:
    """The task's timeline, oldest first."""
    rows = await session.scalars(
        select(TaskNote).where(TaskNote.task_id == task.id).order_by(TaskNote.created_at, TaskNote.id)
    )
    return list(rows)


# -- actions ---------------------------------------------------------------------------------------------


async def _note(
    session: AsyncSession,
    principal: Principal,
    task: Task,
    kind: str,
    text: str,
    now: datetime,
    **detail: Any,
) -> None:
    session.add(
        TaskNote(task_id=task.id, staff_user_id=principal.user_id, kind=kind, text=text, created_at=now)
    )
    await audit.record(
        session,
        actor=principal.actor,
        action=f"task.{kind}",
        site_id=task.site_id,
        patient_id=task.patient_id,
        target=f"task:{task.id}",
        detail=detail,
        at=now,
    )


def _not_resolved(task: Task) -> None:
    if task.status == "resolved":
        raise TaskConflict(f"task {task.id} is already resolved")


def _clean_note(note: str | None, *, required: bool, name: str = "note") -> str:
    text = (note or "").strip()
    if required and not text:
        raise TaskInvalid(f"{name} is required", name)
    if len(text) > MAX_NOTE:
        raise TaskInvalid(f"{name} must be at most {MAX_NOTE} characters", name)
    return text


async def claim_task(session: AsyncSession, principal: Principal, task_id: int, *, now: datetime) -> Task:
    """Take a task: it is the caller's until released, moved or resolved (claiming it again is a no-op).

    Raises:
        TaskConflict: resolved, or claimed by someone else.
    """
    task = await get_task(session, principal, task_id)
    _not_resolved(task)
    if task.status == "claimed":
        if task.assignee_id == principal.user_id:
            return task
        raise TaskConflict(f"task {task.id} is already claimed by someone else")
    # A conditional update, so two people claiming at once cannot both win.
    result = await session.execute(
        update(Task)
        .where(Task.id == task.id, Task.status.in_(("open", "snoozed")))
        .values(status="claimed", assignee_id=principal.user_id, snoozed_until=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        raise TaskConflict(f"task {task.id} was claimed by someone else just now")
    await session.refresh(task)
    await _note(session, principal, task, "claim", "", now)
    return task


async def release_task(session: AsyncSession, principal: Principal, task_id: int, *, now: datetime) -> Task:
    """Give a claimed task back to its queue (its claimer, a clinic admin or an API token).

    Raises:
        TaskConflict: the task is not claimed.
        TaskForbidden: claimed by another person and the caller is not a clinic admin.
    """
    task = await get_task(session, principal, task_id)
    if task.status != "claimed":
        raise TaskConflict(f"task {task.id} is not claimed")
    mine = task.assignee_id == principal.user_id
    if not mine and principal.role not in ("clinic_admin", "integration"):
        raise TaskForbidden("only the person who claimed it (or a clinic admin) can release it")
    task.status, task.assignee_id, task.updated_at = "open", None, now
    await _note(session, principal, task, "release", "", now)
    return task


async def snooze_task(
    session: AsyncSession, principal: Principal, task_id: int, *, until: datetime, now: datetime
) -> Task:
    """Hide a task until ``until`` (at most 30 days); it comes back to its claimer, or to the queue.

    Raises:
        TaskInvalid: ``until`` not in the future, too far off, or without a time zone.
        TaskConflict: resolved, or an urgent clinical task (those cannot wait).
    """
    task = await get_task(session, principal, task_id)
    _not_resolved(task)
    if task.queue == "urgent_clinical":
        raise TaskConflict("urgent clinical tasks cannot be snoozed")
    if until.tzinfo is None:
        raise TaskInvalid("until must include a time zone", "until")
    if until <= now:
        raise TaskInvalid("until must be in the future", "until")
    if until > now + MAX_SNOOZE:
        raise TaskInvalid("until must be within 30 days", "until")
    task.status, task.snoozed_until, task.updated_at = "snoozed", until, now
    await _note(
        session, principal, task, "snooze", f"until {until.isoformat()}", now, until=until.isoformat()
    )
    return task


async def move_task(
    session: AsyncSession, principal: Principal, task_id: int, *, queue: str, now: datetime
) -> Task:
    """Hand a task to another queue: it is unclaimed there and gets that queue's SLA from now.

    Raises:
        TaskInvalid: unknown queue or the same queue.
        TaskConflict: resolved.
    """
    task = await get_task(session, principal, task_id)
    _not_resolved(task)
    if queue not in QUEUES:
        raise TaskInvalid(f"queue must be one of {', '.join(QUEUES)}", "queue")
    if queue == task.queue:
        raise TaskInvalid(f"the task is already in the {queue} queue", "queue")
    site = await session.get(Site, task.site_id)
    assert site is not None
    previous = task.queue
    task.queue, task.status, task.assignee_id, task.snoozed_until = queue, "open", None, None
    task.due_by = compute_due_by(site_config(site), queue, now)
    if queue == "urgent_clinical":
        task.priority = 1
    task.updated_at = now
    await _note(
        session, principal, task, "move", f"{previous} → {queue}", now, previous=previous, queue=queue
    )
    return task


async def resolve_task(
    session: AsyncSession,
    principal: Principal,
    task_id: int,
    *,
    outcome: str,
    note: str | None,
    now: datetime,
) -> Task:
    """Close a task with an outcome code (and a note, required for ``other``).

    Raises:
        TaskInvalid: unknown outcome, or a missing or too long note.
        TaskForbidden: an urgent clinical task and the caller is not a pharmacist.
        TaskConflict: already resolved.
    """
    task = await get_task(session, principal, task_id)
    if outcome not in OUTCOMES:
        raise TaskInvalid(f"outcome must be one of {', '.join(OUTCOMES)}", "outcome")
    text = _clean_note(note, required=outcome == "other")
    if not principal.can_resolve(task.queue):
        raise TaskForbidden("only a pharmacist can resolve an urgent clinical task")
    _not_resolved(task)
    task.status, task.outcome, task.note = "resolved", outcome, text or None
    task.resolved_at, task.updated_at, task.snoozed_until = now, now, None
    if task.assignee_id is None and principal.user_id is not None:
        task.assignee_id = principal.user_id
    await _note(
        session, principal, task, "resolve", f"{outcome}: {text}" if text else outcome, now, outcome=outcome
    )
    return task


async def log_call(
    session: AsyncSession, principal: Principal, task_id: int, *, note: str | None, now: datetime
) -> TaskNote:
    """Record a phone call with the patient on the task's timeline.

    Raises:
        TaskInvalid: the note is missing or too long.
    """
    task = await get_task(session, principal, task_id)
    text = _clean_note(note, required=True)
    task.updated_at = now
    await _note(session, principal, task, "call", text, now)
    notes = await task_notes(session, task)
    return notes[-1]


# -- replying by SMS -------------------------------------------------------------------------------------


def drug_mentions(body: str, drugs: Sequence[str]) -> list[str]:
    """The drug names (full name, or its first word of 4+ letters) the text mentions, case-insensitively."""
    found = []
    lowered = body.lower()
    for drug in drugs:
        name = drug.strip().lower()
        if not name:
            continue
        words = {name}
        first = re.split(r"[\s,/(]+", name)[0]
        if len(first) >= 4:
            words.add(first)
        if any(re.search(rf"(?<!\w){re.escape(word)}(?!\w)", lowered) for word in words):
            found.append(drug)
    return found


@dataclass(frozen=True, slots=True)
class ReplyOutcome:
    """What became of a staff reply: the stored message, its status and any warnings."""

    message_id: int
    status: str
    warnings: tuple[str, ...] = ()


async def _reply_context(
    session: AsyncSession, principal: Principal, task_id: int, body: str
) -> tuple[Task, Patient, list[str]]:
    task = await get_task(session, principal, task_id)
    _not_resolved(task)
    text = body.strip()
    if not text:
        raise TaskInvalid("body is required", "body")
    if len(text) > MAX_BODY:
        raise TaskInvalid(f"body must be at most {MAX_BODY} characters", "body")
    patient = (
        await get_scoped(session, Patient, task.patient_id, principal.site_id) if task.patient_id else None
    )
    if patient is None:
        raise TaskConflict("this task has no patient to text", "body")
    drugs = await session.scalars(
        select(Prescription.drug).where(
            Prescription.patient_id == patient.id, Prescription.site_id == principal.site_id
        )
    )
    named = drug_mentions(text, list(drugs))
    warnings = []
    if named and not patient.detailed_consent:
        warnings.append("the text names a drug and the patient has not agreed to detailed messages")
    return task, patient, warnings


async def _deliver(channel: Any, **kwargs: Any) -> Message:
    """The one place a staff reply meets the SMS channel (bot.channel.Channel.send_text)."""
    from bot.channel import ChannelRefused

    try:
        message: Message = await channel.send_text(**kwargs)
    except ChannelRefused as exc:
        raise TaskConflict(f"not sent: {exc.reason.replace('_', ' ')}", "body") from None
    return message


async def send_reply(
    sessionmaker: async_sessionmaker[AsyncSession],
    channel: Any,
    principal: Principal,
    task_id: int,
    *,
    body: str,
    now: datetime,
) -> ReplyOutcome:
    """Text the task's patient from the site's number and note it on the task.

    The text is stored before it is sent (by the channel), consent and opt-out are checked there; quiet
    hours do not hold it when the task came from the patient's own message.

    Raises:
        TaskInvalid: empty or too long body.
        TaskConflict: resolved task, no patient, or the channel refused (opted out, bad phone...).
    """
    async with sessionmaker.begin() as session:
        task, patient, warnings = await _reply_context(session, principal, task_id, body)
        task_ref, patient_id, answers = task.id, patient.id, task.source_message_id is not None
    message = await _deliver(
        channel,
        patient_id=patient_id,
        body=body.strip(),
        kind="staff",
        staff_user_id=principal.user_id,
        task_id=task_ref,
        reply_to_patient=answers,
    )
    async with sessionmaker.begin() as session:
        task = await get_task(session, principal, task_ref)
        task.updated_at = now
        await _note(
            session,
            principal,
            task,
            "reply",
            f"message {message.id}",
            now,
            message_id=message.id,
            status=message.status,
        )
    return ReplyOutcome(message.id, message.status, tuple(warnings))


_DEFAULT_SNIPPETS: dict[str, list[tuple[str, str]]] = {
    "en": [
        ("We will call", "This is your pharmacy team. We got your message and will call you today."),
        ("Refill in progress", "Your refill is being processed. We will text you when it is ready."),
        ("Please call us", "Please call the pharmacy at {phone} when you can."),
        ("Cost help", "We are looking into help with the cost of your medicine and will contact you soon."),
        ("Emergency", "If this is an emergency, call 911 or go to the nearest emergency room."),
    ],
    "es": [
        ("Le llamaremos", "Le habla su equipo de farmacia. Recibimos su mensaje y le llamaremos hoy."),
        ("Resurtido", "Estamos procesando su resurtido. Le enviaremos un mensaje cuando esté listo."),
        ("Llámenos", "Por favor llame a la farmacia al {phone} cuando pueda."),
        (
            "Ayuda con el costo",
            "Estamos buscando ayuda con el costo de su medicina y le contactaremos pronto.",
        ),
        ("Emergencia", "Si es una emergencia, llame al 911 o vaya a la sala de emergencias más cercana."),
    ],
}


def reply_snippets(site: Site, language: str) -> list[tuple[str, str]]:
    """Approved (label, text) replies in the patient's language: the site's ``reply_snippets`` setting
    (``{"en": [{"label": ..., "text": ...}]}``) or the built-in ones. They name no drug."""
    configured = (site.settings or {}).get("reply_snippets") or {}
    items = configured.get(language) or configured.get("en")
    pairs = (
        [(str(i.get("label", "")), str(i.get("text", ""))) for i in items if isinstance(i, dict)]
        if isinstance(items, list)
        else _DEFAULT_SNIPPETS.get(language, _DEFAULT_SNIPPETS["en"])
    )
    return [(label, text.replace("{phone}", site.phone)) for label, text in pairs if text]


# -- the patient's record --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TherapyView:
    """A prescription with its fills, when the supply runs out and its PDC (when computable)."""

    prescription: Prescription
    fills: tuple[Fill, ...]
    run_out_on: date | None
    days_since_run_out: int | None  # negative: days of supply left
    pdc: float | None


@dataclass(frozen=True, slots=True)
class PatientRecord:
    """What staff see of a patient: the row, the site, therapies and recorded signals."""

    patient: Patient
    site: Site
    therapies: tuple[TherapyView, ...] = ()
    signals: tuple[Signal, ...] = field(default_factory=tuple)


def _adherence(fills: Sequence[Fill], today: date) -> tuple[date | None, float | None]:
    if not fills:
        return None, None
    try:
        from integrations.dispensary.adherence import FillRecord, pdc, run_out_date
    except ImportError:  # pragma: no cover - the adherence module ships with midbot
        end = None
        for fill in sorted(fills, key=lambda f: f.dispensed_on):
            start = max(fill.dispensed_on, end) if end else fill.dispensed_on
            end = start + timedelta(days=fill.days_supply)
        return end, None
    records = [FillRecord(f.dispensed_on, f.days_supply) for f in fills if f.days_supply >= 1]
    run_out = run_out_date(records)
    try:
        ratio: float | None = pdc(records, period_end=today).pdc
    except ValueError:
        ratio = None
    return run_out, ratio


async def load_patient_record(
    session: AsyncSession, principal: Principal, patient_id: str, *, now: datetime, via: str
) -> PatientRecord:
    """Read a patient's record for staff, leaving an audit row (``patient.view``, target ``via``).

    Raises:
        TaskNotFound: no such patient at the caller's site.
    """
    patient = await get_scoped(session, Patient, patient_id, principal.site_id)
    if patient is None:
        raise TaskNotFound(f"no patient {patient_id}")
    site = await session.get(Site, patient.site_id)
    assert site is not None
    today = now.astimezone(ZoneInfo(patient.time_zone or site.time_zone)).date()
    prescriptions = await session.scalars(
        select(Prescription)
        .where(Prescription.patient_id == patient.id, Prescription.site_id == principal.site_id)
        .order_by(Prescription.written_on.desc(), Prescription.id)
    )
    therapies = []
    for rx in prescriptions:
        fills = tuple(
            await session.scalars(
                select(Fill).where(Fill.prescription_id == rx.id).order_by(Fill.dispensed_on)
            )
        )
        run_out, ratio = _adherence(fills, today)
        since = (today - run_out).days if run_out else None
        therapies.append(TherapyView(rx, fills, run_out, since, ratio))
    signals = await session.scalars(
        select(Signal)
        .where(Signal.patient_id == patient.id, Signal.site_id == principal.site_id)
        .order_by(Signal.occurred_at.desc(), Signal.id.desc())
        .limit(100)
    )
    await audit.record(
        session,
        actor=principal.actor,
        action="patient.view",
        site_id=principal.site_id,
        patient_id=patient.id,
        target=via,
        at=now,
    )
    return PatientRecord(patient, site, tuple(therapies), tuple(signals))


async def list_messages(
    session: AsyncSession,
    principal: Principal,
    patient_id: str,
    *,
    now: datetime,
    via: str,
    page: int = 1,
    page_size: int = 100,
    newest_first: bool = False,
) -> tuple[list[Message], int]:
    """A patient's SMS thread (in and out), audited as ``patient.messages``.

    Raises:
        TaskNotFound: no such patient at the caller's site.
        TaskInvalid: a bad page.
    """
    if page < 1:
        raise TaskInvalid("page must be 1 or more", "page")
    patient = await get_scoped(session, Patient, patient_id, principal.site_id)
    if patient is None:
        raise TaskNotFound(f"no patient {patient_id}")
    filters = [Message.patient_id == patient.id]
    total = await session.scalar(select(func.count(Message.id)).where(*filters)) or 0
    order = (
        (Message.created_at.desc(), Message.id.desc()) if newest_first else (Message.created_at, Message.id)
    )
    rows = await session.scalars(
        select(Message).where(*filters).order_by(*order).limit(page_size).offset((page - 1) * page_size)
    )
    await audit.record(
        session,
        actor=principal.actor,
        action="patient.messages",
        site_id=principal.site_id,
        patient_id=patient.id,
        target=via,
        at=now,
    )
    return list(rows), total


async def staff_names(session: AsyncSession, site_id: str, ids: set[int]) -> dict[int, str]:
    """Display names (or emails) of a site's staff users by id."""
    if not ids:
        return {}
    rows = await session.execute(
        select(StaffUser.id, StaffUser.name, StaffUser.email).where(
            StaffUser.id.in_(ids), StaffUser.site_id == site_id
        )
    )
    return {uid: name or email for uid, name, email in rows}


# -- SLA escalation --------------------------------------------------------------------------------------


async def _escalate_one(session: AsyncSession, task_id: int, now: datetime) -> Task | None:
    result = await session.execute(
        update(Task)
        .where(Task.id == task_id, Task.escalated_at.is_(None))
        .values(
            escalated_at=now,
            priority=case((Task.priority > 1, Task.priority - 1), else_=1),
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        return None  # another replica got there first
    task = await session.get(Task, task_id, populate_existing=True)
    assert task is not None
    session.add(
        TaskNote(task_id=task.id, kind="escalated", text="SLA breached: priority raised", created_at=now)
    )
    await audit.record(
        session,
        actor=audit.SYSTEM,
        action="task.escalate",
        site_id=task.site_id,
        patient_id=task.patient_id,
        target=f"task:{task.id}",
        detail={"priority": task.priority},
        at=now,
    )
    return task


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
    clock: Clock,
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
    now = clock.now()
    notices: list[tuple[str, dict[str, Any]]] = []
    async with sessionmaker.begin() as session:
        await wake_snoozed(session, None, now)
        due = await session.scalars(
            select(Task.id)
            .where(Task.status.in_(("open", "claimed")), Task.due_by <= now, Task.escalated_at.is_(None))
            .order_by(Task.due_by)
            .limit(limit)
        )
        webhooks: dict[str, str] = {}
        for task_id in list(due):
            task = await _escalate_one(session, task_id, now)
            if task is None:
                continue
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
