"""A batch of texts (bot.sms.handling on bot.db.worker, one commit) does exactly what one text at a time does.

Two databases get the same site, patients and open dialogs; the same texts are processed one at a time in
one, and all at once (batched) in the other. Everything the texts lead to — dialog state, tasks with their
SLA, signals, consent, replies, audit — must be the same.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Coroutine
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import aiohttp
import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.clock import FixedClock
from bot.db.migrate import upgrade
from bot.db.models import (
    AuditEvent,
    ConsentEvent,
    Conversation,
    Fill,
    Message,
    Patient,
    Prescription,
    Signal,
    Site,
    Task,
)
from bot.db.session import make_engine, make_sessionmaker
from bot.db.unit import in_session
from bot.db.worker import DbWorker
from bot.settings import Settings
from bot.sms.channel import Channel
from bot.sms.delivery import Deliverer
from bot.sms.inbox import Inbox
from conversations.types import FlowStart
from integrations.twilio.client import TwilioClient
from tests.dialogs import start_flow

SITE_PHONE = "+13125550100"
_SIDS = itertools.count()
NOW = datetime.fromisoformat("2026-11-24T16:00:00+00:00")  # Tuesday, 10:00 in Chicago

# (patient, language, detailed consent, flow open before the texts (or None), texts in order)
SCENARIOS: list[tuple[str, str, bool, str | None, list[str]]] = [
    ("refill1", "en", True, "refill_reminder", ["1", "1", "thanks"]),
    ("refill2", "en", False, "refill_reminder", ["2"]),
    ("refill3", "en", True, "refill_reminder", ["3"]),
    ("checkin", "en", True, "side_effect_checkin", ["diarrhea", "severe"]),
    ("checkno", "es", True, "side_effect_checkin", ["no"]),
    ("copay", "en", True, "copay_assistance", ["1"]),
    ("newstart", "en", False, "new_start", ["yes", "ok"]),
    ("chest", "en", True, "refill_reminder", ["I have chest pain and can't breathe"]),
    (
        "free",
        "en",
        True,
        None,
        ["refill pls", "nausea is bad", "when is my refill ready?", "can't afford it"],
    ),
    ("missed", "en", True, None, ["I missed 2 doses this week"]),
    ("spanish", "es", False, None, ["tengo náuseas", "gracias"]),
    ("help", "en", True, None, ["HELP", "ayuda"]),
    ("ambiguous", "en", True, "refill_reminder", ["no more"]),
    ("optout", "en", True, "refill_reminder", ["STOP", "hello?"]),
    ("optin", "en", True, None, ["STOP", "START", "yes"]),
    ("blank", "en", True, None, ["   "]),
]


def phone(index: int) -> str:
    return f"+1312555{2000 + index:04d}"


@dataclass
class Store:
    """One database and an inbox over it."""

    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    inbox: Inbox
    db: DbWorker
    client: TwilioClient
    http: aiohttp.ClientSession
    spawned: list[Coroutine[Any, Any, None]] = field(default_factory=list)

    async def close(self) -> None:
        for coro in self.spawned:
            coro.close()  # replies are not delivered here: only what the inbox stored is compared
        await self.db.close()
        await self.client.close()
        await self.http.close()
        await self.engine.dispose()


async def open_store(url: str, batched: bool, clock: FixedClock, batch_size: int = 16) -> Store:
    engine = make_engine(url)
    await upgrade(engine)
    sessionmaker = make_sessionmaker(engine)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=url, public_base_url="http://127.0.0.1:8080", run_dispatcher=False
    )
    http = aiohttp.ClientSession()  # never used to send: the spawned replies are closed, not run
    client = TwilioClient(
        session=http,
        account_sid="AC" + "0" * 32,
        auth_token="t",
        base_url="http://127.0.0.1:9",
        timeout=1,
    )
    channel = Channel(settings=settings, clock=clock, client=client)
    spawned: list[Coroutine[Any, Any, None]] = []

    def spawn(coro: Awaitable[None]) -> None:
        spawned.append(coro)  # type: ignore[arg-type]

    db = DbWorker(engine)
    inbox = Inbox(
        sessionmaker=sessionmaker,
        db=db,
        deliverer=Deliverer(channel, db, clock),
        clock=clock,
        spawn=spawn,
        linger=0.0,
        batch_size=batch_size if batched else 1,
    )
    store = Store(engine, sessionmaker, inbox, db, client, http, spawned)
    await seed(store, clock)
    return store


async def seed(store: Store, clock: FixedClock) -> None:
    async with store.sessionmaker.begin() as session:
        session.add(
            Site(id="north", name="North Oncology Pharmacy", phone=SITE_PHONE, time_zone="America/Chicago")
        )
        await session.flush()
        for index, (name, language, detailed, _flow, _texts) in enumerate(SCENARIOS):
            session.add(
                Patient(
                    id=name,
                    site_id="north",
                    first_name=name.title(),
                    last_name="Test",
                    phone=phone(index),
                    language=language,
                    sms_consent=True,
                    detailed_consent=detailed,
                )
            )
            await session.flush()
            session.add(
                Prescription(
                    id=f"rx-{name}",
                    patient_id=name,
                    site_id="north",
                    drug="capecitabine",
                    therapy_class="oncology",
                    payer_type="medicare_d",
                    status="active",
                    written_on=date(2026, 9, 1),
                )
            )
            await session.flush()
            session.add(
                Fill(
                    id=f"f-{name}",
                    prescription_id=f"rx-{name}",
                    dispensed_on=date(2026, 11, 1),
                    days_supply=28,
                    quantity=56,
                    copay_cents=45000,
                )
            )
        await session.flush()
        for name, _language, _detailed, flow, _texts in SCENARIOS:
            if flow is None:
                continue
            start = FlowStart(flow=flow, prescription_id=f"rx-{name}")
            await in_session(session, start_flow, name, start, clock.now(), text=False)


async def receive(store: Store, index: int, body: str, number: str | None = None) -> tuple[int, str]:
    """Store one inbound text as the webhook would; returns (message id, sender)."""
    sender = number or phone(index)
    async with store.engine.begin() as conn:
        message_id = (
            await conn.execute(
                insert(Message).returning(Message.id),
                {
                    "direction": "in",
                    "kind": "inbound",
                    "provider_sid": f"SM{next(_SIDS):032x}",
                    "from_number": sender,
                    "to_number": SITE_PHONE,
                    "body": body,
                    "status": "received",
                    "created_at": NOW,
                },
            )
        ).scalar_one()
    return message_id, sender


def _ordinal(ids: list[int]) -> dict[int | None, int | None]:
    mapping: dict[int | None, int | None] = {i: n for n, i in enumerate(ids)}
    mapping[None] = None
    return mapping


async def snapshot(store: Store, patient_id: str) -> dict[str, Any]:
    """What the patient's texts led to, with database ids replaced by positions."""
    async with store.sessionmaker() as session:
        messages = (
            await session.scalars(
                select(Message)
                .where(
                    (Message.patient_id == patient_id)
                    | (Message.to_number == phone_of(patient_id))
                    | (Message.from_number == phone_of(patient_id))
                )
                .order_by(Message.id)
            )
        ).all()
        conversations = (
            await session.scalars(
                select(Conversation).where(Conversation.patient_id == patient_id).order_by(Conversation.id)
            )
        ).all()
        tasks = (
            await session.scalars(select(Task).where(Task.patient_id == patient_id).order_by(Task.id))
        ).all()
        signals = (
            await session.scalars(select(Signal).where(Signal.patient_id == patient_id).order_by(Signal.id))
        ).all()
        consents = (
            await session.scalars(
                select(ConsentEvent).where(ConsentEvent.patient_id == patient_id).order_by(ConsentEvent.id)
            )
        ).all()
        audits = (
            await session.scalars(
                select(AuditEvent).where(AuditEvent.patient_id == patient_id).order_by(AuditEvent.id)
            )
        ).all()
        patient = await session.get(Patient, patient_id)
    assert patient is not None
    msg, conv, task = (
        _ordinal([m.id for m in messages]),
        _ordinal([c.id for c in conversations]),
        _ordinal([t.id for t in tasks]),
    )
    return {
        "messages": [
            (
                m.direction,
                m.kind,
                m.body,
                m.from_number,
                m.to_number,
                m.segments,
                m.encoding,
                m.status,
                m.processed_at,
                m.patient_id,
                m.site_id,
                conv[m.conversation_id],
                task[m.task_id],
            )
            for m in messages
        ],
        "conversations": [
            (c.flow, c.state, c.context, c.status, c.expires_at, c.prescription_id) for c in conversations
        ],
        "tasks": [
            (
                t.queue,
                t.kind,
                t.priority,
                t.status,
                t.title,
                t.detail,
                t.due_by,
                t.prescription_id,
                msg[t.source_message_id],
            )
            for t in tasks
        ],
        "signals": [
            (
                s.kind,
                s.value,
                s.source,
                s.prescription_id,
                msg[s.source_message_id],
                s.occurred_at,
                (s.dedupe_key or "").split(":", 2)[-1],
            )
            for s in signals
        ],
        "consents": [(c.change, c.source, msg[c.message_id]) for c in consents],
        "audit": [(a.action, a.actor, a.detail, a.target.split(":")[0]) for a in audits],
        "patient": (patient.detailed_consent, patient.opted_out_at, patient.deliverability),
    }


def phone_of(patient_id: str) -> str:
    return phone(next(i for i, s in enumerate(SCENARIOS) if s[0] == patient_id))


@pytest.fixture
async def stores(any_db_url: str, tmp_path: Any) -> AsyncIterator[tuple[Store, Store]]:
    clock = FixedClock(NOW)
    general = await open_store(f"sqlite+aiosqlite:///{tmp_path}/general.db", batched=False, clock=clock)
    batched = await open_store(any_db_url, batched=True, clock=clock)
    yield general, batched
    await general.close()
    await batched.close()


async def test_batched_texts_lead_to_what_one_at_a_time_stores(stores: tuple[Store, Store]) -> None:
    general, batched = stores
    rounds = max(len(texts) for *_rest, texts in SCENARIOS)
    for turn in range(rounds):
        # One text at a time in the first store. The batched one: every patient's text at once, several turns
        # queued before any is processed, so batches mix numbers and hold back a number's later texts.
        for index, (*_rest, texts) in enumerate(SCENARIOS):
            if turn < len(texts):
                await general.inbox.handle(*await receive(general, index, texts[turn]))
                batched.inbox.submit(*await receive(batched, index, texts[turn]))
    await asyncio.wait_for(batched.inbox.idle(), 20)
    for name, *_rest in SCENARIOS:
        expected, got = await snapshot(general, name), await snapshot(batched, name)
        assert got == expected, name
    async with batched.sessionmaker() as session:
        unprocessed = await session.scalar(
            select(Message.id).where(Message.direction == "in", Message.processed_at.is_(None))
        )
    assert unprocessed is None
    assert len(batched.spawned) > 0  # replies were handed to delivery after their commit


async def test_unknown_sender_and_replays_are_handled_once(stores: tuple[Store, Store]) -> None:
    general, batched = stores
    for store in (general, batched):
        message_id, sender = await receive(store, 99, "who is this", number="+13125559999")
        await store.inbox.handle(message_id, sender)
        await store.inbox.handle(message_id, sender)  # processed already: nothing more happens
    for store in (general, batched):
        async with store.sessionmaker() as session:
            tasks = (await session.scalars(select(Task.kind).where(Task.kind == "unknown_sender"))).all()
            replies = (
                await session.scalars(select(Message.kind).where(Message.to_number == "+13125559999"))
            ).all()
        assert list(tasks) == ["unknown_sender"] and list(replies) == ["unknown_sender"]


async def test_closing_stops_taking_batches_and_leaves_the_rest_stored(tmp_path: Any) -> None:
    # One message per unit of work, so some are still queued when the inbox closes.
    batched = await open_store(
        f"sqlite+aiosqlite:///{tmp_path}/close.db", True, FixedClock(NOW), batch_size=1
    )
    ids = [await receive(batched, index, "thanks") for index in range(len(SCENARIOS))]
    for message_id, sender in ids:
        batched.inbox.submit(message_id, sender)
    await batched.inbox.close(timeout=0)
    async with batched.sessionmaker() as session:
        left = (
            await session.scalars(
                select(Message.id).where(Message.direction == "in", Message.processed_at.is_(None))
            )
        ).all()
    await batched.close()
    assert 0 < len(left) < len(ids)  # what the workers had in hand was finished; the rest waits, stored
    assert set(left) <= {message_id for message_id, _sender in ids}
