"""Issue 4 acceptance end to end: outreach started, the patient answers by SMS, tasks and signals result."""

from __future__ import annotations

from sqlalchemy import select

from bot.db.models import Patient, Signal, Task
from bot.keys import MESSAGING
from conversations.types import FlowStart
from tests.dialogs import start_flow
from tests.e2e.conftest import Stack


async def start(stack: Stack, patient: Patient, flow: str, **params: object) -> None:
    sms, now = stack.app[MESSAGING], stack.clock.now()
    begin = FlowStart(flow=flow, prescription_id=f"RX-{patient.id}", params=dict(params))
    message_id = await sms.db.run(start_flow, patient.id, begin, now)
    assert message_id is not None
    await sms.deliverer.deliver_one(message_id)


async def tasks(stack: Stack) -> list[Task]:
    async with stack.sessionmaker() as session:
        return list((await session.scalars(select(Task).order_by(Task.id))).all())


async def signals(stack: Stack) -> list[Signal]:
    async with stack.sessionmaker() as session:
        return list((await session.scalars(select(Signal).order_by(Signal.id))).all())


async def test_refill_reminder_answered_1_yields_refill_task_and_signal(stack: Stack, seed) -> None:
    patient = await seed()
    await start(stack, patient, "refill_reminder")
    assert len(await stack.wait_received(patient.phone, 1)) == 1
    await stack.text(patient.phone, "1")
    if not [t for t in await tasks(stack) if t.queue == "refill"]:
        await stack.text(patient.phone, "1")  # the site offers delivery and pickup: choose delivery
    refill = [t for t in await tasks(stack) if t.queue == "refill"]
    assert len(refill) == 1
    assert any(s.kind == "refill_confirmed" for s in await signals(stack))


async def test_checkin_diarrhea_then_severe_is_urgent_within_the_request(stack: Stack, seed) -> None:
    patient = await seed()
    await start(stack, patient, "side_effect_checkin")
    await stack.text(patient.phone, "diarrhea")
    await stack.text(patient.phone, "severe")
    urgent = [t for t in await tasks(stack) if t.queue == "urgent_clinical"]
    assert len(urgent) == 1 and urgent[0].priority == 1
    assert any(s.kind == "side_effect" for s in await signals(stack))


async def test_cant_afford_it_yields_financial_task(stack: Stack, seed) -> None:
    patient = await seed(payer="medicare_d", copay=45000)
    await stack.text(patient.phone, "can't afford it")
    financial = [t for t in await tasks(stack) if t.queue == "financial"]
    assert len(financial) == 1
    assert len(await stack.wait_received(patient.phone, 1)) >= 1


async def test_chest_pain_mid_flow_is_an_emergency(stack: Stack, seed) -> None:
    patient = await seed()
    await start(stack, patient, "refill_reminder")
    await stack.text(patient.phone, "I have chest pain")
    urgent = [t for t in await tasks(stack) if t.queue == "urgent_clinical"]
    assert len(urgent) == 1
    replies = await stack.wait_received(patient.phone, 2)
    assert "911" in replies[-1]["body"]


async def test_spanish_patient_gets_spanish(stack: Stack, seed) -> None:
    patient = await seed(language="es")
    await start(stack, patient, "refill_reminder")
    replies = await stack.wait_received(patient.phone, 1)
    assert "1" in replies[0]["body"] and any(
        w in replies[0]["body"].lower() for w in ("responda", "farmacia")
    )
