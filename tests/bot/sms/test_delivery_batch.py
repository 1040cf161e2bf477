"""Replies delivered in batches (bot.sms.delivery) through the real twilio client to the local simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.clock import FixedClock
from bot.db.migrate import upgrade
from bot.db.models import Message, Patient, Site, Task
from bot.db.session import make_engine, make_sessionmaker
from bot.db.worker import DbWorker
from bot.settings import Settings
from bot.sms.channel import Channel
from bot.sms.delivery import Deliverer
from integrations.twilio.client import TwilioClient
from integrations.twilio.simulator.app import SimulatorConfig, start_simulator

ACCOUNT = "AC" + "d" * 32
TOKEN = "delivery-test-token"
NOW = datetime.now(UTC).replace(microsecond=0)  # the simulator dates messages by the real clock
PHONES = {"ok": "+13125550123", "blocked": "+13125550666", "invalid": "+15005550001"}


@dataclass
class Rig:
    sessionmaker: async_sessionmaker[AsyncSession]
    engine: AsyncEngine
    deliverer: Deliverer
    sim_url: str
    http: aiohttp.ClientSession

    async def pending(self, patient: str, body: str = "Your refill is ready") -> int:
        async with self.engine.begin() as conn:
            return int(
                (
                    await conn.execute(
                        insert(Message).returning(Message.id),
                        {
                            "direction": "out",
                            "kind": "reply",
                            "patient_id": patient,
                            "site_id": "north",
                            "from_number": "+13125550100",
                            "to_number": PHONES[patient],
                            "body": body,
                            "status": "pending",
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

    async def received(self, phone: str) -> list[dict[str, Any]]:
        async with self.http.get(f"{self.sim_url}/simulator/messages", params={"to": phone}) as response:
            data = await response.json()
        items = data["messages"] if isinstance(data, dict) else data
        return [m for m in items if m.get("direction", "outbound").startswith("out") and m["to"] == phone]


@pytest.fixture
async def rig(any_db_url: str) -> AsyncIterator[Rig]:
    sim_runner, sim_url = await start_simulator(
        SimulatorConfig(
            account_sid=ACCOUNT,
            auth_token=TOKEN,
            callback_delays=(0.0, 0.0),
            blocklist=frozenset({PHONES["blocked"]}),
        ),
        "127.0.0.1",
        0,
    )
    engine = make_engine(any_db_url)
    await upgrade(engine)
    sessionmaker = make_sessionmaker(engine)
    async with sessionmaker.begin() as session:
        session.add(Site(id="north", name="North", phone="+13125550100", time_zone="America/Chicago"))
        await session.flush()
        for name, phone in PHONES.items():
            session.add(Patient(id=name, site_id="north", first_name="A", last_name="B", phone=phone))
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=any_db_url,
        public_base_url="http://127.0.0.1:9",
        run_dispatcher=False,
        twilio_api_base_url=sim_url,
        twilio_account_sid=ACCOUNT,
        twilio_auth_token=TOKEN,
    )
    twilio_http = aiohttp.ClientSession()
    client = TwilioClient(
        session=twilio_http, account_sid=ACCOUNT, auth_token=TOKEN, base_url=sim_url, timeout=5, max_retries=1
    )
    clock = FixedClock(NOW)
    channel = Channel(settings=settings, clock=clock, client=client)
    worker = DbWorker(engine)
    deliverer = Deliverer(channel, worker, clock, linger=0.0)
    async with aiohttp.ClientSession() as http:
        yield Rig(sessionmaker, engine, deliverer, sim_url, http)
    await deliverer.close()
    await worker.close()
    await client.close()
    await twilio_http.close()
    await engine.dispose()
    await sim_runner.cleanup()


async def test_a_batch_is_sent_once_each_even_when_handed_in_twice(rig: Rig) -> None:
    ids = [await rig.pending("ok", f"Reply {n}") for n in range(5)]
    await asyncio.gather(rig.deliverer.deliver(ids), rig.deliverer.deliver(ids[:3]))
    await rig.deliverer.deliver(ids)  # sent already: nothing happens
    stored = [await rig.message(i) for i in ids]
    assert all(
        m.provider_sid and m.status in ("queued", "sent", "delivered") and m.attempts == 1 for m in stored
    )
    bodies = sorted(m["body"] for m in await rig.received(PHONES["ok"]))
    assert bodies == [f"Reply {n}" for n in range(5)]


async def test_an_earlier_attempt_is_reconciled_not_resent(rig: Rig) -> None:
    message_id = await rig.pending("ok", "Sent before a crash")
    await rig.deliverer.deliver([message_id])
    sid = (await rig.message(message_id)).provider_sid
    async with rig.engine.begin() as conn:  # as if the process died before recording the answer
        await conn.execute(
            update(Message).where(Message.id == message_id).values(provider_sid=None, status="unknown")
        )
    await rig.deliverer.deliver([message_id])
    stored = await rig.message(message_id)
    assert stored.provider_sid == sid and stored.attempts == 1
    assert len(await rig.received(PHONES["ok"])) == 1


async def test_permanent_errors_are_recorded_and_acted_on(rig: Rig) -> None:
    blocked, invalid, fine = (
        await rig.pending("blocked"),
        await rig.pending("invalid"),
        await rig.pending("ok"),
    )
    await rig.deliverer.deliver([blocked, invalid, fine])
    stored = {i: await rig.message(i) for i in (blocked, invalid, fine)}
    assert (stored[blocked].status, stored[blocked].error_code) == ("failed", 21610)
    assert (stored[invalid].status, stored[invalid].error_code) == ("failed", 21211)
    assert stored[fine].provider_sid is not None
    async with rig.sessionmaker() as session:
        patients = {p.id: p for p in (await session.scalars(select(Patient))).all()}
        tasks = (await session.scalars(select(Task.kind).where(Task.patient_id == "invalid"))).all()
    assert patients["blocked"].opted_out_at is not None and patients["ok"].opted_out_at is None
    assert patients["invalid"].phone_status == "invalid" and list(tasks) == ["fix_contact"]


async def test_nothing_to_send_is_fine(rig: Rig) -> None:
    await rig.deliverer.deliver([])
    await rig.deliverer.deliver([424242])  # no such message: nothing is sent, nothing raised
    assert await rig.received(PHONES["ok"]) == []
