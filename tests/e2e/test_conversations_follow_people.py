"""Issue 12 end to end, through the simulator and the real app: outreach follows answers, consent for any
sender kept per number, one reply per text, and a staff hand-off that keeps the bot quiet."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import select

from bot.db.models import Message, Outreach, Patient, Task, TaskNote
from bot.db.records import PatientIn, import_patients
from bot.jobs import make_dispatcher
from bot.keys import JOB_CONTEXT
from bot.staff.auth import create_api_token
from scheduler.planner import replan
from tests.e2e.conftest import Stack

STRANGER = "+13125550999"


async def _outreach(stack: Stack, patient_id: str) -> list[Outreach]:
    async with stack.sessionmaker() as session:
        rows = await session.scalars(
            select(Outreach).where(Outreach.patient_id == patient_id).order_by(Outreach.due_at)
        )
        return list(rows)


async def _plan_and_send_first_reminder(stack: Stack, seed: Any, pid: str, phone: str) -> list[Outreach]:
    # Run-out on Dec 1: the default program reminds 5 and 2 days before (Nov 26 and 29, 10:00 Chicago).
    await seed(pid, phone, dispensed_on=date(2026, 11, 3))
    async with stack.sessionmaker.begin() as session:
        await replan(session, patient_ids={pid}, now=stack.clock.now())
    rows = [r for r in await _outreach(stack, pid) if r.kind == "refill_reminder"]
    assert [r.step for r in rows] == ["run_out-5", "run_out-2"]
    first_due = rows[0].due_at
    stack.clock.set(first_due + timedelta(minutes=1))
    summary = await make_dispatcher(stack.app[JOB_CONTEXT]).run_once()
    assert summary.sent == 1
    assert len(await stack.wait_received(phone, 1)) == 1
    return rows


async def test_replying_1_cancels_the_second_reminder(stack: Stack, seed) -> None:
    rows = await _plan_and_send_first_reminder(stack, seed, "P1", "+13125550123")
    await stack.text("+13125550123", "1")
    after = {r.step: r for r in await _outreach(stack, "P1") if r.kind == "refill_reminder"}
    assert after["run_out-5"].state == "sent"
    assert (after["run_out-2"].state, after["run_out-2"].reason) == ("cancelled", "answered")
    # The day-2 reminder never goes out, even when its time comes.
    stack.clock.set(rows[1].due_at + timedelta(minutes=1))
    assert (await make_dispatcher(stack.app[JOB_CONTEXT]).run_once()).sent == 0


async def test_wrong_number_stops_outreach_to_that_phone(stack: Stack, seed) -> None:
    await _plan_and_send_first_reminder(stack, seed, "P2", "+13125550124")
    await stack.text("+13125550124", "wrong number, I don't know this person")
    rows = await _outreach(stack, "P2")
    assert [(r.state, r.reason) for r in rows if r.state != "sent"] == [("cancelled", "wrong_number")] * (
        len(rows) - 1
    )
    async with stack.sessionmaker() as session:
        kinds = list(await session.scalars(select(Task.kind).where(Task.patient_id == "P2")))
    assert "wrong_number" in kinds  # a person fixes the contact details
    # Planning again does not bring the reminders back.
    async with stack.sessionmaker.begin() as session:
        await replan(session, patient_ids={"P2"}, now=stack.clock.now())
    assert (await make_dispatcher(stack.app[JOB_CONTEXT]).run_once()).sent == 0


async def test_keywords_from_a_number_not_on_file_and_the_number_stays_opted_out(stack: Stack, seed) -> None:
    await seed()  # the site
    await stack.text(STRANGER, "HELP")
    await stack.text(STRANGER, "STOP")
    await stack.text(STRANGER, "HELP")
    await stack.text(STRANGER, "hello?")
    texts = [m["body"] for m in await stack.received(STRANGER)]
    # Twilio's Advanced Opt-Out confirms STOP itself (and then refuses texts to the number until START);
    # midbot answered both HELPs with the HELP text and said nothing else.
    assert len(texts) == 2 and "Lakeside Pharmacy" in texts[0] and "STOP" in texts[0], texts
    assert "unsubscribed" in texts[1] and not any("not monitored" in t for t in texts)
    async with stack.sessionmaker() as session:
        kinds = list(await session.scalars(select(Message.kind).where(Message.to_number == STRANGER)))
    assert sorted(kinds) == ["help", "help"]
    async with stack.sessionmaker.begin() as session:
        row = PatientIn.model_validate(
            {
                "patient_id": "NEW",
                "site_id": "S1",
                "first_name": "Lee",
                "last_name": "Park",
                "phone": STRANGER,
                "language": "en",
                "sms_consent": True,
                "detailed_consent": False,
            }  # fmt: skip
        )
        await import_patients(session, [row])
    async with stack.sessionmaker() as session:
        patient = await session.get(Patient, "NEW")
    assert patient is not None and patient.opted_out_at is not None
    await stack.text(STRANGER, "START")
    async with stack.sessionmaker() as session:
        patient = await session.get(Patient, "NEW", populate_existing=True)
    assert patient is not None and patient.opted_out_at is None  # only the number's owner opts it back in


async def test_alto_and_natural_language_opt_out_from_an_unknown_number_get_the_spanish_reply(
    stack: Stack, seed
) -> None:
    await seed()
    await stack.text("+13125550998", "ya no quiero que me escriban")
    texts = [m["body"] for m in await stack.received("+13125550998")]
    assert len(texts) == 1 and "Ya no recibira" in texts[0]


async def test_no_more_gets_exactly_one_reply(stack: Stack, seed) -> None:
    patient = await seed("P3", "+13125550125")
    await stack.text(patient.phone, "no more")
    assert len(await stack.received(patient.phone)) == 1


async def _hand_off(stack: Stack, phone: str) -> tuple[int, dict[str, str]]:
    await stack.text(phone, "can I take it with grapefruit juice?")
    async with stack.sessionmaker.begin() as session:
        task_id = await session.scalar(
            select(Task.id).where(Task.patient_id == "P4").order_by(Task.id.desc())
        )
        _row, token = await create_api_token(session, site_id="S1", name="pharmacy", now=stack.clock.now())
    assert task_id is not None
    auth = {"Authorization": f"Bearer {token}"}
    claim = await stack.http.post(f"{stack.base_url}/api/v1/tasks/{task_id}/claim", headers=auth)
    assert claim.status == 200, await claim.text()
    reply = await stack.http.post(
        f"{stack.base_url}/api/v1/tasks/{task_id}/reply",
        headers=auth,
        json={"body": "Hi Ana, best to avoid it."},
    )
    assert reply.status == 200, await reply.text()
    return task_id, auth


async def test_after_a_staff_reply_the_patient_talks_to_the_pharmacist(stack: Stack, seed) -> None:
    patient = await seed("P4", "+13125550126")
    task_id, _auth = await _hand_off(stack, patient.phone)
    before = len(await stack.received(patient.phone))
    await stack.text(patient.phone, "ok thanks, what about orange juice?")
    assert len(await stack.received(patient.phone)) == before  # the bot stays quiet
    async with stack.sessionmaker() as session:
        notes = list(await session.scalars(select(TaskNote).where(TaskNote.task_id == task_id)))
        last_in = await session.scalar(
            select(Message.id)
            .where(Message.direction == "in", Message.from_number == patient.phone)
            .order_by(Message.id.desc())
        )
    note = next(n for n in notes if n.kind == "patient_message")
    assert note.message_id == last_in and "orange juice" in note.text
    # An emergency during the hand-off still gets emergency advice and makes the task urgent.
    await stack.text(patient.phone, "now I have chest pain and can't breathe")
    texts = await stack.received(patient.phone)
    assert len(texts) == before + 1 and "911" in texts[-1]["body"]
    async with stack.sessionmaker() as session:
        task = await session.get(Task, task_id)
    assert task is not None and task.queue == "urgent_clinical" and task.priority == 1


async def test_the_hand_off_ends_after_a_day_without_a_staff_text(stack: Stack, seed) -> None:
    patient = await seed("P4", "+13125550126")
    await _hand_off(stack, patient.phone)
    stack.clock.set(stack.clock.now() + timedelta(hours=25))
    before = len(await stack.received(patient.phone))
    await stack.text(patient.phone, "can I take it with food?")
    assert len(await stack.received(patient.phone)) == before + 1  # the bot answers again
