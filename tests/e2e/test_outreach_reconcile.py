"""After a crash between storing an outreach text and hearing from the provider, it is reconciled, not resent."""

from __future__ import annotations

from sqlalchemy import select

from bot.db.models import Message, Outreach
from bot.keys import CHANNEL, MESSAGING
from bot.sms.outreach import ChannelOutreachSender
from tests.e2e.conftest import SITE_PHONE, Stack


async def _crashed_send(stack: Stack, patient_id: str, phone: str, body: str) -> int:
    """The state a crash leaves: rows sending, the text stored with one attempt counted, no provider sid."""
    now = stack.clock.now()
    async with stack.sessionmaker.begin() as session:
        message = Message(
            direction="out",
            kind="outreach",
            patient_id=patient_id,
            site_id="S1",
            from_number=SITE_PHONE,
            to_number=phone,
            body=body,
            status="pending",
            attempts=1,
            created_at=now,
        )
        session.add(message)
        await session.flush()
        session.add(
            Outreach(
                idempotency_key=f"{patient_id}:crash",
                patient_id=patient_id,
                program_id="refill",
                kind="refill_reminder",
                step="run_out-2",
                due_at=now,
                deadline_at=now,
                state="sending",
                message_id=message.id,
            )
        )
        return message.id


def _sender(stack: Stack) -> ChannelOutreachSender:
    return stack.app[MESSAGING].outreach


async def test_text_the_provider_already_has_is_not_sent_again(stack: Stack, seed) -> None:
    patient = await seed()
    body = "Lakeside Pharmacy: time to refill. Reply 1 to refill."
    message_id = await _crashed_send(stack, patient.id, patient.phone, body)
    # The provider did get it before the crash.
    await stack.app[CHANNEL]._client.send(to=patient.phone, body=body, from_=SITE_PHONE)
    async with stack.sessionmaker() as session:
        ids = list(
            (await session.scalars(select(Outreach.id).where(Outreach.message_id == message_id))).all()
        )
    outcome = await _sender(stack).reconcile(patient.id, ids, stack.clock.now())
    assert outcome is not None and outcome.status == "sent" and outcome.message_id == message_id
    assert len(await stack.received(patient.phone)) == 1


async def test_text_the_provider_never_got_is_sent_once(stack: Stack, seed) -> None:
    patient = await seed()
    message_id = await _crashed_send(
        stack, patient.id, patient.phone, "Lakeside Pharmacy: how are you feeling?"
    )
    async with stack.sessionmaker() as session:
        ids = list(
            (await session.scalars(select(Outreach.id).where(Outreach.message_id == message_id))).all()
        )
    outcome = await _sender(stack).reconcile(patient.id, ids, stack.clock.now())
    assert outcome is not None and outcome.status == "sent"
    assert len(await stack.received(patient.phone)) == 1
    async with stack.sessionmaker() as session:
        stored = await session.get(Message, message_id)
        assert stored is not None and stored.provider_sid
