"""Carrying out the dialog engine's decisions against the store: conversations, replies, tasks, signals."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channel import Channel, ChannelRefused, in_quiet_hours, next_window_start
from bot.db.models import ConsentEvent, Conversation, Fill, Message, Patient, Prescription, Site
from bot.signals import record_signal
from bot.tasks import open_task
from conversations import consent_texts, engine
from conversations.types import ConversationState, Decision, FlowStart, PatientFacts, SiteFacts, Therapy
from scheduler.sitecfg import SiteConfig, site_config

__all__ = [
    "ACTIVE_STATUSES",
    "apply_decision",
    "build_facts",
    "facts_from",
    "handle_inbound",
    "open_conversation",
    "run_timeouts",
    "state_of",
]

_LOGGER = logging.getLogger(__name__)
ACTIVE_STATUSES = ("active", "received", "on_hold")  # prescriptions the dialogs know about


def _run_out(fills: list[Fill]) -> tuple[date | None, date | None, int | None]:
    """(first fill, run-out date, last days supply) with early refills carried forward."""
    if not fills:
        return None, None, None
    ordered = sorted(fills, key=lambda f: f.dispensed_on)
    supply_end = ordered[0].dispensed_on
    for fill in ordered:
        supply_end = max(supply_end, fill.dispensed_on) + timedelta(days=fill.days_supply)
    return ordered[0].dispensed_on, supply_end, ordered[-1].days_supply


async def build_facts(session: AsyncSession, patient: Patient, site: Site, now: datetime) -> PatientFacts:
    """What the dialog engine may know about the patient: language, consent, site, active therapies."""
    prescriptions = (
        await session.scalars(
            select(Prescription).where(
                Prescription.patient_id == patient.id, Prescription.status.in_(ACTIVE_STATUSES)
            )
        )
    ).all()
    fills: list[Fill] = []
    if prescriptions:
        fills = list(
            (
                await session.scalars(
                    select(Fill).where(Fill.prescription_id.in_([p.id for p in prescriptions]))
                )
            ).all()
        )
    return facts_from(patient, site, site_config(site), prescriptions, fills, now)


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


async def _open_conversation_of(session: AsyncSession, patient_id: str) -> Conversation | None:
    return await session.scalar(
        select(Conversation)
        .where(Conversation.patient_id == patient_id, Conversation.status == "open")
        .order_by(Conversation.id.desc())
        .limit(1)
    )


async def handle_inbound(
    session: AsyncSession, channel: Channel, message: Message, patient: Patient, site: Site, now: datetime
) -> list[int]:
    """Run one inbound text through the dialog engine; returns ids of texts to deliver after commit."""
    if not (message.body or "").strip():
        return await _media_or_empty(session, channel, message, patient, site, now)
    conversation = await _open_conversation_of(session, patient.id)
    facts = await build_facts(session, patient, site, now)
    decision = engine.handle(state_of(conversation), message.body, facts, now)
    return await apply_decision(
        session,
        channel,
        decision,
        patient=patient,
        site=site,
        now=now,
        conversation=conversation,
        source_message=message,
        reply_to_patient=True,
    )


async def _media_or_empty(
    session: AsyncSession, channel: Channel, message: Message, patient: Patient, site: Site, now: datetime
) -> list[int]:
    kind = "media_message" if message.num_media else "empty_message"
    await open_task(
        session,
        site_id=site.id,
        queue="general",
        kind=kind,
        title="Picture or empty text from patient" if message.num_media else "Empty text from patient",
        now=now,
        patient_id=patient.id,
        priority=3,
        source_message_id=message.id,
    )
    body = consent_texts.render("media_ack", patient.language, site_name=site.name)
    try:
        out = await channel.prepare(
            session, patient=patient, site=site, body=body, kind="ack", reply_to_patient=True
        )
    except ChannelRefused:
        return []
    return [out.id]


async def open_conversation(
    session: AsyncSession, patient: Patient, state: ConversationState, now: datetime
) -> Conversation:
    """Close any open dialog of the patient and open a new one at ``state``."""
    previous = await _open_conversation_of(session, patient.id)
    if previous is not None:
        previous.status = "closed"
    conversation = Conversation(
        patient_id=patient.id,
        prescription_id=state.prescription_id,
        flow=state.flow,
        state=state.state,
        context=state.context,
        expires_at=state.expires_at,
        status="open",
        created_at=now,
        updated_at=now,
    )
    session.add(conversation)
    await session.flush()
    return conversation


async def apply_decision(
    session: AsyncSession,
    channel: Channel,
    decision: Decision,
    *,
    patient: Patient,
    site: Site,
    now: datetime,
    conversation: Conversation | None,
    source_message: Message | None = None,
    reply_to_patient: bool = False,
    reply_kind: str | None = None,
) -> list[int]:
    """Store the decision: next dialog state, tasks, signals, consent, and pending replies (returned)."""
    conversation = await _save_state(session, patient, conversation, decision.next_state, now)
    source_id = source_message.id if source_message is not None else None
    if source_message is not None and conversation is not None:
        source_message.conversation_id = conversation.id
    first_task_id = None
    for spec in decision.tasks:
        task = await open_task(
            session,
            site_id=site.id,
            queue=spec.queue,
            kind=spec.kind,
            title=spec.title,
            now=now,
            patient_id=patient.id,
            priority=spec.priority,
            detail=dict(spec.detail),
            prescription_id=spec.prescription_id or (conversation.prescription_id if conversation else None),
            source_message_id=source_id,
        )
        first_task_id = first_task_id or task.id
    for index, signal in enumerate(decision.signals):
        await record_signal(
            session,
            patient_id=patient.id,
            site_id=site.id,
            kind=signal.kind,
            source="patient" if source_id else "computed",
            occurred_at=now,
            value=dict(signal.value),
            prescription_id=signal.prescription_id
            or (conversation.prescription_id if conversation else None),
            source_message_id=source_id,
            dedupe_key=f"msg:{source_id}:{index}:{signal.kind}" if source_id else None,
        )
    if decision.consent in ("detailed_yes", "detailed_no"):
        patient.detailed_consent = decision.consent == "detailed_yes"
        session.add(
            ConsentEvent(
                patient_id=patient.id,
                change=decision.consent,
                source="sms",
                message_id=source_id,
                created_at=now,
            )
        )
    outgoing = []
    for reply in decision.replies:
        try:
            out = await channel.prepare(
                session,
                patient=patient,
                site=site,
                body=reply.body,
                kind=reply_kind or reply.kind,
                reply_to_patient=reply_to_patient or reply.kind == "emergency",
                conversation_id=conversation.id if conversation else None,
                task_id=first_task_id,
            )
        except ChannelRefused as exc:
            _LOGGER.info("reply to patient %s not sent: %s", patient.id, exc.reason)
            continue
        outgoing.append(out.id)
    return outgoing


async def _save_state(
    session: AsyncSession,
    patient: Patient,
    conversation: Conversation | None,
    state: ConversationState | None,
    now: datetime,
) -> Conversation | None:
    if state is None:
        if conversation is not None:
            conversation.status = "closed"
            conversation.updated_at = now
        return conversation
    if conversation is None or conversation.status != "open" or conversation.flow != state.flow:
        return await open_conversation(session, patient, state, now)
    conversation.state = state.state
    conversation.context = dict(state.context)
    conversation.expires_at = state.expires_at
    conversation.prescription_id = state.prescription_id or conversation.prescription_id
    conversation.updated_at = now
    return conversation


async def start_flows(
    session: AsyncSession,
    channel: Channel,
    patient: Patient,
    site: Site,
    flows: list[FlowStart],
    now: datetime,
) -> tuple[Message, Conversation | None]:
    """Begin an outreach: one message (several bundled flows at most one text) and the dialog state.

    Raises:
        ChannelRefused: when the patient may not be texted now.
    """
    facts = await build_facts(session, patient, site, now)
    decision = engine.start(flows, facts, now)
    body = "\n".join(r.body for r in decision.replies)
    conversation = None
    if decision.next_state is not None:
        conversation = await open_conversation(session, patient, decision.next_state, now)
    message = await channel.prepare(
        session,
        patient=patient,
        site=site,
        body=body,
        kind="outreach",
        conversation_id=conversation.id if conversation else None,
    )
    return message, conversation


async def run_timeouts(session: AsyncSession, channel: Channel, now: datetime, limit: int = 100) -> list[int]:
    """Step every open dialog whose state timed out (follow-ups, unreachable tasks); returns texts to send."""
    due = (
        await session.scalars(
            select(Conversation)
            .where(Conversation.status == "open", Conversation.expires_at <= now)
            .order_by(Conversation.expires_at)
            .limit(limit)
        )
    ).all()
    outgoing: list[int] = []
    for conversation in due:
        patient = await session.get(Patient, conversation.patient_id)
        site = await session.get(Site, patient.site_id) if patient else None
        if patient is None or site is None:
            conversation.status = "closed"
            continue
        cfg = site_config(site)
        if in_quiet_hours(cfg, patient.time_zone, now):
            # A follow-up is not an answer to the patient: it waits for the sending window.
            conversation.expires_at = next_window_start(cfg, patient.time_zone, now)
            continue
        facts = await build_facts(session, patient, site, now)
        state = state_of(conversation)
        assert state is not None
        decision = engine.on_timeout(state, facts, now)
        outgoing += await apply_decision(
            session,
            channel,
            decision,
            patient=patient,
            site=site,
            now=now,
            conversation=conversation,
            reply_kind="followup",
        )
    return outgoing
