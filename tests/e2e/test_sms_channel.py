"""Issue 3 acceptance through the real webhook, the real twilio client and the simulator on 127.0.0.1."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.db.models import ConsentEvent, Message, Outreach, Patient, Task
from bot.keys import MESSAGING
from bot.sms.channel import ChannelRefused
from integrations.twilio.signature import sign
from tests.e2e.conftest import AUTH_TOKEN, BLOCKED_PHONE, SITE_PHONE, Stack


def inbound_form(sid: str, phone: str, body: str) -> dict[str, str]:
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": "AC1",
        "From": phone,
        "To": SITE_PHONE,
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
    }


async def test_forged_or_missing_signature_is_403_and_stores_nothing(stack: Stack, seed) -> None:
    await seed()
    url = f"{stack.base_url}/twilio/inbound"
    form = inbound_form("SM" + "f" * 32, "+13125550123", "yes")
    async with stack.http.post(url, data=form) as missing:
        assert missing.status == 403
    async with stack.http.post(url, data=form, headers={"X-Twilio-Signature": "Zm9yZ2Vk"}) as forged:
        assert forged.status == 403
    wrong_token = sign("not-the-token", url, form)
    async with stack.http.post(url, data=form, headers={"X-Twilio-Signature": wrong_token}) as other:
        assert other.status == 403
    assert await stack.count(Message) == 0
    good = sign(AUTH_TOKEN, url, form)
    async with stack.http.post(url, data=form, headers={"X-Twilio-Signature": good}) as ok:
        assert ok.status == 200
        assert "<Response>" in await ok.text()
    assert await stack.count(Message, Message.direction == "in") == 1


async def test_same_message_sid_five_times_is_one_message_and_one_reply(stack: Stack, seed) -> None:
    patient = await seed()
    sid = "SM" + "a" * 32
    for _ in range(5):
        await stack.text(patient.phone, "when will my refill be ready?", sid=sid)
    assert await stack.count(Message, Message.direction == "in") == 1
    replies = await stack.wait_received(patient.phone, 1)
    assert len(replies) == 1
    assert await stack.count(Task) == 1


@pytest.mark.parametrize("word", ["STOP", "stop.", "Stop!", "ALTO"])
async def test_stop_words_opt_out_with_one_confirmation(stack: Stack, seed, word: str) -> None:
    patient = await seed(language="es" if word == "ALTO" else "en")
    async with stack.sessionmaker.begin() as session:
        session.add(
            Outreach(
                idempotency_key="k1",
                patient_id=patient.id,
                prescription_id=f"RX-{patient.id}",
                program_id="refill",
                kind="refill_reminder",
                step="run_out-2",
                due_at=stack.clock.now(),
                deadline_at=stack.clock.now(),
                state="planned",
            )
        )
    await stack.text(patient.phone, word)
    replies = await stack.wait_received(patient.phone, 1)
    # One confirmation: Twilio's own for its keywords (Advanced Opt-Out), midbot's for the others.
    assert len(replies) == 1 and (
        "unsubscribed" in replies[0]["body"].lower() or "ya no" in replies[0]["body"].lower()
    )
    sent_by_midbot = await stack.count(Message, Message.direction == "out")
    await stack.text(patient.phone, word)  # a second STOP: midbot sends nothing more
    assert await stack.count(Message, Message.direction == "out") == sent_by_midbot
    async with stack.sessionmaker() as session:
        stored = await session.get(Patient, patient.id)
        assert stored is not None and stored.opted_out_at is not None
        row = await session.scalar(select(Outreach).where(Outreach.idempotency_key == "k1"))
        assert row is not None and row.state == "cancelled" and row.reason == "opted_out"
        events = (await session.scalars(select(ConsentEvent))).all()
        assert [e.change for e in events] == ["opt_out"] and events[0].message_id is not None
    with pytest.raises(ChannelRefused):
        await stack.app[MESSAGING].send_text(
            now=stack.clock.now(), patient_id=patient.id, body="Your refill is due", kind="outreach"
        )
    assert await stack.count(Message, Message.direction == "out") == sent_by_midbot


async def test_natural_language_revocation_opts_out_and_midbot_confirms(stack: Stack, seed) -> None:
    patient = await seed()
    await stack.text(patient.phone, "please stop texting me")
    replies = await stack.wait_received(patient.phone, 1)
    assert len(replies) == 1 and "unsubscribed" in replies[0]["body"]
    async with stack.sessionmaker() as session:
        stored = await session.get(Patient, patient.id)
        assert stored is not None and stored.opted_out_at is not None


async def test_start_opts_back_in_and_help_answers(stack: Stack, seed) -> None:
    patient = await seed()
    await stack.text(patient.phone, "STOP")
    await stack.text(patient.phone, "START")
    async with stack.sessionmaker() as session:
        stored = await session.get(Patient, patient.id)
        assert stored is not None and stored.opted_out_at is None
    await stack.text(patient.phone, "help")
    replies = await stack.wait_received(patient.phone, 3)
    assert "STOP" in replies[-1]["body"] and "Lakeside Pharmacy" in replies[-1]["body"]


async def test_clinical_stop_is_not_an_opt_out(stack: Stack, seed) -> None:
    patient = await seed()
    await stack.text(patient.phone, "I stopped taking it, the rash got worse")
    async with stack.sessionmaker() as session:
        stored = await session.get(Patient, patient.id)
        assert stored is not None and stored.opted_out_at is None
        tasks = (await session.scalars(select(Task))).all()
        inbound = await session.scalar(select(Message).where(Message.direction == "in"))
    assert inbound is not None and inbound.processed_at is not None
    replies = await stack.wait_received(patient.phone, 1)
    assert replies, "the patient gets an answer"
    assert (
        tasks
        and any(t.queue in ("clinical", "urgent_clinical") for t in tasks)
        or any("how bad" in r["body"].lower() or "0" in r["body"] for r in replies)
    )


async def test_provider_21610_marks_the_patient_opted_out(stack: Stack, seed) -> None:
    patient = await seed(phone=BLOCKED_PHONE)  # opted out at Twilio; midbot does not know yet
    message = await stack.app[MESSAGING].send_text(
        now=stack.clock.now(), patient_id=patient.id, body="Hello from the pharmacy", reply_to_patient=True
    )
    assert message.status == "failed" and message.error_code == 21610
    async with stack.sessionmaker() as session:
        stored = await session.get(Patient, patient.id)
        assert stored is not None and stored.opted_out_at is not None


async def test_429_then_201_sends_exactly_once(stack: Stack, seed) -> None:
    patient = await seed()
    async with stack.http.post(
        f"{stack.sim_url}/simulator/faults", json={"status": 429, "count": 1, "retry_after": 0}
    ) as r:
        assert r.status < 300
    message = await stack.app[MESSAGING].send_text(
        now=stack.clock.now(),
        patient_id=patient.id,
        body="Your pharmacy has a question",
        reply_to_patient=True,
    )
    assert message.provider_sid and message.status != "failed"
    assert len(await stack.received(patient.phone)) == 1


async def test_status_callbacks_out_of_order_end_delivered(stack: Stack, seed) -> None:
    patient = await seed()
    message = await stack.app[MESSAGING].send_text(
        now=stack.clock.now(), patient_id=patient.id, body="Hi", reply_to_patient=True
    )
    url = f"{stack.base_url}/twilio/status"
    for status in ("delivered", "sent", "queued"):
        form = {"MessageSid": message.provider_sid, "MessageStatus": status, "AccountSid": "AC1"}
        async with stack.http.post(
            url, data=form, headers={"X-Twilio-Signature": sign(AUTH_TOKEN, url, form)}
        ) as r:
            assert r.status in (200, 204)
    async with stack.sessionmaker() as session:
        stored = await session.get(Message, message.id)
        assert stored is not None and stored.status == "delivered", (stored.status, stored.status_updated_at)


async def test_undelivered_carrier_code_feeds_deliverability(stack: Stack, seed) -> None:
    patient = await seed(phone="+13125550006")  # the simulator answers 30006 (landline) for ...0006
    message = await stack.app[MESSAGING].send_text(
        now=stack.clock.now(), patient_id=patient.id, body="Hi", reply_to_patient=True
    )
    for _ in range(100):
        async with stack.sessionmaker() as session:
            stored = await session.get(Message, message.id)
            if stored is not None and stored.status in ("undelivered", "failed"):
                break
        import asyncio

        await asyncio.sleep(0.02)
    async with stack.sessionmaker() as session:
        stored = await session.get(Message, message.id)
        assert stored is not None and stored.status == "undelivered" and stored.error_code == 30006
        p = await session.get(Patient, patient.id)
        assert p is not None and p.deliverability.get("last_error_code") == 30006


async def test_unknown_sender_gets_one_reply_a_day_and_a_task(stack: Stack, seed) -> None:
    await seed()
    stranger = "+13125550999"
    await stack.text(stranger, "hi who is this")
    await stack.text(stranger, "hello??")
    replies = await stack.wait_received(stranger, 1)
    assert len(replies) == 1 and "not monitored" in replies[0]["body"]
    assert await stack.count(Task, Task.kind == "unknown_sender") == 2


async def test_media_only_message_is_acknowledged_and_routed(stack: Stack, seed) -> None:
    patient = await seed()
    await stack.text(patient.phone, "", media=["http://127.0.0.1/media/rash.jpg"])
    replies = await stack.wait_received(patient.phone, 1)
    assert len(replies) == 1
    assert await stack.count(Task, Task.kind == "media_message") == 1


async def test_invalid_number_flags_the_phone_and_opens_a_contact_task(stack: Stack, seed) -> None:
    patient = await seed(phone="+15005550001")  # the simulator answers 21211 (invalid 'To') like Twilio
    message = await stack.app[MESSAGING].send_text(
        now=stack.clock.now(), patient_id=patient.id, body="Hello", reply_to_patient=True
    )
    assert message.status == "failed" and message.error_code == 21211
    async with stack.sessionmaker() as session:
        stored = await session.get(Patient, patient.id)
        assert stored is not None and stored.phone_status == "invalid"
    assert await stack.count(Task, Task.kind == "fix_contact") == 1
    with pytest.raises(ChannelRefused):  # no more attempts at a number known to be bad
        await stack.app[MESSAGING].send_text(
            now=stack.clock.now(), patient_id=patient.id, body="Hello again", reply_to_patient=True
        )
