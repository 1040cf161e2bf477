"""Issue 14 dialog-level safety through the running app (signed webhook → real app → simulator), English and
Spanish: a refused answer is never a yes, an opt-out or emergency inside an answer wins over the question's
choices, a question about stopping a medicine is a question, a denied symptom records no symptom; a topic-scoped opt-out
stops only that program."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.db.models import Outreach, Patient, ProgramOptOut, Signal, Task
from bot.jobs import make_dispatcher
from bot.keys import JOB_CONTEXT, MESSAGING
from conversations.types import FlowStart
from tests.dialogs import start_flow
from tests.e2e.conftest import Stack, add_patient, running_stack

_YES_EFFECTS = frozenset({"refill_confirmed"})


async def _start(stack: Stack, patient: Patient, flow: str) -> None:
    sms, now = stack.app[MESSAGING], stack.clock.now()
    begin = FlowStart(flow=flow, prescription_id=f"RX-{patient.id}", params={})
    message_id = await sms.db.run(start_flow, patient.id, begin, now)
    assert message_id is not None
    await sms.deliverer.deliver_one(message_id)


async def _outcome(stack: Stack, patient: Patient) -> dict[str, Any]:
    """What one patient's texts came to: signal kinds, task queues, opted out, texts received."""
    async with stack.sessionmaker() as session:
        signals = list(await session.scalars(select(Signal.kind).where(Signal.patient_id == patient.id)))
        tasks = list(await session.scalars(select(Task.queue).where(Task.patient_id == patient.id)))
        row = await session.get(Patient, patient.id, populate_existing=True)
    received = [m["body"] for m in await stack.received(patient.phone)]
    return {
        "signals": signals,
        "tasks": tasks,
        "opted_out": row is not None and row.opted_out_at is not None,
        "received": received,
    }


_PASTED_EN = "Your refill is due. Reply 1 to refill, 2 if you still have enough. Reply STOP to opt out.\n2"
_GRANDMA = "my grandma keeps saying she wants to die and she's been giving her stuff away. is that a side effect??"
_PASTED_ES = "Responda 1 para resurtir, 2 si todavía tiene suficiente. STOP para salir\n> 2\nEnviado desde mi iPhone"

# (flow, language, the patient's answer, what must hold)
_CASES: list[tuple[str, str, str, str]] = [
    # a negated or refused answer is never a confirm
    ("refill_reminder", "en", "no I don't want it this month", "declined"),
    ("refill_reminder", "es", "no quiero el refill este mes", "declined"),
    ("refill_reminder", "en", "yes... actually no, don't send it, I have plenty", "declined"),
    ("refill_reminder", "es", "no, no la quiero", "declined"),
    ("copay_assistance", "en", "definitely not", "declined"),
    ("refill_reminder", "en", "don't send any more", "opted_out"),
    ("refill_reminder", "es", "ya no me manden mensajes", "opted_out"),
    ("refill_reminder", "en", "Stoo", "opted_out"),  # STOP mistyped, alone: honoured like STOP
    ("refill_reminder", "es", "estop", "opted_out"),
    ("refill_reminder", "es", "sí... no, espere, todavía no", "declined"),  # a self-correction: the last answer
    ("refill_reminder", "en", "yes.. wait no, not yet", "declined"),
    ("refill_reminder", "es", "pará de mandarme mensajes, en serio", "opted_out"),  # vos imperative
    # a wish that the texts go on holds stop words but is no opt-out
    ("refill_reminder", "en", "please don't stop the reminders, I just don't need it this month", "declined"),
    ("refill_reminder", "es", "no dejen de mandarme los recordatorios, pero este mes no", "declined"),
    ("refill_reminder", "es", "no me paren los recordatorios porfa, pero este mes no", "declined"),
    ("refill_reminder", "en", "Don't quit sending the reminders, but I don't need it this month", "declined"),
    # a reply pasted under our own text, whose footer says "Reply STOP to opt out": the patient said 2
    ("refill_reminder", "en", _PASTED_EN, "declined"),
    ("refill_reminder", "es", _PASTED_ES, "declined"),
    ("refill_reminder", "en", "I hereby withdraw my consent to receive text messages", "opted_out"),
    # an opt-out or an emergency inside a longer answer wins over the open question's choices
    ("refill_reminder", "en", "1 but stop texting me", "opted_out"),
    ("refill_reminder", "es", "si pero ya no me manden mensajes por favor", "opted_out"),
    ("refill_reminder", "en", "1, also my chest hurts and I can't breathe", "emergency"),
    ("refill_reminder", "es", "1 pero tengo dolor de pecho y me falta el aire", "emergency"),
    ("copay_assistance", "en", "2 and please stop sending me these messages", "opted_out"),
    ("copay_assistance", "es", "2 y ya no me manden estos mensajes", "opted_out"),
    ("side_effect_checkin", "en", "I'm fine, but this morning I passed out in the kitchen", "emergency"),
    ("side_effect_checkin", "es", "todo bien, pero esta mañana me desmayé en la cocina", "emergency"),
    ("side_effect_checkin", "es", "¿vos sabés si es normal que me duela el pecho? me duele ahora mismo, fuerte", "emergency"),
    ("side_effect_checkin", "en", "is it normal that my chest hurts? it hurts right now, bad", "emergency"),
    # typed without vowels by sore hands: "can't breathe good"; a nosebleed that keeps going
    ("side_effect_checkin", "en", "hands cracked, cnt breth good since this mornin", "emergency"),
    ("side_effect_checkin", "es", "la nariz me sangra hace 45 min y no para", "emergency"),
    # self-harm thoughts told by a relative, asked as a question: an emergency (911 and 988)
    ("side_effect_checkin", "en", _GRANDMA, "self_harm"),
    ("side_effect_checkin", "es", "mi abuela dice que ya no quiere vivir y anda regalando sus cosas", "self_harm"),
    # a question about stopping a medicine is a question, not a symptom report
    ("side_effect_checkin", "en", "should I stop taking it while I'm on antibiotics?", "question"),
    ("side_effect_checkin", "es", "¿puedo dejar de tomarla mientras tomo antibiótico?", "question"),
    # a follow-up that denies a symptom records no symptom
    (
        "side_effect_checkin",
        "en",
        "no, I was just asking about the mouth sores, I don't have them",
        "no_symptom",
    ),
    ("side_effect_checkin", "es", "no, solo preguntaba por las llagas, no las tengo", "no_symptom"),
    ("side_effect_checkin", "en", "no, I don't have diarrhea, I was asking if it causes it", "no_symptom"),
    ("side_effect_checkin", "es", "no, no tengo diarrea, preguntaba si la causa", "no_symptom"),
]


def _check(case: tuple[str, str, str, str], outcome: dict[str, Any]) -> list[str]:
    """The ways an outcome breaks the case's rule (empty: it holds)."""
    _, _, text, expect = case
    signals, tasks = set(outcome["signals"]), outcome["tasks"]
    problems = []
    if signals & _YES_EFFECTS or "refill" in tasks:
        problems.append(f"taken as a yes: {signals} {tasks}")
    if expect == "declined" and outcome["opted_out"]:
        problems.append("a decline opted the patient out")
    if expect == "opted_out" and not outcome["opted_out"]:
        problems.append("the opt-out was not honoured")
    replies = outcome["received"][1:]
    if expect in ("emergency", "self_harm") and ("urgent_clinical" not in tasks or not any("911" in r for r in replies)):
        problems.append(f"no emergency handling: {tasks}")
    if expect == "self_harm" and not any("988" in r for r in replies):
        problems.append("no 988 for self-harm")
    if expect in ("question", "no_symptom") and "side_effect" in signals:
        problems.append("a symptom signal was recorded")
    if expect == "question" and not tasks:
        problems.append("the question reached no one")
    if expect != "opted_out" and outcome["opted_out"]:
        problems.append("opted out")
    return [f"{text!r}: {p}" for p in problems]


async def test_dialog_safety_cases_through_the_running_app(tmp_path, stack_clock) -> None:  # type: ignore[no-untyped-def]
    async with running_stack(tmp_path, stack_clock) as stack:
        patients = []
        for i, case in enumerate(_CASES):
            patient = await add_patient(stack, f"D{i}", f"+1312555{2000 + i:04d}", case[1])
            await _start(stack, patient, case[0])
            assert len(await stack.wait_received(patient.phone, 1)) == 1
            patients.append(patient)
        for patient, case in zip(patients, _CASES, strict=True):
            await stack.text(patient.phone, case[2])
        problems = [p for patient, case in zip(patients, _CASES, strict=True)
                    for p in _check(case, await _outcome(stack, patient))]  # fmt: skip
        assert not problems, "\n".join(problems)
        for patient, case in zip(patients, _CASES, strict=True):  # one reply at most (self-harm: and 988)
            assert len(await stack.received(patient.phone)) <= (3 if case[3] == "self_harm" else 2)


async def _add_outreach(stack: Stack, patient: Patient, kind: str, step: str, due: datetime) -> int:
    async with stack.sessionmaker.begin() as session:
        row = Outreach(
            idempotency_key=f"{patient.id}:{kind}:{step}:{due.isoformat()}",
            patient_id=patient.id,
            prescription_id=f"RX-{patient.id}",
            program_id=f"{kind}-test",
            kind=kind,
            step=step,
            due_at=due,
            deadline_at=due + timedelta(hours=24),
        )
        session.add(row)
        await session.flush()
        return row.id


async def _outreach_states(stack: Stack, ids: list[int]) -> list[tuple[str, str]]:
    async with stack.sessionmaker() as session:
        rows = {r.id: r for r in await session.scalars(select(Outreach).where(Outreach.id.in_(ids)))}
        return [(rows[i].state, rows[i].reason) for i in ids]


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("en", "stop sending me the copay stuff"),
        ("es", "ya no me manden lo del copago por favor"),
        ("en", "Not interested in the financial assistance messages. Discontinue them."),
        ("es", "no me interesan esos mensajes del copago"),
    ],
)
async def test_a_topic_scoped_opt_out_stops_that_program_only(tmp_path, stack_clock, language, text) -> None:  # type: ignore[no-untyped-def]
    async with running_stack(tmp_path, stack_clock) as stack:
        patient = await add_patient(stack, "C1", "+13125554001", language)
        now = stack.clock.now()
        copay = await _add_outreach(
            stack, patient, "copay_assistance", "first_fill-3", now + timedelta(days=1)
        )
        refill = await _add_outreach(stack, patient, "refill_reminder", "run_out-5", now + timedelta(days=3))
        await stack.text(patient.phone, text)
        outcome = await _outcome(stack, patient)
        assert not outcome["opted_out"]  # the other texts keep coming
        assert await _outreach_states(stack, [copay, refill]) == [
            ("cancelled", "opted_out_program"),
            ("planned", ""),
        ]
        reply = outcome["received"][-1]
        assert ("STOP" in reply) if language == "en" else ("ALTO" in reply)
        # A copay row planned later is skipped by the dispatcher; the refill reminder is not touched.
        later = await _add_outreach(
            stack, patient, "copay_assistance", "first_fill-7", now + timedelta(days=2)
        )
        stack.clock.set(now + timedelta(days=2, minutes=1))
        summary = await make_dispatcher(stack.app[JOB_CONTEXT]).run_once()
        assert (summary.sent, summary.cancelled) == (0, 1)
        assert await _outreach_states(stack, [later, refill]) == [
            ("cancelled", "opted_out_program"),
            ("planned", ""),
        ]
        # Opting in again (START) undoes the program's opt-out.
        await stack.text(patient.phone, "START")
        assert await stack.count(ProgramOptOut, ProgramOptOut.patient_id == patient.id) == 0


# Taking an opt-out back in words, or a change of mind with a wish for the texts.
_TAKE_BACKS = [
    ("en", "I hereby rescind my prior opt-out. Resume text communications."),
    ("es", "me arrepentí, quiero que me sigan mandando los recordatorios"),
    ("en", "oops didnt mean to unsubscribe, turn them back on"),
    ("en", "oops didn't mean to unsubscribe, please resume"),
    ("es", "me equivoqué al poner stop, sigan mandándome"),
]


@pytest.mark.parametrize(("language", "text"), _TAKE_BACKS)
async def test_taking_back_an_opt_out_in_words_opts_in(tmp_path, stack_clock, language, text) -> None:  # type: ignore[no-untyped-def]
    async with running_stack(tmp_path, stack_clock) as stack:
        patient = await add_patient(stack, "O1", "+13125554101", language)
        # Opted out in words (a STOP keyword would also have Twilio block the number until START).
        await stack.text(patient.phone, "ya no me manden mensajes" if language == "es" else "please stop texting me")
        assert (await _outcome(stack, patient))["opted_out"]
        await stack.text(patient.phone, "ok gracias" if language == "es" else "ok thanks")
        assert (await _outcome(stack, patient))["opted_out"]  # any other text leaves the opt-out alone
        await stack.text(patient.phone, text)
        outcome = await _outcome(stack, patient)
        assert not outcome["opted_out"]
        assert len(outcome["received"]) == 2  # the opt-out's and the opt-in's confirmations, nothing else


async def test_a_take_back_after_a_stop_keyword_asks_a_person_to_get_start(tmp_path, stack_clock) -> None:  # type: ignore[no-untyped-def]
    """After the STOP keyword Twilio blocks the number until the handset texts START: a take-back in words is
    recorded, its confirmation bounces (21610), the opt-out stands and a person is asked to call."""
    async with running_stack(tmp_path, stack_clock) as stack:
        patient = await add_patient(stack, "O2", "+13125554102", "en")
        await stack.text(patient.phone, "STOP")
        await stack.text(patient.phone, "oops didn't mean to unsubscribe, please resume")
        async with stack.sessionmaker() as session:
            tasks = list(await session.scalars(select(Task).where(Task.patient_id == patient.id)))
            row = await session.get(Patient, patient.id, populate_existing=True)
        assert [t.kind for t in tasks] == ["resume_needs_start"] and tasks[0].queue == "general"
        assert row is not None and row.opted_out_at is not None  # only START lifts the carrier's block
        await stack.text(patient.phone, "START")
        assert not (await _outcome(stack, patient))["opted_out"]
