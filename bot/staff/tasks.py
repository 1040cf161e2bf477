"""The task service staff use: list, claim, release, snooze, move, resolve, log calls and reply by SMS.

Every function that reads or changes a task takes the caller's ``Principal`` and filters by its site in the
query itself, so a task of another site is "not found" (404), never "forbidden" (``bot.staff.errors``). The
writes go through the store (``bot.db.tasks``), with their timeline note and audit row.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import tasks as db_tasks
from bot.db.models import Patient, Prescription, Site, StaffUser, Task, TaskNote
from bot.db.sitecfg import site_config
from bot.db.unit import in_session
from bot.db.vocabulary import QUEUES
from bot.sms.channel import prepare_reply, refusal
from bot.sms.delivery import Deliverer
from bot.staff.auth import ROLE_QUEUES, Principal, get_scoped
from bot.staff.errors import TaskConflict, TaskError, TaskForbidden, TaskInvalid, TaskNotFound
from bot.staff.network import site_members
from conversations.symptoms import drug_names
from integrations.twilio.errors import TwilioError

__all__ = [
    "ACTIVE_STATUSES",
    "OUTCOMES",
    "QUEUES",
    "STATUSES",
    "STATUS_FILTERS",
    "QueueSummary",
    "ReplyOutcome",
    "TaskConflict",
    "TaskError",
    "TaskForbidden",
    "TaskInvalid",
    "TaskNotFound",
    "assign_task",
    "claim_task",
    "colleagues",
    "drug_mentions",
    "get_task",
    "list_tasks",
    "log_call",
    "move_task",
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
# Urgent clinical tasks sit above everything else, then priority, then the nearest due time.
_URGENT_FIRST = case((Task.queue == "urgent_clinical", 0), else_=1)


# -- SLA -------------------------------------------------------------------------------------------------


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
    return await in_session(session, db_tasks.wake_snoozed, site_id, now)


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


async def _change(
    session: AsyncSession,
    principal: Principal,
    task: Task,
    values: dict[str, Any],
    note: tuple[str, str],
    now: datetime,
    *,
    only_if_status: tuple[str, ...] | None = None,
    **detail: Any,
) -> bool:
    """Change the task through the store (timeline note and audit row with it), then reload it."""
    changed = await in_session(
        session,
        db_tasks.change_task,
        task.id,
        values,
        now=now,
        actor=principal.actor,
        note=note,
        staff_user_id=principal.user_id,
        detail=detail,
        only_if_status=only_if_status,
    )
    await session.refresh(task)
    return changed


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
    values = {"status": "claimed", "assignee_id": principal.user_id, "snoozed_until": None}
    if not await _change(
        session, principal, task, values, ("claim", ""), now, only_if_status=("open", "snoozed")
    ):
        raise TaskConflict(f"task {task.id} was claimed by someone else just now")
    return task


async def assign_task(
    session: AsyncSession, principal: Principal, task_id: int, *, assignee_id: int, now: datetime
) -> Task:
    """Hand a task to a colleague who works the site (its staff, or network staff it lets in) and whose role
    works its queue (it becomes theirs, claimed).

    Raises:
        TaskInvalid: no such colleague, or their role does not work the task's queue (field ``assignee``).
        TaskConflict: resolved.
    """
    task = await get_task(session, principal, task_id)
    _not_resolved(task)
    colleague = await session.scalar(
        select(StaffUser).where(StaffUser.id == assignee_id, await site_members(session, principal.site_id))
    )
    if colleague is None or not colleague.active:
        raise TaskInvalid("choose a colleague of this site", "assignee")
    if task.queue not in ROLE_QUEUES.get(colleague.role, ()):
        raise TaskInvalid(f"{colleague.name or colleague.email} does not work this queue", "assignee")
    if task.status == "claimed" and task.assignee_id == assignee_id:
        return task
    values = {"status": "claimed", "assignee_id": assignee_id, "snoozed_until": None}
    note = ("assign", colleague.name or colleague.email)
    await _change(session, principal, task, values, note, now, assignee_id=assignee_id)
    return task


async def colleagues(session: AsyncSession, principal: Principal) -> list[tuple[int, str, str]]:
    """The site's active staff (and the network staff it lets in) as (id, name, role), for "assign to"."""
    rows = await session.execute(
        select(StaffUser.id, StaffUser.name, StaffUser.email, StaffUser.role)
        .where(await site_members(session, principal.site_id), StaffUser.active.is_(True))
        .order_by(StaffUser.name, StaffUser.email)
    )
    return [(uid, name or email, role) for uid, name, email, role in rows]


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
    await _change(session, principal, task, {"status": "open", "assignee_id": None}, ("release", ""), now)
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
    note = ("snooze", f"until {until.isoformat()}")
    await _change(
        session,
        principal,
        task,
        {"status": "snoozed", "snoozed_until": until},
        note,
        now,
        until=until.isoformat(),
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
    values: dict[str, Any] = {
        "queue": queue,
        "status": "open",
        "assignee_id": None,
        "snoozed_until": None,
        "due_by": db_tasks.compute_due_by(site_config(site), queue, now),
    }
    if queue == "urgent_clinical":
        values["priority"] = 1
    note = ("move", f"{previous} → {queue}")
    await _change(session, principal, task, values, note, now, previous=previous, queue=queue)
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
    values: dict[str, Any] = {
        "status": "resolved",
        "outcome": outcome,
        "note": text or None,
        "resolved_at": now,
        "snoozed_until": None,
    }
    if task.assignee_id is None and principal.user_id is not None:
        values["assignee_id"] = principal.user_id
    entry = ("resolve", f"{outcome}: {text}" if text else outcome)
    await _change(session, principal, task, values, entry, now, outcome=outcome)
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
    await _change(session, principal, task, {}, ("call", text), now)
    notes = await task_notes(session, task)
    return notes[-1]


# -- replying by SMS -------------------------------------------------------------------------------------


def drug_mentions(body: str, drugs: Sequence[str]) -> list[str]:
    """The drugs the text names (full name, its first word of 4+ letters, or a generic or brand name of it:
    "Xeljanz" for tofacitinib), case-insensitively."""
    found = []
    lowered = body.lower()
    for drug in drugs:
        name = drug.strip().lower()
        if not name:
            continue
        words = {name, *drug_names(name)}
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


async def send_reply(
    sessionmaker: async_sessionmaker[AsyncSession],
    deliverer: Deliverer,
    principal: Principal,
    task_id: int,
    *,
    body: str,
    now: datetime,
) -> ReplyOutcome:
    """Text the task's patient from the site's number and note it on the task.

    The text is stored before it is sent, consent and opt-out are checked then; quiet hours do not hold it
    when the task came from the patient's own message.

    Raises:
        TaskInvalid: empty or too long body.
        TaskConflict: resolved task, no patient, or the channel refused (opted out, bad phone...).
    """
    async with sessionmaker.begin() as session:
        task, patient, warnings = await _reply_context(session, principal, task_id, body)
        site = await session.get(Site, patient.site_id)
        assert site is not None
        answers = task.source_message_id is not None
        reason = refusal(patient, site, "staff", answers, now)
        if reason is not None:
            raise TaskConflict(f"not sent: {reason.replace('_', ' ')}", "body")
        message_id = await in_session(
            session,
            prepare_reply,
            patient=patient,
            site=site,
            body=body.strip(),
            kind="staff",
            now=now,
            reply_to_patient=answers,
            task_id=task.id,
            staff_user_id=principal.user_id,
        )
        assert message_id is not None
        task_ref = task.id
    try:
        state = await deliverer.deliver_one(message_id)
        status = state.status
    except TwilioError:  # stored: the delivery retry job sends it when the provider answers again
        status = "pending"
    async with sessionmaker.begin() as session:
        task = await get_task(session, principal, task_ref)
        note = ("reply", f"message {message_id}")
        await _change(session, principal, task, {}, note, now, message_id=message_id, status=status)
    return ReplyOutcome(message_id, status, tuple(warnings))


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


async def staff_names(session: AsyncSession, site_id: str, ids: set[int]) -> dict[int, str]:
    """Display names (or emails) of a site's staff users (and the network staff it lets in) by id."""
    if not ids:
        return {}
    rows = await session.execute(
        select(StaffUser.id, StaffUser.name, StaffUser.email).where(
            StaffUser.id.in_(ids), await site_members(session, site_id)
        )
    )
    return {uid: name or email for uid, name, email in rows}
