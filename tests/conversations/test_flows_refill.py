"""Refill reminder flow: choices, delivery or pickup, pill count, call request, timeouts, Spanish."""

from __future__ import annotations

from datetime import timedelta

from conversations.types import FlowStart
from tests.conversations.flowkit import RX, Dialog, body, facts, site, therapy

REFILL = FlowStart("refill_reminder", RX)


def test_reminder_offers_three_numbered_choices_and_waits_24_hours() -> None:
    dialog = Dialog()
    decision = dialog.start(REFILL)
    text = body(decision)
    assert decision.replies[0].kind == "outreach"
    assert "Reply 1 to refill, 2 if you still have enough, 3 to talk to a pharmacist" in text
    assert "about 4 days left" in text
    assert "Lakeside Oncology Pharmacy" in text
    assert "capecitabine" not in text.lower()  # no detailed consent: no drug name
    assert dialog.state is not None
    assert dialog.state.context["ask"] == "refill_reminder"
    assert dialog.state.expires_at == dialog.now + timedelta(hours=24)


def test_one_asks_delivery_or_pickup_then_opens_the_refill_task() -> None:
    dialog = Dialog()
    dialog.start(REFILL)
    asked = dialog.say("1")
    assert "1 for delivery or 2 for pickup" in body(asked)
    assert not asked.tasks and dialog.state is not None and dialog.state.state == "awaiting_method"
    done = dialog.say("1")
    assert [(t.queue, t.kind, t.detail["method"]) for t in done.tasks] == [("refill", "refill", "delivery")]
    assert done.tasks[0].prescription_id == RX
    assert [s.kind for s in done.signals] == ["refill_confirmed"]
    assert "delivery" in body(done)
    assert done.next_state is None


def test_pickup_by_word() -> None:
    dialog = Dialog()
    dialog.start(REFILL)
    dialog.say("1")
    done = dialog.say("I will pick it up")
    assert done.tasks[0].detail["method"] == "pickup"


def test_delivery_only_site_skips_the_question() -> None:
    dialog = Dialog(facts(site=site(offers_pickup=False)))
    dialog.start(REFILL)
    done = dialog.say("1")
    assert done.tasks[0].detail["method"] == "delivery"
    assert done.signals[0].kind == "refill_confirmed"
    assert done.next_state is None


def test_two_asks_days_left_and_a_matching_count_defers() -> None:
    dialog = Dialog()
    dialog.start(REFILL)
    asked = dialog.say("2")
    assert "how many days" in body(asked)
    done = dialog.say("5")
    assert not done.tasks
    assert [(s.kind, s.value) for s in done.signals] == [("refill_deferred", {"days_left": 5})]
    assert done.next_state is None


def test_a_surplus_beyond_tolerance_means_missed_doses() -> None:
    dialog = Dialog()  # the fill history predicts 4 days left
    dialog.start(REFILL)
    dialog.say("2")
    done = dialog.say("12")
    missed = next(s for s in done.signals if s.kind == "missed_dose")
    assert missed.value["surplus_days"] == 8 and missed.value["source"] == "pill_count"
    assert [(t.queue, t.kind) for t in done.tasks] == [("clinical", "missed_dose")]
    assert "about your doses" in body(done)


def test_surplus_tolerance_boundary() -> None:
    # 7 left vs 4 expected: 3 days over is within the tolerance (> 3 days is needed).
    dialog = Dialog()
    dialog.start(REFILL)
    dialog.say("2")
    assert not dialog.say("7").tasks
    # > 3 days but not > 20 % of a long prediction is no signal either.
    long = Dialog(facts(therapies=(therapy(expected_days_left=30),)))
    long.start(REFILL)
    long.say("2")
    assert [s.kind for s in long.say("35").signals] == ["refill_deferred"]


def test_days_left_stated_with_the_choice() -> None:
    dialog = Dialog()
    dialog.start(REFILL)
    done = dialog.say("2, I have 12 days left")
    assert any(s.kind == "missed_dose" for s in done.signals)
    assert done.next_state is None


def test_three_opens_a_call_request_with_an_ack() -> None:
    dialog = Dialog()
    dialog.start(REFILL)
    done = dialog.say("3")
    assert [(t.queue, t.kind) for t in done.tasks] == [("refill", "call_request")]
    assert "A pharmacist will text you back today." in body(done)
    assert done.next_state is None


def test_no_answer_one_follow_up_then_unreachable_after_72_hours() -> None:
    dialog = Dialog()
    started = dialog.now
    dialog.start(REFILL)
    follow = dialog.timeout()
    assert follow.replies[0].kind == "followup"
    assert body(follow).startswith("Reminder from Lakeside Oncology Pharmacy:")
    assert "Reply 1 to refill" in body(follow)
    assert not follow.tasks
    assert dialog.state is not None and dialog.state.expires_at == started + timedelta(hours=72)
    last = dialog.timeout()
    assert not last.replies
    assert [(t.queue, t.kind) for t in last.tasks] == [("refill", "unreachable")]
    assert [s.kind for s in last.signals] == ["unreachable"]
    assert last.next_state is None


def test_answer_after_the_follow_up_still_works() -> None:
    dialog = Dialog(facts(site=site(offers_delivery=False)))
    dialog.start(REFILL)
    dialog.timeout()
    done = dialog.say("1")
    assert done.tasks[0].detail["method"] == "pickup"


def test_delivery_question_unanswered_still_refills() -> None:
    dialog = Dialog()
    dialog.start(REFILL)
    dialog.say("1")
    done = dialog.timeout()
    assert done.tasks[0].kind == "refill" and done.tasks[0].detail["method"] == "unknown"
    assert not done.replies and done.next_state is None


def test_unexpected_answer_is_asked_again_once_then_goes_to_a_person() -> None:
    dialog = Dialog()
    dialog.start(REFILL)
    again = dialog.say("banana")
    assert body(again).startswith("Sorry, we did not understand.")
    assert "Reply 1 to refill" in body(again)
    assert not again.tasks
    assert dialog.state is not None and dialog.state.context["retries"] == 1
    handed = dialog.say("potato")
    assert [(t.queue, t.kind, t.detail["text"]) for t in handed.tasks] == [
        ("general", "unrecognized_reply", "potato")
    ]
    assert "A pharmacist will text you back" in body(handed)
    assert handed.next_state is None


def test_second_intent_refill_and_a_worse_rash() -> None:
    dialog = Dialog()
    dialog.start(REFILL)
    decision = dialog.say("1 but the rash is worse")
    # refill path continues (delivery or pickup), the rash reaches a pharmacist the same day
    assert dialog.state is not None and dialog.state.state == "awaiting_method"
    assert [(t.queue, t.kind, t.detail["symptoms"]) for t in decision.tasks] == [
        ("clinical", "side_effect", ["rash"])
    ]
    assert any(s.kind == "side_effect" and s.value["symptom"] == "rash" for s in decision.signals)
    text = body(decision)
    assert text.endswith("Reply 1 for delivery or 2 for pickup.")  # the open question comes last
    assert text.count("Thank you") == 1


def test_second_intent_on_a_closing_answer_asks_severity() -> None:
    dialog = Dialog(facts(site=site(offers_pickup=False)))
    dialog.start(REFILL)
    decision = dialog.say("1 but the rash is worse")
    assert decision.tasks[0].kind == "refill"
    assert dialog.state is not None and dialog.state.flow == "free_text"
    assert "How bad is it" in body(decision)
    graded = dialog.say("2")
    assert [(t.queue, t.priority) for t in graded.tasks] == [("clinical", 2)]


def test_emergency_closes_the_dialog_with_911_and_an_urgent_task() -> None:
    dialog = Dialog()
    dialog.start(REFILL)
    decision = dialog.say("I have chest pain")
    assert decision.replies[0].kind == "emergency"
    assert "911" in body(decision)
    assert [(t.queue, t.priority, t.detail["flow"]) for t in decision.tasks] == [
        ("urgent_clinical", 1, "refill_reminder")
    ]
    assert decision.next_state is None


def test_spanish_reminder_and_answers() -> None:
    dialog = Dialog(facts("es"))
    text = body(dialog.start(REFILL))
    assert text.startswith("Hola Ana, le escribe Lakeside Oncology Pharmacy.")
    assert "Responda 1 para resurtir, 2 si aún tiene, 3 para hablar con un farmacéutico." in text
    asked = dialog.say("1")
    assert "Responda 1 para envío a domicilio o 2 para recoger" in body(asked)
    done = dialog.say("2")
    assert done.tasks[0].detail["method"] == "pickup"
    assert "Prepararemos su resurtido" in body(done)


def test_spanish_follow_up() -> None:
    dialog = Dialog(facts("es"))
    dialog.start(REFILL)
    assert body(dialog.timeout()).startswith("Recordatorio de Lakeside Oncology Pharmacy:")


def test_detailed_consent_names_the_drug() -> None:
    dialog = Dialog(facts(detailed=True))
    assert "Time to refill capecitabine" in body(dialog.start(REFILL))


def test_due_now_and_one_day() -> None:
    now_text = body(Dialog().start(FlowStart("refill_reminder", RX, {"days": 0})))
    assert "Time to refill your medicine. Reply 1" in now_text
    one = body(Dialog().start(FlowStart("refill_reminder", RX, {"days": 1})))
    assert "about 1 day left" in one
