"""The outreach sender the dispatcher calls: dialog start + one stored message + the SMS channel."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.db.models import Fill, Message, Outreach, Patient, Prescription, Program, Site
from bot.db.sitecfg import SiteConfig
from bot.db.unit import SiteCache, load_patients, lock_for_write
from bot.db.worker import DbWorker, Priority
from bot.sms.channel import Channel, outbound_values, refusal
from bot.sms.delivery import Claimed, Deliverer, MessageState, record
from bot.sms.dialogs import ACTIVE_STATUSES, facts_from, save_state
from bot.sms.statuses import drain_backlog
from conversations import engine
from conversations.types import Decision, FlowStart
from integrations.twilio.errors import TwilioError
from scheduler.sender import SendOutcome

__all__ = ["ChannelOutreachSender", "outreach_body", "render_outreach"]

_LOGGER = logging.getLogger(__name__)
_OUTREACH = Outreach.__table__
_PRESCRIPTION = Prescription.__table__
_FILL = Fill.__table__


class ChannelOutreachSender:
    """Implements scheduler.sender.OutreachSender on top of the dialog engine and the SMS channel.

    A new text is two units of work around one provider call: ``_prepare_sync`` (dialog start, the stored
    Message with its attempt counted, the rows linked to it) and ``bot.sms.delivery.record``. A text stored
    earlier (a crash between the two) goes through ``Deliverer.deliver_one``, which reconciles before
    resending.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        channel: Channel,
        clock: Clock,
        db: DbWorker,
        deliverer: Deliverer,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._channel = channel
        self._clock = clock
        self._db = db
        self._deliverer = deliverer

    def _worker(self) -> DbWorker:
        return self._db

    async def send(self, patient_id: str, outreach_ids: list[int], now: datetime) -> SendOutcome:
        """Start the flows of these rows as one text, store it, send it."""
        clock_now = self._clock.now()
        prepared = await self._worker().run_at(
            Priority.DELIVERY, lambda conn: _prepare_sync(conn, patient_id, outreach_ids, now, clock_now)
        )
        if isinstance(prepared, SendOutcome):
            return prepared
        if isinstance(prepared, int):
            return await self._deliver(prepared)
        return await self._send_new(prepared)

    async def _send_new(self, claimed: Claimed) -> SendOutcome:
        try:
            result = await self._channel.provider_send(
                to=claimed.to_number, body=claimed.body, site=claimed.site, from_number=claimed.from_number
            )
        except TwilioError:
            return SendOutcome("unknown", message_id=claimed.id, reason="provider_unreachable")
        db, at = self._worker(), self._clock.now()
        threaded = db.threaded
        await db.run_at(Priority.DELIVERY, lambda conn: record(conn, [(claimed, result)], at, drain=threaded))
        if result.sid and not threaded:
            sid = str(result.sid)
            await db.run_at(Priority.DELIVERY, lambda conn: drain_backlog(conn, [sid], at))
        code = result.error_code
        _LOGGER.info("message %s: %s%s", claimed.id, result.status, f" ({code})" if code else "")
        if result.sid:
            return SendOutcome("sent", message_id=claimed.id, segments=claimed.segments)
        if result.status == "retry":
            return SendOutcome("retry", message_id=claimed.id, reason="provider_retry")
        if result.status == "failed":
            return SendOutcome("failed", message_id=claimed.id, reason=str(code or "send_failed"))
        return SendOutcome("unknown", message_id=claimed.id, reason=result.status)

    async def _deliver(self, message_id: int) -> SendOutcome:
        try:
            state = await self._deliverer.deliver_one(message_id)
        except TwilioError:  # the provider cannot even be asked: wait (nothing is resent without asking)
            return SendOutcome("retry", message_id=message_id, reason="provider_retry")
        return _outcome(state)

    async def reconcile(self, patient_id: str, outreach_ids: list[int], now: datetime) -> SendOutcome | None:
        """After a crash: None if no text was ever stored for these rows, else the provider's answer."""
        async with self._sessionmaker() as session:
            message_id = await session.scalar(
                select(Outreach.message_id)
                .where(Outreach.id.in_(outreach_ids), Outreach.message_id.is_not(None))
                .limit(1)
            )
        if message_id is None:
            return None
        return await self._deliver(message_id)


def _outcome(message: MessageState) -> SendOutcome:
    if message.provider_sid:
        return SendOutcome("sent", message_id=message.id)
    if message.status == "failed":
        return SendOutcome("failed", message_id=message.id, reason=str(message.error_code or "send_failed"))
    if message.status == "pending":  # the provider was unavailable again: try later
        return SendOutcome("retry", message_id=message.id, reason="provider_retry")
    return SendOutcome("unknown", message_id=message.id, reason=message.status)


_ROWS = (
    select(
        _OUTREACH.c.id,
        _OUTREACH.c.kind,
        _OUTREACH.c.step,
        _OUTREACH.c.program_pk,
        _OUTREACH.c.program_id,
        _OUTREACH.c.prescription_id,
        _OUTREACH.c.message_id,
    )
    .where(_OUTREACH.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(_OUTREACH.c.due_at, _OUTREACH.c.id)
)
_PROGRAM_SPECS = select(Program.id, Program.spec).where(Program.id.in_(bindparam("ids", expanding=True)))
_ACTIVE_PRESCRIPTIONS = select(_PRESCRIPTION).where(
    _PRESCRIPTION.c.patient_id == bindparam("patient_id"), _PRESCRIPTION.c.status.in_(ACTIVE_STATUSES)
)
_FILLS = select(_FILL).where(_FILL.c.prescription_id.in_(bindparam("ids", expanding=True)))
_EARLIER_OUTREACH = (
    select(Message.id)
    .where(Message.patient_id == bindparam("patient_id"), Message.kind == "outreach")
    .limit(1)
)
_INSERT_MESSAGE = insert(Message).returning(Message.id)
_LINK_ROWS = (
    update(Outreach)
    .where(Outreach.id.in_(bindparam("ids", expanding=True)))
    .values(message_id=bindparam("mid"))
)


def _prepare_sync(
    conn: Connection, patient_id: str, outreach_ids: list[int], now: datetime, clock_now: datetime
) -> Claimed | int | SendOutcome:
    """One unit of work: a stored text (attempt counted) for the rows, the id of one stored earlier, or why not.

    The dialog starts (closing any other open dialog of the patient), and the text is stored claimed.
    """
    lock_for_write(conn)
    rows = conn.execute(_ROWS, {"ids": list(outreach_ids)}).all()
    existing = next((r.message_id for r in rows if r.message_id), None)
    if existing is not None:
        return int(existing)
    patients = load_patients(conn, "id", [patient_id])
    sites = SiteCache(conn)
    site = sites.get(patients[0].site_id) if patients else None
    if not patients or site is None or not rows:
        return SendOutcome("failed", reason="unknown_patient")
    patient, cfg = patients[0], sites.config(site)
    reason = refusal(patient, site, "outreach", False, clock_now, cfg)
    if reason is not None:
        return SendOutcome("failed", reason=reason)
    prescriptions = [
        Prescription(**r) for r in conn.execute(_ACTIVE_PRESCRIPTIONS, {"patient_id": patient_id}).mappings()
    ]
    rx_ids = {p.id for p in prescriptions} | {r.prescription_id for r in rows if r.prescription_id}
    fills = [Fill(**r) for r in conn.execute(_FILLS, {"ids": list(rx_ids)}).mappings()] if rx_ids else []
    pks = list({r.program_pk for r in rows if r.program_pk})
    specs = dict(conn.execute(_PROGRAM_SPECS, {"ids": pks}).all()) if pks else {}
    first_contact = conn.execute(_EARLIER_OUTREACH, {"patient_id": patient_id}).first() is None
    decision = render_outreach(rows, specs, patient, site, cfg, prescriptions, fills, first_contact, now)
    conversation_id = None
    if decision.next_state is not None:
        conversation = save_state(conn, patient_id, None, decision.next_state, now)
        conversation_id = conversation.id if conversation else None
    body = outreach_body(decision)
    values = outbound_values(site, patient.phone, body, "outreach", clock_now)
    # The attempt is counted as the text is stored: a crash before the provider answers means reconcile.
    values.update(patient_id=patient_id, conversation_id=conversation_id, attempts=1)
    message_id = conn.execute(_INSERT_MESSAGE, values).scalar_one()
    conn.execute(_LINK_ROWS, {"ids": [r.id for r in rows], "mid": message_id})
    segments = values["segments"]
    assert isinstance(segments, int)
    return Claimed(
        message_id, patient.phone, str(values["from_number"]), body, patient_id, site, segments=segments
    )


def render_outreach(
    rows: Sequence[Any],
    specs: Mapping[Any, dict[str, Any]],
    patient: Patient,
    site: Site,
    cfg: SiteConfig,
    prescriptions: Sequence[Prescription],
    fills: Sequence[Fill],
    first_contact: bool,
    now: datetime,
) -> Decision:
    """The dialog start of one text for these outreach rows (lead first); pure, shared with the preview.

    Args:
        rows: the bundle's rows: ``kind``, ``step``, ``program_pk``, ``program_id``, ``prescription_id``.
        specs: Program.spec (stored JSON) by program pk; a row whose spec is missing uses built-in wording.
        patient: the patient row.
        site: the patient's site.
        cfg: the site's SiteConfig.
        prescriptions: the patient's prescriptions the dialogs know about (ACTIVE_STATUSES).
        fills: fills of those prescriptions and of the rows' prescriptions.
        first_contact: no outreach text was sent to the patient before (adds the opt-out line).
        now: the sending time.
    """
    flows = [_flow_start(row, specs.get(row.program_pk) or {}, fills, first_contact) for row in rows]
    active = {p.id for p in prescriptions}
    facts = facts_from(
        patient, site, cfg, prescriptions, [f for f in fills if f.prescription_id in active], now
    )
    return engine.start(flows, facts, now)


def outreach_body(decision: Decision) -> str:
    """The one text a dialog start sends."""
    return "\n".join(r.body for r in decision.replies)


def _flow_start(row: Any, spec: dict[str, Any], fills: Sequence[Fill], first_contact: bool) -> FlowStart:
    params: dict[str, object] = {"step": row.step, "program_id": row.program_id}
    if row.prescription_id:
        mine = [f for f in fills if f.prescription_id == row.prescription_id]
        if mine:
            params["copay"] = max(mine, key=lambda f: f.dispensed_on).copay_cents / 100
    trigger = spec.get("trigger") or {}
    if isinstance(trigger.get("event"), dict):
        params["event"] = trigger["event"].get("name")
        params["days"] = trigger["event"].get("after_days")
    params["first_contact"] = first_contact
    return FlowStart(
        flow=row.kind,
        prescription_id=row.prescription_id,
        params=params,
        template=spec.get("templates") or None,
    )
