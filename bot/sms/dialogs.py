"""Carrying out the dialog engine's decisions against the store: conversations, replies, tasks, signals.

One implementation for every path: a patient's text (``bot.sms.handling``), a timed-out question
(``run_timeouts``) and the start of an outreach (``bot.sms.outreach``) all run these functions on their unit
of work's ``Connection``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, bindparam, insert, select, update

from bot.db.consent import set_detailed_consent
from bot.db.models import Conversation, Fill, Patient, Prescription, Site
from bot.db.signals import record_signal
from bot.db.sitecfg import SiteConfig
from bot.db.tasks import open_task
from bot.db.unit import SiteCache, load_patients
from bot.sms.channel import in_quiet_hours, next_window_start, prepare_reply
from conversations import engine
from conversations.types import ConversationState, Decision, PatientFacts, SiteFacts, Therapy

__all__ = [
    "ACTIVE_STATUSES",
    "Applied",
    "apply_decision",
    "facts_from",
    "load_therapy",
    "open_conversations",
    "run_timeouts",
    "save_state",
    "state_of",
]

_LOGGER = logging.getLogger(__name__)
ACTIVE_STATUSES = ("active", "received", "on_hold")  # prescriptions the dialogs know about
_CONVERSATION = Conversation.__table__
_PRESCRIPTION = Prescription.__table__
_FILL = Fill.__table__
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
_CLOSE_OPEN = (
    update(Conversation)
    .where(Conversation.patient_id == bindparam("b_patient"), Conversation.status == "open")
    .values(status="closed", updated_at=bindparam("b_now"))
)
_CLOSE_ONE = (
    update(Conversation)
    .where(Conversation.id == bindparam("b_id"))
    .values(status="closed", updated_at=bindparam("b_now"))
)
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
_DUE_CONVERSATIONS = (
    select(_CONVERSATION)
    .where(_CONVERSATION.c.status == "open", _CONVERSATION.c.expires_at <= bindparam("now"))
    .order_by(_CONVERSATION.c.expires_at)
    .limit(bindparam("limit"))
)
_POSTPONE = (
    update(Conversation).where(Conversation.id == bindparam("b_id")).values(expires_at=bindparam("b_at"))
)


def _run_out(fills: list[Fill]) -> tuple[date | None, date | None, int | None]:
    """(first fill, run-out date, last days supply) with early refills carried forward."""
    if not fills:
        return None, None, None
    ordered = sorted(fills, key=lambda f: f.dispensed_on)
    supply_end = ordered[0].dispensed_on
    for fill in ordered:
        supply_end = max(supply_end, fill.dispensed_on) + timedelta(days=fill.days_supply)
    return ordered[0].dispensed_on, supply_end, ordered[-1].days_supply


def load_therapy(
    conn: Connection, patient_ids: Sequence[str]
) -> dict[str, tuple[list[Prescription], list[Fill]]]:
    """Active prescriptions and their fills, per patient, in two queries."""
    therapy: dict[str, tuple[list[Prescription], list[Fill]]] = {}
    owner: dict[str, str] = {}
    for row in conn.execute(_ACTIVE_PRESCRIPTIONS, {"ids": list(patient_ids)}).mappings():
        rx = Prescription(**row)
        therapy.setdefault(rx.patient_id, ([], []))[0].append(rx)
        owner[rx.id] = rx.patient_id
    if owner:
        for row in conn.execute(_FILLS, {"ids": list(owner)}).mappings():
            therapy[owner[row["prescription_id"]]][1].append(Fill(**row))
    return therapy


def open_conversations(conn: Connection, patient_ids: Sequence[str]) -> dict[str, Conversation]:
    """Each patient's newest open dialog (as detached objects)."""
    found: dict[str, Conversation] = {}
    for row in conn.execute(_OPEN_CONVERSATIONS, {"ids": list(patient_ids)}).mappings():
        found.setdefault(row["patient_id"], Conversation(**row))
    return found


def facts_from(
    patient: Patient,
    site: Site,
    cfg: SiteConfig,
    prescriptions: Sequence[Prescription],
    fills: Sequence[Fill],
    now: datetime,
) -> PatientFacts:
    """The dialog engine's facts from rows already read: the patient's active prescriptions and their fills."""
    today = now.astimezone(ZoneInfo(patient.time_zone or cfg.time_zone)).date()
    fills_by_rx: dict[str, list[Fill]] = {p.id: [] for p in prescriptions}
    for fill in fills:
        if fill.prescription_id in fills_by_rx:
            fills_by_rx[fill.prescription_id].append(fill)
    therapies = []
    for rx in prescriptions:
        rx_fills = fills_by_rx[rx.id]
        first, run_out, supply = _run_out(rx_fills)
        last = max(rx_fills, key=lambda f: f.dispensed_on) if rx_fills else None
        therapies.append(
            Therapy(
                prescription_id=rx.id,
                drug=rx.drug,
                therapy_class=rx.therapy_class,
                payer_type=rx.payer_type,
                status=rx.status,
                last_fill_on=last.dispensed_on if last else None,
                days_supply=supply,
                run_out_on=run_out,
                expected_days_left=(run_out - today).days if run_out else None,
                next_copay=(last.copay_cents / 100) if last else None,
                first_fill_on=first,
            )
        )
    site_facts = SiteFacts(
        site_id=site.id,
        name=site.name,
        phone=site.phone,
        time_zone=cfg.time_zone,
        offers_delivery=cfg.offers_delivery,
        offers_pickup=cfg.offers_pickup,
        business_hours=cfg.business_hours,
        business_days=cfg.business_days,
        copay_threshold=cfg.copay_threshold,
        fever_threshold_f=cfg.fever_threshold_f,
        self_care=cfg.self_care,
        after_hours_phone=cfg.after_hours_phone,
    )
    oncology = any("onc" in (t.therapy_class or "").lower() for t in therapies) or not therapies
    return PatientFacts(
        patient_id=patient.id,
        first_name=patient.first_name,
        language=patient.language,
        detailed_consent=patient.detailed_consent,
        site=site_facts,
        therapies=tuple(therapies),
        on_chemotherapy=oncology,
    )


def state_of(conversation: Conversation | None) -> ConversationState | None:
    """The engine's view of a stored dialog (None: no open question)."""
    if conversation is None:
        return None
    return ConversationState(
        flow=conversation.flow,
        state=conversation.state,
        context=dict(conversation.context or {}),
        expires_at=conversation.expires_at,
        prescription_id=conversation.prescription_id,
    )


def save_state(
    conn: Connection,
    patient_id: str,
    conversation: Conversation | None,
    state: ConversationState | None,
    now: datetime,
) -> Conversation | None:
    """Close, step or replace the patient's open dialog; a new dialog closes every other open one."""
    if state is None:
        if conversation is not None:
            conversation.status = "closed"
            conn.execute(_CLOSE_ONE, {"b_id": conversation.id, "b_now": now})
        return conversation
    if conversation is None or conversation.status != "open" or conversation.flow != state.flow:
        conn.execute(_CLOSE_OPEN, {"b_patient": patient_id, "b_now": now})
        values = {
            "patient_id": patient_id,
            "prescription_id": state.prescription_id,
            "flow": state.flow,
            "state": state.state,
            "context": dict(state.context),
            "expires_at": state.expires_at,
            "status": "open",
            "created_at": now,
            "updated_at": now,
        }
        new_id = conn.execute(_INSERT_CONVERSATION, values).scalar_one()
        return Conversation(id=new_id, **values)
    conversation.prescription_id = state.prescription_id or conversation.prescription_id
    conversation.state, conversation.context = state.state, dict(state.context)
    conversation.expires_at = state.expires_at
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


class Applied:
    """What storing a decision came to: the dialog it left open (if any) and the replies to deliver."""

    __slots__ = ("conversation_id", "outgoing", "task_ids")

    def __init__(self, conversation_id: int | None, outgoing: list[int], task_ids: list[int]) -> None:
        self.conversation_id = conversation_id
        self.outgoing = outgoing
        self.task_ids = task_ids


def apply_decision(
    conn: Connection,
    sites: SiteCache,
    decision: Decision,
    *,
    patient: Patient,
    site: Site,
    now: datetime,
    conversation: Conversation | None,
    source_message_id: int | None = None,
    reply_to_patient: bool = False,
    reply_kind: str | None = None,
) -> Applied:
    """Store the decision: next dialog state, tasks, signals, consent, and pending replies."""
    conversation = save_state(conn, patient.id, conversation, decision.next_state, now)
    rx_default = conversation.prescription_id if conversation else None
    task_ids = [
        open_task(
            conn,
            site_id=site.id,
            queue=spec.queue,
            kind=spec.kind,
            title=spec.title,
            now=now,
            patient_id=patient.id,
            priority=spec.priority,
            detail=dict(spec.detail),
            prescription_id=spec.prescription_id or rx_default,
            source_message_id=source_message_id,
            sites=sites,
        )
        for spec in decision.tasks
    ]
    for index, signal in enumerate(decision.signals):
        record_signal(
            conn,
            patient_id=patient.id,
            site_id=site.id,
            kind=signal.kind,
            source="patient" if source_message_id else "computed",
            occurred_at=now,
            value=dict(signal.value),
            prescription_id=signal.prescription_id or rx_default,
            source_message_id=source_message_id,
            dedupe_key=f"msg:{source_message_id}:{index}:{signal.kind}" if source_message_id else None,
        )
    if decision.consent in ("detailed_yes", "detailed_no"):
        agreed = decision.consent == "detailed_yes"
        set_detailed_consent(conn, patient, agreed, source="sms", message_id=source_message_id, now=now)
    conversation_id = conversation.id if conversation else None
    outgoing = []
    for reply in decision.replies:
        message_id = prepare_reply(
            conn,
            patient=patient,
            site=site,
            body=reply.body,
            kind=reply_kind or reply.kind,
            now=now,
            reply_to_patient=reply_to_patient or reply.kind == "emergency",
            conversation_id=conversation.id if conversation else None,
            task_id=task_ids[0] if task_ids else None,
            cfg=sites.config(site),
        )
        if message_id is not None:
            outgoing.append(message_id)
    return Applied(conversation_id, outgoing, task_ids)


def run_timeouts(conn: Connection, now: datetime, limit: int = 100) -> list[int]:
    """Step every open dialog whose state timed out (follow-ups, unreachable tasks); returns texts to send."""
    due = [
        Conversation(**row)
        for row in conn.execute(_DUE_CONVERSATIONS, {"now": now, "limit": limit}).mappings()
    ]
    sites = SiteCache(conn)
    patients = {p.id: p for p in load_patients(conn, "id", {c.patient_id for c in due})}
    therapy = load_therapy(conn, list(patients))
    outgoing: list[int] = []
    for conversation in due:
        patient = patients.get(conversation.patient_id)
        site = sites.get(patient.site_id) if patient else None
        if patient is None or site is None:
            conn.execute(_CLOSE_ONE, {"b_id": conversation.id, "b_now": now})
            continue
        cfg = sites.config(site)
        if in_quiet_hours(cfg, patient.time_zone, now):
            # A follow-up is not an answer to the patient: it waits for the sending window.
            conn.execute(
                _POSTPONE, {"b_id": conversation.id, "b_at": next_window_start(cfg, patient.time_zone, now)}
            )
            continue
        prescriptions, fills = therapy.get(patient.id, ([], []))
        facts = facts_from(patient, site, cfg, prescriptions, fills, now)
        state = state_of(conversation)
        assert state is not None
        decision = engine.on_timeout(state, facts, now)
        applied = apply_decision(
            conn,
            sites,
            decision,
            patient=patient,
            site=site,
            now=now,
            conversation=conversation,
            reply_kind="followup",
        )
        outgoing += applied.outgoing
    return outgoing
