"""Abandonment recovery flow: schedule, cost, no longer needed (and why), timeouts, Spanish."""

from __future__ import annotations

from conversations.types import FlowStart
from tests.conversations.flowkit import RX, Dialog, body, facts, therapy

READY = FlowStart("abandonment_recovery", RX, {"days": 5, "event": "not_picked_up"})
FIRST_FILL = facts(therapies=(therapy(last_fill_on=None, first_fill_on=None, expected_days_left=None),))


def test_ask_offers_three_choices() -> None:
    text = body(Dialog().start(READY))
    assert "Your medicine has been ready for 5 days." in text
    assert (
        "Reply 1 to schedule pickup or delivery, 2 if cost is a problem, 3 if you no longer need it." in text
    )


def test_one_schedules_pickup() -> None:
    dialog = Dialog()
    dialog.start(READY)
    done = dialog.say("1")
    assert [(t.queue, t.kind) for t in done.tasks] == [("refill", "schedule_pickup")]
    assert [s.kind for s in done.signals] == ["pickup_scheduled"]
    assert done.next_state is None


def test_two_takes_the_copay_path() -> None:
    dialog = Dialog()
    dialog.start(READY)
    done = dialog.say("2")
    assert [(t.queue, t.detail["source"]) for t in done.tasks] == [("financial", "abandonment_recovery")]
    assert [s.kind for s in done.signals] == ["copay_barrier"]
    assert "help with the cost" in body(done)


def test_three_asks_why_and_records_primary_abandonment_for_a_first_fill() -> None:
    dialog = Dialog(FIRST_FILL)
    dialog.start(READY)
    asked = dialog.say("3")
    assert "why do you no longer need it?" in body(asked)
    done = dialog.say("my doctor stopped it")
    assert [(s.kind, s.value) for s in done.signals] == [
        ("primary_abandonment", {"reason": "prescriber_stopped"})
    ]
    assert [(t.queue, t.kind) for t in done.tasks] == [("clinical", "primary_abandonment")]
    assert done.tasks[0].detail["text"] == "my doctor stopped it"
    assert done.next_state is None


def test_a_reason_with_the_choice_needs_no_question_and_a_refill_is_patient_declined() -> None:
    dialog = Dialog()  # the patient has filled before
    dialog.start(READY)
    done = dialog.say("3 I got it at another pharmacy")
    assert [(s.kind, s.value["reason"]) for s in done.signals] == [("patient_declined", "other_pharmacy")]
    assert done.next_state is None


def test_free_text_reason_is_accepted_and_cost_also_opens_financial_help() -> None:
    dialog = Dialog(FIRST_FILL)
    dialog.start(READY)
    dialog.say("3")
    done = dialog.say("it is too expensive")
    assert {t.queue for t in done.tasks} == {"clinical", "financial"}
    assert {s.kind for s in done.signals} == {"primary_abandonment", "copay_barrier"}


def test_unknown_reason_is_still_recorded() -> None:
    dialog = Dialog(FIRST_FILL)
    dialog.start(READY)
    dialog.say("3")
    done = dialog.say("banana")
    assert done.signals[0].value == {"reason": "other"}


def test_no_answer_goes_to_the_refill_queue() -> None:
    dialog = Dialog()
    dialog.start(READY)
    done = dialog.timeout()
    assert [(t.queue, t.kind) for t in done.tasks] == [("refill", "not_picked_up")]
    assert [s.kind for s in done.signals] == ["unreachable"]
    assert not done.replies


def test_no_reason_given_is_recorded_as_such() -> None:
    dialog = Dialog(FIRST_FILL)
    dialog.start(READY)
    dialog.say("3")
    done = dialog.timeout()
    assert done.signals[0].value == {"reason": "not_given"}
    assert not done.replies


def test_spanish() -> None:
    dialog = Dialog(facts("es"))
    text = body(dialog.start(READY))
    assert "Su medicamento está listo hace 5 días." in text
    asked = dialog.say("3")
    assert "¿por qué ya no lo necesita?" in body(asked)
