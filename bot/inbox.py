"""The inbox: what happens to a stored inbound message. Consent first, then the dialog, then people.

Every inbound message ends in a reply, a dialog step or an open task (invariant 1). Messages from one
number are handled one at a time in arrival order; replies are delivered after the unit of work commits.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import dialogs
from bot.batching import Pressure
from bot.channel import Channel, ChannelRefused, opt_out_phone
from bot.clock import Clock
from bot.db.models import ConsentEvent, Conversation, Message, Patient, Site
from bot.dbthread import DbWorker
from bot.delivery import Deliverer
from bot.inbox_work import process_batch
from bot.signals import record_signal
from bot.tasks import open_task
from conversations import consent_texts as templates
from conversations.keywords import consent_action

__all__ = ["Inbox"]

_LOGGER = logging.getLogger(__name__)
_TWILIO_OPT_OUT = re.compile(
    r"(?i)\W*(stop|stopall|stop all|unsubscribe|cancel|end|quit|revoke|optout|opt out)\W*"
)
_TWILIO_OPT_IN = re.compile(r"(?i)\W*(start|unstop)\W*")
Deliver = Callable[[list[int]], Awaitable[None]]
_Entry = tuple[int, str, "asyncio.Future[None] | None"]  # message id, sender number, who waits for it


class Inbox:
    """Processes inbound messages; one instance per app (or per CLI run).

    With a ``DbWorker``, stored messages are taken in batches (arrival order, at most one message per number
    in a batch, none of a number already in hand) and the common case runs as one synchronous unit of work per
    batch (``bot.inbox_work``); the rest, and any batch that fails, goes through the general path one message
    at a time. Without one, every message takes the general path.
    """

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        channel: Channel,
        clock: Clock,
        spawn: Callable[[Awaitable[None]], None],
        is_sqlite: bool = True,
        provider_confirms_keywords: bool = True,
        workers: int = 2,
        db: DbWorker | None = None,
        deliverer: Deliverer | None = None,
        batch_size: int = 16,
        linger: float = 0.02,
        pressure: Pressure | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._channel = channel
        self._clock = clock
        self._spawn = spawn
        self._is_sqlite = is_sqlite
        self._provider_confirms = provider_confirms_keywords
        self._db = db
        self._deliverer = deliverer
        self._batch_size = batch_size if db is not None else 1
        self._linger = linger if db is not None else 0.0
        self._pressure = pressure or Pressure()
        self._busy: set[str] = set()  # numbers with a message in hand
        self._queued: set[int] = set()  # messages waiting or in hand
        self._closing = False
        self._pending: deque[_Entry] = deque()
        self._unfinished = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._workers: list[asyncio.Task[None]] = []
        self._worker_count = workers

    def submit(self, message_id: int, number: str | None = None) -> None:
        """Queue a stored message for processing (a few workers; one number at a time, in order)."""
        self._enqueue(message_id, number or f"message:{message_id}", None)

    async def handle(self, message_id: int, number: str | None = None) -> None:
        """Process one stored inbound message now, after earlier ones of its number (idempotent)."""
        if number is None:
            async with self._sessionmaker() as session:
                number = await session.scalar(select(Message.from_number).where(Message.id == message_id))
            if number is None:
                return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._enqueue(message_id, number, done)
        await done

    async def idle(self) -> None:
        """Wait until every submitted message has been processed."""
        await self._idle.wait()

    async def close(self, timeout: float = 20.0) -> None:
        """Process what is queued for up to ``timeout`` seconds, then stop taking more (on shutdown).

        What is left stays stored and unprocessed; the sweeper picks it up after a restart.
        """
        try:
            await asyncio.wait_for(self.idle(), timeout)
        except TimeoutError:
            self._closing = True
            _LOGGER.warning("inbox closing with %d messages left for the sweeper", len(self._pending))
            while self._workers and not all(w.done() for w in self._workers):
                await asyncio.sleep(0.01)
            for _message_id, _number, done in self._pending:
                if done is not None and not done.done():
                    done.cancel()  # whoever waits for it is shutting down too

    def _enqueue(self, message_id: int, number: str, done: asyncio.Future[None] | None) -> None:
        self._queued.add(message_id)
        self._pending.append((message_id, number, done))
        self._unfinished += 1
        self._idle.clear()
        self._workers = [w for w in self._workers if not w.done()]
        if len(self._workers) < self._worker_count:
            self._workers.append(asyncio.ensure_future(self._work()))

    async def _work(self) -> None:
        if self._linger and len(self._pending) < self._batch_size:
            await asyncio.sleep(self._linger)  # a few ms for company: one unit of work for several texts
        loop = asyncio.get_running_loop()
        while batch := self._take_batch():
            began = loop.time()
            try:
                await self._run_batch([message_id for message_id, _number, _done in batch])
            except Exception:  # the general path already routes what it cannot handle to a person
                _LOGGER.exception("inbound batch %s failed", [message_id for message_id, _n, _d in batch])
            finally:
                for message_id, number, done in batch:
                    self._queued.discard(message_id)
                    self._busy.discard(number)
                    if done is not None and not done.done():
                        done.set_result(None)
                self._unfinished -= len(batch)
                if self._unfinished == 0:
                    self._idle.set()
            await self._pressure.give_way(loop.time() - began)
            await asyncio.sleep(0)  # let webhook requests in between batches

    def _take_batch(self) -> list[_Entry]:
        """The next messages in arrival order whose numbers are free; their numbers become busy."""
        if self._closing:
            return []
        batch: list[_Entry] = []
        blocked: set[str] = set()
        # While webhooks arrive, small batches: an answer's insert waits for the unit of work in hand.
        size = max(1, self._batch_size // 4) if self._pressure.active else self._batch_size
        for entry in self._pending:
            number = entry[1]
            if number in blocked:
                continue
            blocked.add(number)  # later messages of this number wait for this one
            if number in self._busy:
                continue
            batch.append(entry)
            if len(batch) >= size:
                break
        for entry in batch:
            self._pending.remove(entry)
            self._busy.add(entry[1])
        return batch

    async def _run_batch(self, message_ids: list[int]) -> None:
        """The common case in one unit of work (with a DbWorker), then the rest one by one, in order."""
        deferred = message_ids
        if self._db is not None:
            try:
                result = await self._db.run(process_batch, message_ids, self._clock.now())
            except Exception:
                _LOGGER.exception("inbound batch %s failed; handling its messages one by one", message_ids)
            else:
                deferred = result.deferred
                if result.outgoing:
                    self._spawn(self._deliver_all(result.outgoing))
        for message_id in deferred:
            await self._handle_one(message_id)

    async def _handle_one(self, message_id: int) -> None:
        """The general path for one message (its number is held by the caller)."""
        try:
            outgoing = await self._process(message_id)
        except Exception:
            # Stored messages are never dropped: if understanding it failed, a person gets it.
            _LOGGER.exception("inbound %s could not be processed; routing it to a person", message_id)
            await self._fallback(message_id)
            return
        if outgoing:
            self._spawn(self._deliver_all(outgoing))

    async def _fallback(self, message_id: int) -> None:
        now = self._clock.now()
        async with self._sessionmaker.begin() as session:
            message = await session.get(Message, message_id)
            if message is None or message.processed_at is not None:
                return
            patient = await _find_patient(session, message)
            site = await _site_for_number(session, message.to_number)
            site_id = patient.site_id if patient is not None else (site.id if site is not None else None)
            if site_id is not None:
                await open_task(
                    session,
                    site_id=site_id,
                    queue="general",
                    kind="unprocessed",
                    title="Message could not be handled automatically",
                    now=now,
                    patient_id=patient.id if patient else None,
                    priority=2,
                    source_message_id=message.id,
                )
            message.processed_at = now

    async def _deliver_all(self, message_ids: list[int]) -> None:
        if self._deliverer is not None:
            await self._deliverer.deliver(message_ids)
            return
        for message_id in message_ids:
            try:
                await self._channel.deliver(message_id)
            except Exception:
                _LOGGER.exception("delivery of message %s failed; the sweeper retries", message_id)

    async def _process(self, message_id: int) -> list[int]:
        now = self._clock.now()
        async with self._sessionmaker.begin() as session:
            message = await session.get(Message, message_id, with_for_update=not self._is_sqlite)
            if message is None or message.processed_at is not None:
                return []
            outgoing = await self._route(session, message, now)
            message.processed_at = now
        return outgoing

    async def _route(self, session: AsyncSession, message: Message, now: datetime) -> list[int]:
        patient = await _find_patient(session, message)
        if patient is None:
            return await self._unknown_sender(session, message, now)
        message.patient_id = patient.id
        message.site_id = patient.site_id
        site = await session.get(Site, patient.site_id)
        assert site is not None
        action = consent_action(message.body, opted_out=patient.opted_out_at is not None)
        if action == "opt_out":
            return await self._opt_out(session, message, patient, site, now)
        if action == "opt_in":
            return await self._opt_in(session, message, patient, site, now)
        if action == "help":
            return await self._reply(
                session,
                patient,
                site,
                templates.render("help", patient.language, site_name=site.name, site_phone=site.phone),
                "help",
            )
        if patient.opted_out_at is not None:
            return await self._from_opted_out(session, message, patient, now)
        outgoing: list[int] = []
        if action == "ambiguous":
            outgoing += await self._reply(
                session,
                patient,
                site,
                templates.render("stop_clarify", patient.language, site_name=site.name),
                "reply",
            )
        return outgoing + await dialogs.handle_inbound(session, self._channel, message, patient, site, now)

    async def _reply(
        self, session: AsyncSession, patient: Patient, site: Site, body: str, kind: str
    ) -> list[int]:
        try:
            out = await self._channel.prepare(
                session, patient=patient, site=site, body=body, kind=kind, reply_to_patient=True
            )
        except ChannelRefused as exc:
            _LOGGER.info("reply to patient %s not sent: %s", patient.id, exc.reason)
            return []
        return [out.id]

    async def _opt_out(
        self, session: AsyncSession, message: Message, patient: Patient, site: Site, now: datetime
    ) -> list[int]:
        changed = await opt_out_phone(session, patient.phone, source="sms", message_id=message.id, now=now)
        for each in changed:
            await record_signal(
                session,
                patient_id=each.id,
                site_id=each.site_id,
                kind="consent_change",
                source="patient",
                occurred_at=now,
                value={"change": "opt_out"},
                source_message_id=message.id,
                dedupe_key=f"consent:{message.id}:{each.id}",
            )
        if not changed:
            return []  # already opted out: exactly one confirmation was sent then
        if self._provider_confirms and _TWILIO_OPT_OUT.fullmatch((message.body or "").strip()):
            return []  # Twilio's Advanced Opt-Out already confirmed this keyword (and would refuse ours: 21610)
        return await self._reply(
            session,
            patient,
            site,
            templates.render("opt_out_confirm", patient.language, site_name=site.name, site_phone=site.phone),
            "opt_out_confirm",
        )

    async def _opt_in(
        self, session: AsyncSession, message: Message, patient: Patient, site: Site, now: datetime
    ) -> list[int]:
        patients = (await session.scalars(select(Patient).where(Patient.phone == patient.phone))).all()
        for each in patients:
            if each.opted_out_at is None:
                continue
            each.opted_out_at = None
            session.add(
                ConsentEvent(
                    patient_id=each.id, change="opt_in", source="sms", message_id=message.id, created_at=now
                )
            )
            await record_signal(
                session,
                patient_id=each.id,
                site_id=each.site_id,
                kind="consent_change",
                source="patient",
                occurred_at=now,
                value={"change": "opt_in"},
                source_message_id=message.id,
                dedupe_key=f"consent:{message.id}:{each.id}",
            )
        if self._provider_confirms and _TWILIO_OPT_IN.fullmatch((message.body or "").strip()):
            return []  # Twilio's Advanced Opt-Out already confirmed this keyword
        return await self._reply(
            session,
            patient,
            site,
            templates.render("opt_in_confirm", patient.language, site_name=site.name, site_phone=site.phone),
            "opt_in_confirm",
        )

    async def _from_opted_out(
        self, session: AsyncSession, message: Message, patient: Patient, now: datetime
    ) -> list[int]:
        """No text goes to an opted-out patient, but a person still sees what they wrote."""
        from conversations.classify import classify

        result = classify(message.body or "")
        urgent = result.intent == "emergency"
        await open_task(
            session,
            site_id=patient.site_id,
            queue="urgent_clinical" if urgent else "general",
            kind="opted_out_message",
            title="Message from an opted-out patient (call, do not text)",
            now=now,
            patient_id=patient.id,
            priority=1 if urgent else 4,
            detail={"intent": result.intent},
            source_message_id=message.id,
        )
        return []

    async def _unknown_sender(self, session: AsyncSession, message: Message, now: datetime) -> list[int]:
        """One polite reply a day to a number we do not know, and a task so a person can look."""
        site = await _site_for_number(session, message.to_number)
        if site is None:
            _LOGGER.warning("inbound %s to a number no site owns", message.id)
            return []
        message.site_id = site.id
        await open_task(
            session,
            site_id=site.id,
            queue="general",
            kind="unknown_sender",
            title="Text from a number not on file",
            now=now,
            priority=4,
            source_message_id=message.id,
        )
        recent = await session.scalar(
            select(Message.id)
            .where(
                and_(
                    Message.to_number == message.from_number,
                    Message.kind == "unknown_sender",
                    Message.created_at >= now - timedelta(days=1),
                )
            )
            .limit(1)
        )
        if recent is not None:
            return []
        out = await self._channel.prepare_to_number(
            session,
            site=site,
            to=message.from_number,
            kind="unknown_sender",
            body=templates.render("unknown_sender", "en", site_name=site.name, site_phone=site.phone),
        )
        return [out.id]

    async def sweep(self, older_than: timedelta = timedelta(seconds=30)) -> int:
        """Process inbound messages a crash left unprocessed, and deliver outbound texts left pending."""
        cutoff = self._clock.now() - older_than
        async with self._sessionmaker() as session:
            inbound = (
                await session.scalars(
                    select(Message.id)
                    .where(
                        Message.direction == "in",
                        Message.processed_at.is_(None),
                        Message.created_at <= cutoff,
                    )
                    .order_by(Message.id)
                    .limit(200)
                )
            ).all()
            pending = (
                await session.scalars(
                    select(Message.id)
                    .where(
                        Message.direction == "out",
                        Message.status.in_(("pending", "unknown")),
                        Message.created_at <= cutoff,
                    )
                    .order_by(Message.id)
                    .limit(200)
                )
            ).all()
        for message_id in inbound:
            if message_id not in self._queued:  # one the workers have not reached yet is left to them
                await self.handle(message_id)
        await self._deliver_all(list(pending))
        return len(inbound) + len(pending)


async def _find_patient(session: AsyncSession, message: Message) -> Patient | None:
    """The patient behind a number; with a shared phone, prefer the site texted, then an open dialog."""
    patients = (await session.scalars(select(Patient).where(Patient.phone == message.from_number))).all()
    if len(patients) <= 1:
        return patients[0] if patients else None
    site = await _site_for_number(session, message.to_number)
    candidates = [p for p in patients if site is not None and p.site_id == site.id] or list(patients)
    open_ids = set(
        (
            await session.scalars(
                select(Conversation.patient_id).where(
                    Conversation.patient_id.in_([p.id for p in candidates]), Conversation.status == "open"
                )
            )
        ).all()
    )
    return next((p for p in candidates if p.id in open_ids), candidates[0])


async def _site_for_number(session: AsyncSession, number: str) -> Site | None:
    site = await session.scalar(
        select(Site).where((Site.phone == number) | (Site.messaging_service_sid == number)).limit(1)
    )
    if site is None:
        site = await session.scalar(select(Site).order_by(Site.id).limit(1))
    return site
