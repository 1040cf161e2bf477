"""The outreach sender the dispatcher calls: dialog start + one stored message + the SMS channel."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channel import Channel, ChannelRefused
from bot.clock import Clock
from bot.db.models import Fill, Message, Outreach, Patient, Program, Site
from bot.dialogs import start_flows
from bot.settings import Settings
from conversations.types import FlowStart
from integrations.twilio.errors import TwilioError
from scheduler.sender import SendOutcome

__all__ = ["ChannelOutreachSender", "sender_context"]

_LOGGER = logging.getLogger(__name__)


class ChannelOutreachSender:
    """Implements scheduler.sender.OutreachSender on top of the dialog engine and the SMS channel."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], channel: Channel, clock: Clock
    ) -> None:
        self._sessionmaker = sessionmaker
        self._channel = channel
        self._clock = clock

    async def send(self, patient_id: str, outreach_ids: list[int], now: datetime) -> SendOutcome:
        """Start the flows of these rows as one text, store it, send it."""
        async with self._sessionmaker.begin() as session:
            rows = list(
                (
                    await session.scalars(
                        select(Outreach)
                        .where(Outreach.id.in_(outreach_ids))
                        .order_by(Outreach.due_at, Outreach.id)
                    )
                ).all()
            )
            existing = next((r.message_id for r in rows if r.message_id), None)
            if existing is None:
                prepared = await self._prepare(session, patient_id, rows, now)
                if isinstance(prepared, SendOutcome):
                    return prepared
                existing = prepared
        return await self._deliver(existing)

    async def _prepare(
        self, session: AsyncSession, patient_id: str, rows: list[Outreach], now: datetime
    ) -> int | SendOutcome:
        patient = await session.get(Patient, patient_id)
        site = await session.get(Site, patient.site_id) if patient else None
        if patient is None or site is None or not rows:
            return SendOutcome("failed", reason="unknown_patient")
        flows = [await _flow_start(session, row) for row in rows]
        try:
            message, _conversation = await start_flows(session, self._channel, patient, site, flows, now)
        except ChannelRefused as exc:
            return SendOutcome("failed", reason=exc.reason)
        for row in rows:
            row.message_id = message.id
        return message.id

    async def _deliver(self, message_id: int) -> SendOutcome:
        try:
            message = await self._channel.deliver(message_id)
        except TwilioError:
            return SendOutcome("unknown", message_id=message_id, reason="provider_unreachable")
        return _outcome(message)

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


def _outcome(message: Message) -> SendOutcome:
    if message.provider_sid:
        return SendOutcome("sent", message_id=message.id)
    if message.status == "failed":
        return SendOutcome("failed", message_id=message.id, reason=str(message.error_code or "send_failed"))
    return SendOutcome("unknown", message_id=message.id, reason=message.status)


async def _flow_start(session: AsyncSession, row: Outreach) -> FlowStart:
    program = await session.get(Program, row.program_pk) if row.program_pk else None
    spec = program.spec if program is not None else {}
    params: dict[str, object] = {"step": row.step, "program_id": row.program_id}
    if row.prescription_id:
        last = await session.scalar(
            select(Fill)
            .where(Fill.prescription_id == row.prescription_id)
            .order_by(Fill.dispensed_on.desc())
            .limit(1)
        )
        if last is not None:
            params["copay"] = last.copay_cents / 100
    trigger = spec.get("trigger") or {}
    if isinstance(trigger.get("event"), dict):
        params["event"] = trigger["event"].get("name")
        params["days"] = trigger["event"].get("after_days")
    earlier = await session.scalar(
        select(Message.id).where(Message.patient_id == row.patient_id, Message.kind == "outreach").limit(1)
    )
    params["first_contact"] = earlier is None
    return FlowStart(
        flow=row.kind,
        prescription_id=row.prescription_id,
        params=params,
        template=spec.get("templates") or None,
    )


@asynccontextmanager
async def sender_context(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock
) -> AsyncIterator[ChannelOutreachSender]:
    """A sender with its own Twilio client, for `midbot dispatch` run without the web server."""
    from bot.services import make_channel

    async with make_channel(settings, sessionmaker, clock) as channel:
        yield ChannelOutreachSender(sessionmaker, channel, clock)
