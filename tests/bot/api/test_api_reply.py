"""Staff replies by SMS: stored, sent through the real twilio library to the local simulator, noted, audited."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.clock import FixedClock
from bot.db.models import AuditEvent, Message, Patient, TaskNote
from bot.keys import SESSIONMAKER
from bot.settings import Settings
from integrations.twilio.simulator.app import SimulatorConfig, start_simulator
from tests.bot.support import PATIENT_PHONE, Seeded, build_app, migrate, seed, sign_in

ACCOUNT = "AC" + "f" * 32
AUTH = "reply-test-auth-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def clock() -> FixedClock:
    """Tuesday 10:00 in Chicago: inside the sending window."""
    return FixedClock(datetime(2026, 11, 24, 16, 0, tzinfo=UTC))


@pytest.fixture
async def sms(aiohttp_client, tmp_path, clock: FixedClock) -> AsyncIterator[tuple[TestClient, Seeded, str]]:
    port = free_port()
    runner, sim_url = await start_simulator(
        SimulatorConfig(account_sid=ACCOUNT, auth_token=AUTH, callback_delays=(0.0, 0.0), seed=7)
    )
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path}/reply.db",
        public_base_url=f"http://127.0.0.1:{port}", twilio_api_base_url=sim_url, twilio_account_sid=ACCOUNT,
        twilio_auth_token=AUTH, run_dispatcher=False, log_format="text", twilio_timeout_seconds=5,
    )  # fmt: skip
    await migrate(settings)
    client = await aiohttp_client(build_app(settings, clock), server_kwargs={"port": port})
    seeded = await seed(client.server.app[SESSIONMAKER], clock.now())
    yield client, seeded, sim_url
    await asyncio.sleep(0.05)  # let the simulator's status callbacks land before it stops
    await runner.cleanup()


async def received(sim_url: str, phone: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{sim_url}/simulator/messages", params={"to": phone}) as response:
            data = await response.json()
    items = data["messages"] if isinstance(data, dict) else data
    return [m for m in items if m["to"] == phone]


def bearer(seeded: Seeded) -> dict[str, str]:
    return {"Authorization": f"Bearer {seeded.tokens['north']}"}


async def test_a_reply_is_stored_sent_noted_and_warns_about_drug_names(sms) -> None:
    client, seeded, sim_url = sms
    task_id = seeded.tasks["refill"]
    body = "Hola, su CAPECITABINE estará lista mañana."
    response = await client.post(
        f"/api/v1/tasks/{task_id}/reply", json={"body": body}, headers=bearer(seeded)
    )
    assert response.status == 200, await response.text()
    answer = await response.json()
    assert answer["warnings"] and "detailed messages" in answer["warnings"][0]
    assert answer["status"] in ("queued", "sent", "delivered")

    async with client.server.app[SESSIONMAKER]() as session:
        message = await session.get(Message, answer["message_id"])
        notes = list(await session.scalars(select(TaskNote).where(TaskNote.task_id == task_id)))
        audits = list(
            await session.scalars(select(AuditEvent.action).where(AuditEvent.target == f"task:{task_id}"))
        )
    assert message is not None and message.direction == "out" and message.body == body
    assert message.task_id == task_id and message.kind == "staff" and message.provider_sid
    assert message.to_number == PATIENT_PHONE and message.encoding == "UCS-2"
    assert [n.kind for n in notes] == ["reply"] and "task.reply" in audits
    texts = await received(sim_url, PATIENT_PHONE)
    assert [t["body"] for t in texts] == [body]


async def test_no_warning_with_detailed_consent_or_without_a_drug(sms) -> None:
    client, seeded, _sim = sms
    task_id = seeded.tasks["refill"]
    plain = await client.post(
        f"/api/v1/tasks/{task_id}/reply", json={"body": "We will call you today."}, headers=bearer(seeded)
    )
    assert plain.status == 200 and (await plain.json())["warnings"] == []


async def test_an_opted_out_patient_is_not_texted(sms, clock: FixedClock) -> None:
    client, seeded, sim_url = sms
    async with client.server.app[SESSIONMAKER].begin() as session:
        patient = await session.get(Patient, "pat-n1")
        assert patient is not None
        patient.opted_out_at = clock.now()
    response = await client.post(
        f"/api/v1/tasks/{seeded.tasks['refill']}/reply", json={"body": "Hello"}, headers=bearer(seeded)
    )
    assert response.status == 409
    body = await response.json()
    assert body["field"] == "body" and "opted out" in body["error"]
    assert await received(sim_url, PATIENT_PHONE) == []


async def test_quiet_hours_hold_replies_unless_answering_the_patient(sms, clock: FixedClock) -> None:
    client, seeded, _sim = sms
    clock.set(datetime(2026, 11, 25, 4, 0, tzinfo=UTC))  # 22:00 in Chicago
    answering = await client.post(
        f"/api/v1/tasks/{seeded.tasks['refill']}/reply",
        json={"body": "We got your message."},
        headers=bearer(seeded),
    )
    assert answering.status == 200  # the task came from the patient's own text
    cold = await client.post(
        f"/api/v1/tasks/{seeded.tasks['financial']}/reply",
        json={"body": "About your copay"},
        headers=bearer(seeded),
    )
    assert cold.status == 409 and "quiet hours" in (await cold.json())["error"]


async def test_the_page_form_sends_as_the_signed_in_user(sms) -> None:
    client, seeded, sim_url = sms
    csrf = await sign_in(client, "pharmacist")
    task_id = seeded.tasks["refill"]
    unclaimed = await client.post(f"/tasks/{task_id}/reply", data={"csrf_token": csrf, "body": "Hola"})
    assert unclaimed.status == 409 and "claim this task before replying" in await unclaimed.text()
    assert await received(sim_url, PATIENT_PHONE) == []  # issue 16: no reply without a claim
    await client.post(f"/tasks/{task_id}/claim", data={"csrf_token": csrf})
    response = await client.post(
        f"/tasks/{task_id}/reply",
        data={"csrf_token": csrf, "body": "Le llamaremos hoy."},
        allow_redirects=False,
    )
    assert response.status == 303 and response.headers["Location"] == f"/tasks/{task_id}?done=reply"
    async with client.server.app[SESSIONMAKER]() as session:
        message = await session.scalar(select(Message).where(Message.task_id == task_id))
    assert message is not None and message.staff_user_id == seeded.users["pharmacist"]
    page = await (await client.get(f"/tasks/{task_id}")).text()
    assert "Le llamaremos hoy." in page
    assert [t["body"] for t in await received(sim_url, PATIENT_PHONE)] == ["Le llamaremos hoy."]
    empty = await client.post(f"/tasks/{task_id}/reply", data={"csrf_token": csrf, "body": "  "})
    assert empty.status == 400 and 'data-field="body"' in await empty.text()
