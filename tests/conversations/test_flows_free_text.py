"""The "anything else" path: questions, symptoms, refills, acks, wrong numbers, and when a person answers."""

from __future__ import annotations

from datetime import UTC, datetime

from conversations import engine
from conversations.types import Classification
from tests.conversations.flowkit import FRIDAY_NIGHT, MONDAY_OPEN, Dialog, body, facts, site


def test_question_in_business_hours_is_answered_today() -> None:
    decision = Dialog().say("can I take it with food?")
    assert [(t.queue, t.kind, t.priority) for t in decision.tasks] == [("clinical", "question", 3)]
    assert body(decision) == "Thank you for your message. A pharmacist will text you back today."


def test_after_hours_names_the_next_business_day_and_gives_emergency_advice() -> None:
    decision = Dialog(now=FRIDAY_NIGHT).say("what time do you open?")
    assert decision.tasks[0].queue == "general"  # not about medication
    assert "A pharmacist will text you back on Monday. If this is an emergency call 911." in body(decision)


def test_early_morning_on_a_business_day_says_today_with_emergency_advice() -> None:
    early = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)  # Tuesday 06:00 Chicago
    text = body(Dialog(now=early).say("what time do you open?"))
    assert "text you back today. If this is an emergency call 911." in text


def test_spanish_ack_after_hours() -> None:
    text = body(Dialog(facts("es"), now=FRIDAY_NIGHT).say("llamenme por favor"))
    assert "Un farmacéutico le responderá el lunes. Si es una emergencia, llame al 911." in text


def test_side_effect_outside_a_check_in_is_triaged() -> None:
    dialog = Dialog()
    asked = dialog.say("I have diarrhea")
    assert "How bad is it at its worst?" in body(asked)
    assert dialog.state is not None and dialog.state.flow == "free_text"
    assert dialog.state.context["ask"] == "checkin_severity"
    graded = dialog.say("4")
    assert [(t.queue, t.priority) for t in graded.tasks] == [("urgent_clinical", 1)]
    assert graded.signals[0].value["source"] == "free_text"
    assert graded.next_state is None


def test_side_effect_with_severity_needs_no_question() -> None:
    decision = Dialog().say("moderate rash")
    assert [(t.queue, t.priority) for t in decision.tasks] == [("clinical", 2)]
    assert decision.next_state is None


def test_ungraded_symptom_timeout_opens_a_task() -> None:
    dialog = Dialog()
    dialog.say("nausea")
    done = dialog.timeout()
    assert [(t.queue, t.priority) for t in done.tasks] == [("clinical", 2)]
    assert not done.replies


def test_refill_request_starts_the_refill_path() -> None:
    dialog = Dialog()
    asked = dialog.say("I need a refill")
    assert "1 for delivery or 2 for pickup" in body(asked)
    done = dialog.say("2")
    assert [(t.queue, t.detail["method"], t.detail["source"]) for t in done.tasks] == [
        ("refill", "pickup", "free_text")
    ]


def test_thanks_after_a_closed_dialog_needs_nothing() -> None:
    decision = Dialog().say("thanks")
    assert not decision.replies and not decision.tasks and decision.next_state is None
    assert decision.classification is not None and decision.classification.intent == "ack"


def test_wrong_number_opens_a_general_task() -> None:
    decision = Dialog().say("wrong number")
    assert [(t.queue, t.kind) for t in decision.tasks] == [("general", "wrong_number")]
    assert "We will fix our records." in body(decision)


def test_unknown_text_opens_a_general_task_with_an_ack() -> None:
    decision = Dialog().say("banana")
    assert [(t.queue, t.kind) for t in decision.tasks] == [("general", "unrecognized")]
    assert "A pharmacist will text you back today." in body(decision)


def test_self_harm_gets_988_as_well_as_911() -> None:
    decision = Dialog().say("I want to kill myself")
    text = body(decision)
    assert "911" in text and "988" in text
    assert decision.tasks[0].detail["self_harm"] is True


def test_possible_opt_out_in_free_words_explains_stop_and_tells_staff() -> None:
    def classify(text: str, context: str | None = None) -> Classification:
        return Classification(text=text, intent="opt_out")

    decision = engine.handle(None, "please stop texting me", facts(), MONDAY_OPEN, classifier=classify)
    assert "reply STOP" in body(decision)
    assert [(t.queue, t.kind) for t in decision.tasks] == [("general", "possible_opt_out")]


def test_missed_doses_outside_a_check_in() -> None:
    decision = Dialog().say("I missed 3 doses")
    assert [(s.kind, s.value["count"]) for s in decision.signals] == [("missed_dose", 3)]
    assert decision.tasks[0].queue == "clinical"


def test_a_site_without_business_days_still_acknowledges() -> None:
    closed = facts(site=site(business_days=()))
    text = body(Dialog(closed).say("can I take it with food?"))
    assert "as soon as we can" in text


def _fever(temperature: float | None) -> engine.Classifier:
    def classify(text: str, context: str | None = None) -> Classification:
        values = {} if temperature is None else {"temperature_f": temperature}
        return Classification(
            text=text, intent="side_effect", severity="mild", values=values, symptoms=("fever",)
        )

    return classify


def test_fever_red_flag_uses_the_site_threshold() -> None:
    patient = facts(site=site(fever_threshold_f=100.5))
    low = engine.handle(None, "fever 99.1", patient, MONDAY_OPEN, classifier=_fever(99.1))
    assert [t.queue for t in low.tasks] == []  # mild, below the threshold: self-care advice
    assert "if it gets worse" in body(low)
    at = engine.handle(None, "fever 100.5", patient, MONDAY_OPEN, classifier=_fever(100.5))
    assert [(t.queue, t.detail["red_flags"]) for t in at.tasks] == [("urgent_clinical", ["fever"])]
    unknown = engine.handle(None, "I have a fever", patient, MONDAY_OPEN, classifier=_fever(None))
    assert unknown.tasks[0].queue == "urgent_clinical"  # on chemotherapy: any fever counts
    not_chemo = facts(on_chemotherapy=False)
    assert not engine.handle(None, "I have a fever", not_chemo, MONDAY_OPEN, classifier=_fever(None)).tasks
