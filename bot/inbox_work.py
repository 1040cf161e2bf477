"""The inbox's common case as one synchronous unit of work: a batch of texts from known patients, one commit.

``process_batch`` runs on a ``Connection`` (``bot.dbthread``): it reads what the batch needs in a few queries
(the messages, their senders, open dialogs, active prescriptions and fills), runs the dialog engine, and writes
every decision — dialog state, tasks, signals, consent, pending replies, ``processed_at`` — in the same
transaction. It does what ``Inbox._route`` does for a text from a single known patient who has not opted out:
consent keywords that change consent, opted-out or unknown senders, shared phones and empty or picture-only
texts are left to the general path (``deferred``), in order.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from bot.channel import outbound_values, refusal
from bot.db.models import Conversation, Fill, Message, Patient, Prescription, Site
from bot.dialogs import ACTIVE_STATUSES, facts_from, state_of
from bot.syncstore import (
    SiteCache,
    add_consent_event,
    load_patients,
    lock_for_write,
    open_task,
    record_signal,
)
from conversations import consent_texts as templates
from conversations import engine
from conversations.keywords import consent_action
from conversations.types import ConversationState, Decision

__all__ = ["BatchResult", "process_batch"]

_LOGGER = logging.getLogger(__name__)
_CONVERSATION = Conversation.__table__
_PRESCRIPTION = Prescription.__table__
_FILL = Fill.__table__
_MESSAGES = (
    select(Message.id, Message.from_number, Message.body, Message.processed_at)
    .where(Message.id.in_(bindparam("ids", expanding=True)), Message.direction == "in")
    .order_by(Message.id)
)
_MESSAGES_FOR_UPDATE = _MESSAGES.with_for_update()
_OPEN_CONVERSATIONS = (
    select(_CONVERSATION)
    .where(_CONVERSATION.c.patient_id.in_(bindparam("ids", expanding=True)), _CONVERSATION.c.status == "open")
    .order_by(_CONVERSATION.c.id.desc())
)
_ACTIVE_PRESCRIPTIONS = select(_PRESCRIPTION).where(
    _PRESCRIPTION.c.patient_id.in_(bindparam("ids", expanding=True)),
    _PRESCRIPTION.c.status.in_(ACTIVE_STATUSES),
)
_FILLS = select(_FILL).where(_FILL.c.prescription_id.in_(bindparam("ids", expanding=True)))
_INSERT_CONVERSATION = insert(Conversation).returning(Conversation.id)
_CLOSE_CONVERSATION = update(Conversation).where(Conversation.id == bindparam("b_id")).values(status="closed")
_CLOSE_CONVERSATION_AT = _CLOSE_CONVERSATION.values(updated_at=bindparam("b_now"))
_STEP_CONVERSATION = (
    update(Conversation)
    .where(Conversation.id == bindparam("b_id"))
    .values(
        state=bindparam("b_state"),
        context=bindparam("b_context"),
        expires_at=bindparam("b_expires"),
        prescription_id=bindparam("b_rx"),
        updated_at=bindparam("b_now"),
    )
)
_SET_DETAILED = (
    update(Patient).where(Patient.id == bindparam("b_id")).values(detailed_consent=bindparam("b_yes"))
)
_INSERT_MESSAGE = insert(Message).returning(Message.id)
_MARK_PROCESSED = (
    update(Message)
    .where(Message.id == bindparam("b_id"))
    .values(
        processed_at=bindparam("b_now"),
        patient_id=bindparam("b_patient"),
        site_id=bindparam("b_site"),
        conversation_id=bindparam("b_conversation"),
    )
)


@dataclass
class BatchResult:
    """What a batch came to: replies to deliver after commit, and messages left to the general path."""

    outgoing: list[int] = field(default_factory=list)
    deferred: list[int] = field(default_factory=list)
    processed: list[int] = field(default_factory=list)


@dataclass
class _Item:
    message_id: int
    body: str
    patient: Patient
    site: Site
    action: str | None
    conversation: Conversation | None = None


def process_batch(conn: Connection, message_ids: Sequence[int], now: datetime) -> BatchResult:
    """Process stored inbound messages (distinct senders) in one transaction; see the module docstring."""
    lock_for_write(conn)
    result = BatchResult()
    sites = SiteCache(conn)
    items = _triage(conn, message_ids, sites, result)
    if not items:
        return result
    _load_conversations(conn, items)
    therapy = _load_therapy(conn, [item.patient.id for item in items])
    marks: list[dict[str, Any]] = []
    for item in items:
        prescriptions, fills = therapy.get(item.patient.id, ([], []))
        conversation_id = _handle(conn, sites, item, prescriptions, fills, now, result.outgoing)
        marks.append(
            {
                "b_id": item.message_id,
                "b_now": now,
                "b_patient": item.patient.id,
                "b_site": item.patient.site_id,
                "b_conversation": conversation_id,
            }
        )
        result.processed.append(item.message_id)
    conn.execute(_MARK_PROCESSED, marks)
    return result


def _triage(
    conn: Connection, message_ids: Sequence[int], sites: SiteCache, result: BatchResult
) -> list[_Item]:
    """The messages this path handles, in order; the others go to ``result.deferred``."""
    query = _MESSAGES_FOR_UPDATE if conn.dialect.name == "postgresql" else _MESSAGES
    found = conn.execute(query, {"ids": list(message_ids)})
    rows = {mid: (number, body or "", processed) for mid, number, body, processed in found}
    numbers = {number for number, _body, processed in rows.values() if processed is None}
    by_phone: dict[str, list[Patient]] = {}
    for patient in load_patients(conn, "phone", numbers) if numbers else []:
        by_phone.setdefault(patient.phone, []).append(patient)
    items: list[_Item] = []
    seen: set[str] = set()
    for message_id in message_ids:
        if message_id not in rows or rows[message_id][2] is not None:
            continue  # gone, or processed already (a replay of the work): nothing to do
        number, body, _processed = rows[message_id]
        item = _fast_item(message_id, number, body, by_phone.get(number, []), sites, seen)
        if item is None:
            result.deferred.append(message_id)
        else:
            items.append(item)
        seen.add(number)
    return items


def _fast_item(
    message_id: int, number: str, body: str, patients: list[Patient], sites: SiteCache, seen: set[str]
) -> _Item | None:
    if number in seen or len(patients) != 1 or not body.strip():
        return None  # a second text from the number, an unknown or shared phone, an empty or picture text
    patient = patients[0]
    if patient.opted_out_at is not None:
        return None
    action = consent_action(body, opted_out=False)
    site = sites.get(patient.site_id)
    if action in ("opt_out", "opt_in") or site is None:
        return None
    return _Item(message_id, body, patient, site, action)


def _load_conversations(conn: Connection, items: list[_Item]) -> None:
    """Each patient's newest open dialog."""
    by_patient = {item.patient.id: item for item in items}
    for row in conn.execute(_OPEN_CONVERSATIONS, {"ids": list(by_patient)}).mappings():
        item = by_patient[row["patient_id"]]
        if item.conversation is None:
            item.conversation = Conversation(**row)


def _load_therapy(
    conn: Connection, patient_ids: list[str]
) -> dict[str, tuple[list[Prescription], list[Fill]]]:
    """Active prescriptions and their fills, per patient, in two queries."""
    therapy: dict[str, tuple[list[Prescription], list[Fill]]] = {}
    owner: dict[str, str] = {}
    for row in conn.execute(_ACTIVE_PRESCRIPTIONS, {"ids": patient_ids}).mappings():
        rx = Prescription(**row)
        therapy.setdefault(rx.patient_id, ([], []))[0].append(rx)
        owner[rx.id] = rx.patient_id
    if owner:
        for row in conn.execute(_FILLS, {"ids": list(owner)}).mappings():
            therapy[owner[row["prescription_id"]]][1].append(Fill(**row))
    return therapy


def _handle(
    conn: Connection,
    sites: SiteCache,
    item: _Item,
    prescriptions: list[Prescription],
    fills: list[Fill],
    now: datetime,
    outgoing: list[int],
) -> int | None:
    """One message (as ``Inbox._route`` then ``dialogs.handle_inbound``); returns its conversation id."""
    patient, site = item.patient, item.site
    if item.action == "help":
        body = templates.render("help", patient.language, site_name=site.name, site_phone=site.phone)
        outgoing.extend(_replies(conn, patient, site, [(body, "help")], now, None, None))
        return None
    if item.action == "ambiguous":
        body = templates.render("stop_clarify", patient.language, site_name=site.name)
        outgoing.extend(_replies(conn, patient, site, [(body, "reply")], now, None, None))
    facts = facts_from(patient, site, sites.config(site), prescriptions, fills, now)
    decision = engine.handle(state_of(item.conversation), item.body, facts, now)
    return _apply(conn, sites, decision, item, now, outgoing)


def _apply(
    conn: Connection, sites: SiteCache, decision: Decision, item: _Item, now: datetime, outgoing: list[int]
) -> int | None:
    """As ``dialogs.apply_decision`` for a patient's text: state, tasks, signals, consent, replies."""
    patient, site, source_id = item.patient, item.site, item.message_id
    conversation = _save_state(conn, patient, item.conversation, decision.next_state, now)
    rx_default = conversation.prescription_id if conversation else None
    first_task_id = None
    for spec in decision.tasks:
        task_id = open_task(
            conn,
            sites,
            site_id=site.id,
            queue=spec.queue,
            kind=spec.kind,
            title=spec.title,
            now=now,
            patient_id=patient.id,
            priority=spec.priority,
            detail=dict(spec.detail),
            prescription_id=spec.prescription_id or rx_default,
            source_message_id=source_id,
        )
        first_task_id = first_task_id or task_id
    for index, signal in enumerate(decision.signals):
        record_signal(
            conn,
            patient_id=patient.id,
            site_id=site.id,
            kind=signal.kind,
            source="patient",
            occurred_at=now,
            value=dict(signal.value),
            prescription_id=signal.prescription_id or rx_default,
            source_message_id=source_id,
            dedupe_key=f"msg:{source_id}:{index}:{signal.kind}",
        )
    if decision.consent in ("detailed_yes", "detailed_no"):
        patient.detailed_consent = decision.consent == "detailed_yes"
        conn.execute(
            update(Patient).where(Patient.id == patient.id).values(detailed_consent=patient.detailed_consent)
        )
        add_consent_event(
            conn, patient_id=patient.id, change=decision.consent, source="sms", message_id=source_id, now=now
        )
    replies = [(reply.body, reply.kind) for reply in decision.replies]
    conversation_id = conversation.id if conversation else None
    outgoing.extend(_replies(conn, patient, site, replies, now, conversation_id, first_task_id))
    return conversation_id


def _save_state(
    conn: Connection,
    patient: Patient,
    conversation: Conversation | None,
    state: ConversationState | None,
    now: datetime,
) -> Conversation | None:
    """As ``dialogs._save_state``: close, step or replace the patient's open dialog."""
    if state is None:
        if conversation is not None:
            conversation.status = "closed"
            conn.execute(
                update(Conversation)
                .where(Conversation.id == conversation.id)
                .values(status="closed", updated_at=now)
            )
        return conversation
    if conversation is None or conversation.status != "open" or conversation.flow != state.flow:
        if conversation is not None and conversation.status == "open":
            conn.execute(
                update(Conversation).where(Conversation.id == conversation.id).values(status="closed")
            )
        values = {
            "patient_id": patient.id,
            "prescription_id": state.prescription_id,
            "flow": state.flow,
            "state": state.state,
            "context": state.context,
            "expires_at": state.expires_at,
            "status": "open",
            "created_at": now,
            "updated_at": now,
        }
        new_id = conn.execute(_INSERT_CONVERSATION, values).scalar_one()
        return Conversation(id=new_id, **values)
    conversation.prescription_id = state.prescription_id or conversation.prescription_id
    step = {
        "b_id": conversation.id,
        "b_state": state.state,
        "b_context": dict(state.context),
        "b_expires": state.expires_at,
        "b_rx": conversation.prescription_id,
        "b_now": now,
    }
    conn.execute(_STEP_CONVERSATION, step)
    return conversation


def _replies(
    conn: Connection,
    patient: Patient,
    site: Site,
    replies: list[tuple[str, str]],
    now: datetime,
    conversation_id: int | None,
    task_id: int | None,
) -> list[int]:
    """Pending outbound messages answering the patient (as ``Channel.prepare`` with reply_to_patient)."""
    ids = []
    for body, kind in replies:
        reason = refusal(patient, site, kind, True, now)
        if reason is not None:
            _LOGGER.info("reply to patient %s not sent: %s", patient.id, reason)
            continue
        values = outbound_values(site, patient.phone, body, kind, now)
        values.update(patient_id=patient.id, conversation_id=conversation_id, task_id=task_id)
        ids.append(conn.execute(_INSERT_MESSAGE, values).scalar_one())
    return ids
