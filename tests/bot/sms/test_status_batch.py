"""Status callbacks applied in batches (bot.sms.statuses): monotonic, never lost, feeding deliverability."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.db.migrate import upgrade
from bot.db.models import ConsentEvent, Message, Outreach, Patient, ProviderStatus, Site, Task
from bot.db.session import make_engine, make_sessionmaker
from bot.db.worker import DbWorker, Priority
from bot.sms.channel import SendResult
from bot.sms.delivery import Claimed, record
from bot.sms.statuses import StatusUpdate, StatusWriter

NOW = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)


@dataclass
class Db:
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    worker: DbWorker
    writer: StatusWriter

    async def outbound(self, patient_id: str, sid: str | None, status: str = "queued") -> int:
        async with self.engine.begin() as conn:
            return int(
                (
                    await conn.execute(
                        insert(Message).returning(Message.id),
                        {
                            "direction": "out",
                            "kind": "reply",
                            "patient_id": patient_id,
                            "site_id": "north",
                            "from_number": "+13125550100",
                            "to_number": "+13125550123",
                            "body": "Hi",
                            "provider_sid": sid,
                            "status": status,
                            "created_at": NOW,
                        },
                    )
                ).scalar_one()
            )

    async def message(self, message_id: int) -> Message:
        async with self.sessionmaker() as session:
            found = await session.get(Message, message_id)
            assert found is not None
            return found

    async def patient(self, patient_id: str = "pat") -> Patient:
        async with self.sessionmaker() as session:
            found = await session.get(Patient, patient_id)
            assert found is not None
            return found

    async def count(self, model: type, *where: object) -> int:
        async with self.sessionmaker() as session:
            return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


@pytest.fixture
async def db(any_db_url: str) -> AsyncIterator[Db]:
    engine = make_engine(any_db_url)
    await upgrade(engine)
    sessionmaker = make_sessionmaker(engine)
    async with sessionmaker.begin() as session:
        session.add(Site(id="north", name="North", phone="+13125550100", time_zone="America/Chicago"))
        await session.flush()
        for pid, phone in (("pat", "+13125550123"), ("twin", "+13125550123"), ("other", "+13125550124")):
            session.add(Patient(id=pid, site_id="north", first_name="A", last_name="B", phone=phone))
        await session.flush()
        session.add(
            Outreach(
                idempotency_key="k1",
                patient_id="pat",
                program_id="p",
                kind="refill_reminder",
                step="d5",
                due_at=NOW + timedelta(days=1),
                deadline_at=NOW + timedelta(days=2),
            )
        )
    worker = DbWorker(engine)
    writer = StatusWriter(worker)
    yield Db(engine, sessionmaker, worker, writer)
    await writer.close()
    await worker.close()
    await engine.dispose()


def update(sid: str, status: str, code: int | None = None, minutes: int = 0) -> StatusUpdate:
    return StatusUpdate(sid, status, code, NOW + timedelta(minutes=minutes))


async def test_callbacks_in_any_order_end_at_the_latest_status(db: Db) -> None:
    first, second = await db.outbound("pat", "SM1"), await db.outbound("other", "SM2")
    # One batch holding both messages' callbacks, the final one of SM1 before its earlier ones.
    await asyncio.gather(
        db.writer.apply(update("SM1", "delivered", minutes=2)),
        db.writer.apply(update("SM2", "sent", minutes=1)),
        db.writer.apply(update("SM1", "sent", minutes=3)),
        db.writer.apply(update("SM1", "queued", minutes=4)),
    )
    one, two = await db.message(first), await db.message(second)
    assert (one.status, one.status_updated_at) == ("delivered", NOW + timedelta(minutes=2))
    assert two.status == "sent"
    assert (await db.patient()).deliverability["consecutive_failures"] == 0
    await db.writer.apply(update("SM1", "read", minutes=5))  # later than delivered: it still moves
    assert (await db.message(first)).status == "read"


async def test_an_unknown_sid_waits_then_applies_when_the_send_is_recorded(db: Db) -> None:
    message_id = await db.outbound("pat", None, status="pending")
    await db.writer.apply(update("SMearly", "sent"))
    await db.writer.apply(update("SMearly", "delivered", minutes=1))
    assert await db.count(ProviderStatus) == 2
    assert (await db.message(message_id)).status == "pending"
    claimed = Claimed(message_id, "+13125550123", "+13125550100", "Hi", "pat", None)
    outcome = [(claimed, SendResult("queued", sid="SMearly"))]
    await db.worker.run_at(Priority.DELIVERY, lambda conn: record(conn, outcome, NOW, drain=True))
    stored = await db.message(message_id)
    assert (stored.provider_sid, stored.status) == ("SMearly", "delivered")
    assert await db.count(ProviderStatus) == 0
    assert (await db.patient()).deliverability.get("last_delivered_at") == NOW.isoformat()


async def test_a_landline_opens_one_contact_task(db: Db) -> None:
    first, second = await db.outbound("pat", "SMa"), await db.outbound("pat", "SMb")
    await db.writer.apply(update("SMa", "undelivered", 30006))
    await db.writer.apply(update("SMb", "undelivered", 30006))
    assert (await db.message(first)).error_code == 30006 and (
        await db.message(second)
    ).status == "undelivered"
    record_ = (await db.patient()).deliverability
    assert record_["status"] == "landline" and record_["consecutive_failures"] == 2 and record_["task_opened"]
    assert await db.count(Task, Task.kind == "fix_contact", Task.patient_id == "pat") == 1


async def test_21610_opts_out_everyone_on_the_phone(db: Db) -> None:
    message_id = await db.outbound("pat", "SMx")
    await db.writer.apply(update("SMx", "failed", 21610))
    assert (await db.message(message_id)).status == "failed"
    assert (await db.patient("pat")).opted_out_at is not None and (
        await db.patient("twin")
    ).opted_out_at is not None
    assert (await db.patient("other")).opted_out_at is None
    assert await db.count(ConsentEvent, ConsentEvent.change == "opt_out") == 2
    assert await db.count(Outreach, Outreach.state == "cancelled") == 1


async def test_a_bad_callback_fails_only_itself(db: Db) -> None:
    await db.outbound("pat", "SMok")
    bad = StatusUpdate("SMok", "delivered", None, "not a time")  # type: ignore[arg-type]
    results = await asyncio.gather(
        db.writer.apply(update("SMok", "sent")), db.writer.apply(bad), return_exceptions=True
    )
    # Both were queued before the writer ran, so they shared a batch; it failed, and was written again one
    # callback at a time: the good one is applied, the bad one fails its own caller (Twilio retries it).
    assert results[0] is None and isinstance(results[1], Exception)
    assert (await db.message(1)).status == "sent"
    await db.writer.apply(update("SMok", "delivered"))  # the writer carries on
    assert (await db.message(1)).status == "delivered"
