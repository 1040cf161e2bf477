"""The pharmacist's workspace: who each queue row is about and what they said, task details in words,
patient search and the audited reveal of a phone number (DESIGN "Patients for staff").

Reads are filtered by the caller's site in the query itself, so another site's patient is "not found".
Every search and every reveal writes an audit row through the store, in the same transaction as the read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import audit
from bot.db.models import Message, Patient, Task
from bot.db.unit import in_session
from bot.staff.auth import Principal, get_scoped
from bot.staff.errors import TaskInvalid, TaskNotFound

__all__ = [
    "INBOX_PAGE",
    "InboxRow",
    "PatientHit",
    "RowFacts",
    "describe_detail",
    "humanize",
    "recent_conversations",
    "reveal_phone",
    "row_facts",
    "search_patients",
    "snippet",
]

SNIPPET_CHARS = 140
_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
MAX_QUERY = 100
SEARCH_LIMIT = 50
SEVERITY_WORDS = {
    "none": "none (0 of 4)",
    "mild": "mild (1 of 4)",
    "moderate": "moderate (2 of 4)",
    "severe": "severe (3 of 4)",
    "very_severe": "very severe (4 of 4)",
}
# Detail keys staff read, in words; keys not listed are shown with their name made readable.
DETAIL_LABELS = {
    "text": "Patient wrote",
    "symptoms": "Symptoms",
    "symptom": "Symptom",
    "severity": "Severity",
    "grade": "Severity",
    "previous_severity": "Previous severity",
    "self_harm": "Self-harm words",
    "flow": "Conversation",
    "step": "At step",
    "intent": "Understood as",
    "method": "How",
    "reason": "Reason",
    "days_ready": "Days ready, not picked up",
    "hours": "Hours without a reply",
    "surplus_days": "Extra days of medicine",
    "days_left": "Days of medicine left (patient)",
    "expected_days_left": "Days left expected",
    "media": "Pictures",
}
# Keys that are plumbing (or PHI shown elsewhere, behind "Show number"), never shown as details.
HIDDEN_DETAIL = frozenset({"from", "message_id", "source", "media_urls"})


def humanize(value: str | None) -> str:
    """``very_severe`` → ``very severe``; ``refill_reminder`` → ``refill reminder``."""
    return (value or "").replace("_", " ").strip()


def _word(key: str, value: Any) -> str | None:
    if value is None or value == "" or value == [] or value == {}:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        words = [_word(key, v) for v in value]
        return ", ".join(w for w in words if w) or None
    if isinstance(value, dict):
        parts = [(humanize(str(k)), _word(str(k), v)) for k, v in value.items()]
        return "; ".join(f"{k}: {w}" for k, w in parts if w) or None
    text = str(value)
    if _ISO_TIME.match(text):
        try:
            return datetime.fromisoformat(text).strftime("%a %d %b %Y %H:%M %Z").strip()
        except ValueError:
            pass
    if key in ("severity", "grade", "previous_severity") and text in SEVERITY_WORDS:
        return SEVERITY_WORDS[text]
    return text if key == "text" else humanize(text)


def describe_detail(detail: dict[str, Any] | None) -> list[tuple[str, str]]:
    """A task's detail as (label, words) pairs: no reprs, no raw enums, no empty values, no plumbing."""
    pairs = []
    for key, value in (detail or {}).items():
        if key in HIDDEN_DETAIL:
            continue
        words = _word(key, value)
        if words is not None:
            pairs.append((DETAIL_LABELS.get(key, humanize(key).capitalize()), words))
    return pairs


def snippet(text: str | None, limit: int = SNIPPET_CHARS) -> str:
    """The first ``limit`` characters of a text on one line (escaping is the template's job)."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


@dataclass(frozen=True, slots=True)
class RowFacts:
    """What a queue row says about its patient: full name, a distinguishing detail, their other open tasks."""

    names: dict[str, str]
    details: dict[str, str]
    said: dict[int, str]
    open_counts: dict[str, int]


def _distinguishing(patient: Patient) -> str:
    born = f"born {patient.birth_date.strftime('%d %b %Y')}" if patient.birth_date else "no birth date"
    digits = "".join(ch for ch in patient.phone if ch.isdigit())
    return f"{born} · phone ending {digits[-4:]}" if len(digits) >= 4 else born


async def row_facts(session: AsyncSession, principal: Principal, tasks: Sequence[Task]) -> RowFacts:
    """Names, birth date and phone ending, the triggering text and open-task counts for a list of tasks."""
    patient_ids = {t.patient_id for t in tasks if t.patient_id}
    names: dict[str, str] = {}
    details: dict[str, str] = {}
    counts: dict[str, int] = {}
    if patient_ids:
        for patient in await session.scalars(
            select(Patient).where(Patient.id.in_(patient_ids), Patient.site_id == principal.site_id)
        ):
            names[patient.id] = f"{patient.first_name} {patient.last_name}".strip()
            details[patient.id] = _distinguishing(patient)
        counts = await _open_counts(session, principal.site_id, patient_ids)
    return RowFacts(names, details, await _said(session, principal, tasks), counts)


async def _open_counts(session: AsyncSession, site_id: str, patient_ids: Iterable[str]) -> dict[str, int]:
    """How many open, claimed or snoozed tasks each patient has."""
    rows = await session.execute(
        select(Task.patient_id, func.count(Task.id))
        .where(
            Task.site_id == site_id,
            Task.patient_id.in_(set(patient_ids)),
            Task.status.in_(("open", "claimed", "snoozed")),
        )
        .group_by(Task.patient_id)
    )
    return {str(pid): int(n) for pid, n in rows}


async def _said(session: AsyncSession, principal: Principal, tasks: Iterable[Task]) -> dict[int, str]:
    """Per task, what the patient wrote: the triggering message, else the text the dialog kept."""
    by_message = {t.source_message_id: t.id for t in tasks if t.source_message_id}
    said = {t.id: snippet(str((t.detail or {}).get("text") or "")) for t in tasks}
    if by_message:
        rows = await session.execute(
            select(Message.id, Message.body).where(
                Message.id.in_(by_message), Message.site_id == principal.site_id
            )
        )
        for message_id, body in rows:
            if body and body.strip():
                said[by_message[message_id]] = snippet(body)
    return {k: v for k, v in said.items() if v}


@dataclass(frozen=True, slots=True)
class PatientHit:
    """One patient found by a search (what a result row shows; the full number stays hidden)."""

    id: str
    first_name: str
    last_name: str
    birth_date: date | None
    phone_last4: str
    language: str
    opted_out: bool


def _search_filter(q: str) -> Any:
    """Exact id, or every word a prefix of the first or last name, or 4 digits: the phone's last four."""
    digits = "".join(ch for ch in q if ch.isdigit())
    if len(digits) == 4 and digits == q.replace("-", "").replace(" ", ""):
        return or_(Patient.phone.like(f"%{digits}"), Patient.id == q)
    names = and_(
        *(
            or_(
                func.lower(Patient.first_name).startswith(w, autoescape=True),
                func.lower(Patient.last_name).startswith(w, autoescape=True),
            )
            for w in q.lower().split()
        )
    )
    return or_(Patient.id == q, names)


async def search_patients(
    session: AsyncSession, principal: Principal, q: str, *, now: datetime, via: str
) -> list[PatientHit]:
    """The caller's site's patients matching ``q``: id, name words (prefixes) or the last 4 phone digits.

    Audited as ``patient.search`` (the query text itself is not stored: it may be a name).

    Raises:
        TaskInvalid: an empty or over-long query (field ``q``).
    """
    text = q.strip()
    if not text:
        raise TaskInvalid("q is required: a name, a patient id or the last 4 digits of the phone", "q")
    if len(text) > MAX_QUERY:
        raise TaskInvalid(f"q must be at most {MAX_QUERY} characters", "q")
    rows = list(
        await session.scalars(
            select(Patient)
            .where(Patient.site_id == principal.site_id, _search_filter(text))
            .order_by(Patient.last_name, Patient.first_name, Patient.id)
            .limit(SEARCH_LIMIT)
        )
    )
    await in_session(
        session,
        audit.record,
        actor=principal.actor,
        action="patient.search",
        site_id=principal.site_id,
        target=via,
        detail={"results": len(rows)},
        at=now,
    )
    return [
        PatientHit(
            p.id,
            p.first_name,
            p.last_name,
            p.birth_date,
            "".join(ch for ch in p.phone if ch.isdigit())[-4:],
            p.language,
            p.opted_out_at is not None,
        )
        for p in rows
    ]


async def reveal_phone(
    session: AsyncSession, principal: Principal, patient_id: str, *, now: datetime, via: str
) -> str:
    """A patient's full number, with a ``phone_revealed`` audit row (DESIGN "Patients for staff").

    Raises:
        TaskNotFound: no such patient at the caller's site.
    """
    patient = await get_scoped(session, Patient, patient_id, principal.site_id)
    if patient is None:
        raise TaskNotFound(f"no patient {patient_id}")
    await in_session(
        session,
        audit.record,
        actor=principal.actor,
        action="phone_revealed",
        site_id=principal.site_id,
        patient_id=patient.id,
        target=via,
        at=now,
    )
    return patient.phone


INBOX_PAGE = 50
MAX_INBOX_DAYS = 365


@dataclass(frozen=True, slots=True)
class InboxRow:
    """One conversation in the inbox: its patient and its latest message (in or out)."""

    patient_id: str
    name: str
    detail: str
    direction: str
    said: str
    at: datetime
    media: int
    open_tasks: int


async def recent_conversations(
    session: AsyncSession,
    principal: Principal,
    *,
    now: datetime,
    days: int = 30,
    waiting: bool = False,
    page: int = 1,
) -> tuple[list[InboxRow], int]:
    """The site's patients' conversations with a message in the last ``days``, newest first: the latest
    message of each (``waiting``: only those whose latest message is the patient's). Audited as
    ``inbox.view`` (one row for the list; the patient's own page audits each record).

    Raises:
        TaskInvalid: ``days`` outside 1-365 or a bad page (the field is named).
    """
    if not 1 <= days <= MAX_INBOX_DAYS:
        raise TaskInvalid(f"days must be 1 to {MAX_INBOX_DAYS}", "days")
    if page < 1:
        raise TaskInvalid("page must be 1 or more", "page")
    newest = func.row_number().over(
        partition_by=Message.patient_id, order_by=(Message.created_at.desc(), Message.id.desc())
    )
    ranked = (
        select(Message.id.label("id"), newest.label("n"))
        .join(Patient, Patient.id == Message.patient_id)
        .where(Patient.site_id == principal.site_id, Message.created_at >= now - timedelta(days=days))
        .subquery()
    )
    filters = [ranked.c.n == 1] + ([Message.direction == "in"] if waiting else [])
    base = select(Message).join(ranked, ranked.c.id == Message.id).where(*filters)
    total = await session.scalar(select(func.count()).select_from(base.subquery())) or 0
    latest = list(
        await session.scalars(
            base.order_by(Message.created_at.desc(), Message.id.desc())
            .limit(INBOX_PAGE)
            .offset((page - 1) * INBOX_PAGE)
        )
    )
    rows = await _inbox_rows(session, principal, latest)
    await in_session(session, audit.record, actor=principal.actor, action="inbox.view", site_id=principal.site_id,
                     target="inbox", detail={"rows": len(rows), "waiting": waiting}, at=now)  # fmt: skip
    return rows, total


async def _inbox_rows(
    session: AsyncSession, principal: Principal, latest: Sequence[Message]
) -> list[InboxRow]:
    ids = {m.patient_id for m in latest if m.patient_id}
    people = {
        p.id: p
        for p in await session.scalars(
            select(Patient).where(Patient.id.in_(ids), Patient.site_id == principal.site_id)
        )
    }
    counts = await _open_counts(session, principal.site_id, ids)
    out = []
    for m in latest:
        patient = people.get(m.patient_id or "")
        if patient is None:
            continue
        out.append(
            InboxRow(patient.id, f"{patient.first_name} {patient.last_name}".strip(), _distinguishing(patient),
                     m.direction, snippet(m.body), m.created_at, m.num_media or len(m.media or []),
                     counts.get(patient.id, 0))
        )  # fmt: skip
    return out
