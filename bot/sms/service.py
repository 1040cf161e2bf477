"""The SMS engine as one unit: the database worker, the provider client, delivery, the inbox, inbound storage
and status callbacks — built once per process, for the web app and for CLI commands alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import aiohttp
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.db.unit import SiteCache, load_patients
from bot.db.worker import DbWorker, Priority
from bot.settings import Settings
from bot.sms.batching import Pressure
from bot.sms.channel import Channel, ChannelRefused, prepare_reply, refusal
from bot.sms.delivery import Deliverer, MessageState
from bot.sms.inbound_store import InboundStore
from bot.sms.inbox import Inbox
from bot.sms.outreach import ChannelOutreachSender
from bot.sms.statuses import StatusWriter
from integrations.twilio.client import TwilioClient

__all__ = ["Background", "Messaging", "messaging"]


class Background:
    """Tasks started after a response (reply delivery); awaited on shutdown so nothing is cut off."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Awaitable[None]) -> None:
        """Run ``coro`` in the background, keeping a reference until it ends."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float = 20.0) -> None:
        """Wait for running tasks (bounded)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)

    def __len__(self) -> int:
        return len(self._tasks)


@dataclass(frozen=True, slots=True)
class Messaging:
    """The parts of the SMS engine, wired to one database worker and one provider client."""

    db: DbWorker
    channel: Channel
    deliverer: Deliverer
    inbox: Inbox
    inbound: InboundStore
    statuses: StatusWriter
    outreach: ChannelOutreachSender
    background: Background

    async def send_text(
        self,
        *,
        patient_id: str,
        body: str,
        kind: str = "staff",
        now: datetime,
        reply_to_patient: bool = False,
        task_id: int | None = None,
        staff_user_id: int | None = None,
    ) -> MessageState:
        """Store one text to a patient (consent-checked) and deliver it now.

        Raises:
            ChannelRefused: the patient may not get this text (unknown, opted out, bad phone, quiet hours...).
        """

        def prepare(conn: Connection) -> int:
            patients = load_patients(conn, "id", [patient_id])
            site = SiteCache(conn).get(patients[0].site_id) if patients else None
            if not patients or site is None:
                raise ChannelRefused("unknown_patient")
            reason = refusal(patients[0], site, kind, reply_to_patient, now)
            if reason is not None:
                raise ChannelRefused(reason)
            message_id = prepare_reply(
                conn,
                patient=patients[0],
                site=site,
                body=body,
                kind=kind,
                now=now,
                reply_to_patient=reply_to_patient,
                task_id=task_id,
                staff_user_id=staff_user_id,
            )
            assert message_id is not None
            return message_id

        message_id = await self.db.run_at(Priority.DELIVERY, prepare)
        return await self.deliverer.deliver_one(message_id)


@asynccontextmanager
async def messaging(
    settings: Settings,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: Clock,
    http: aiohttp.ClientSession,
) -> AsyncIterator[Messaging]:
    """Build the SMS engine; on exit, finish queued work (bounded) and stop the database worker."""
    db = DbWorker(engine)
    client = TwilioClient(
        session=http,
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token.get_secret_value(),
        base_url=settings.twilio_api_base_url,
        timeout=settings.twilio_timeout_seconds,
        max_retries=settings.twilio_max_retries,
    )
    channel = Channel(settings=settings, clock=clock, client=client)
    pressure = Pressure()  # webhook answers first: background work gives way during bursts
    deliverer = Deliverer(channel, db, clock, pressure=pressure)
    background = Background()
    inbox = Inbox(
        sessionmaker=sessionmaker,
        db=db,
        deliverer=deliverer,
        clock=clock,
        spawn=background.spawn,
        provider_confirms_keywords=settings.twilio_advanced_opt_out,
        pressure=pressure,
    )
    inbound = InboundStore(db, pressure)
    statuses = StatusWriter(db)
    outreach = ChannelOutreachSender(sessionmaker, channel, clock, db, deliverer)
    try:
        yield Messaging(db, channel, deliverer, inbox, inbound, statuses, outreach, background)
    finally:
        await inbound.close()
        await inbox.close()
        await background.drain()
        await deliverer.close()
        await statuses.close()
        await client.close()
        await db.close()
