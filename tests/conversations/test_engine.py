"""The dialog engine: bundling, clinic wording, contexts, interruptions, business time, purity."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from conversations import engine
from conversations.flows.common import add_business_hours, is_open, next_opening, when_text
from conversations.types import Classification, ConversationState, FlowStart
from tests.conversations.flowkit import (
    CLASSIFY,
    FRIDAY_NIGHT,
    MONDAY_OPEN,
    RX,
    Dialog,
    body,
    facts,
    site,
    therapy,
)

REFILL = FlowStart("refill_reminder", RX)
CHECKIN = FlowStart("side_effect_checkin", RX)


def test_start_needs_a_known_outreach_flow() -> None:
    with pytest.raises(ValueError, match="at least one"):
        engine.start([], facts(), MONDAY_OPEN)
    with pytest.raises(ValueError, match="unknown outreach flow"):
        engine.start([FlowStart("nonsense")], facts(), MONDAY_OPEN)
    with pytest.raises(ValueError, match="unknown outreach flow"):
        engine.start([FlowStart("free_text")], facts(), MONDAY_OPEN)


def test_bundle_is_one_text_and_the_queued_flow_is_asked_when_the_first_ends() -> None:
    dialog = Dialog(facts(site=site(offers_delivery=False)))
    opening = dialog.start(REFILL, CHECKIN)
    assert len(opening.replies) == 1 and opening.replies[0].kind == "outreach"
    assert body(opening).endswith("Then 1 more quick question.")
    assert dialog.state is not None and [q["flow"] for q in dialog.state.context["queue"]] == [
        "side_effect_checkin"
    ]
    refilled = dialog.say("1")
    text = body(refilled)
    assert "ready for pickup" in text
    assert "One more question: Any side effects since your last fill?" in text
    assert refilled.tasks[0].kind == "refill"
    assert dialog.state is not None and dialog.state.flow == "side_effect_checkin"
    assert dialog.state.context["queue"] == []
    assert dialog.say("no").next_state is not None  # the check-in runs on (missed doses)


def test_bundle_queue_survives_intermediate_steps() -> None:
    dialog = Dialog()
    dialog.start(REFILL, CHECKIN)
    dialog.say("1")  # delivery or pickup?
    assert dialog.state is not None and dialog.state.context["queue"][0]["flow"] == "side_effect_checkin"
    done = dialog.say("2")
    assert "One more question:" in body(done)


def test_no_more_questions_after_an_urgent_problem() -> None:
    dialog = Dialog(facts(site=site(offers_delivery=False)))
    dialog.start(REFILL, CHECKIN)
    decision = dialog.say("1 and severe diarrhea")
    assert any(t.priority == 1 for t in decision.tasks)
    assert any(t.kind == "refill" for t in decision.tasks)
    assert "Any side effects" not in body(decision)
    assert decision.next_state is None


def test_emergency_in_a_bundle_closes_everything() -> None:
    dialog = Dialog()
    dialog.start(REFILL, CHECKIN)
    decision = dialog.say("chest pain")
    assert decision.replies[0].kind == "emergency" and decision.next_state is None


def test_timeout_drops_the_queued_flows() -> None:
    dialog = Dialog()
    dialog.start(REFILL, CHECKIN)
    dialog.timeout()  # follow-up keeps the refill question and its queue
    assert dialog.state is not None and dialog.state.context["queue"]
    last = dialog.timeout()
    assert last.next_state is None and not last.replies


def test_clinic_wording_overrides_the_opening_per_language() -> None:
    template = {"en": "{site_name}: {first_name}, time to refill {drug} ({days} days left). Reply 1, 2 or 3."}
    start = FlowStart("refill_reminder", RX, {"days": 5}, template=template)
    english = body(engine.start([start], facts(), MONDAY_OPEN))
    assert (
        english
        == "Lakeside Oncology Pharmacy: Margaret, time to refill your medicine (5 days left). Reply 1, 2 or 3."
    )
    consented = body(engine.start([start], facts(detailed=True), MONDAY_OPEN))
    assert "time to refill capecitabine" in consented
    spanish = body(engine.start([start], facts("es"), MONDAY_OPEN))  # no Spanish wording: built-in Spanish
    assert spanish.startswith("Hola Ana, le escribe Lakeside Oncology Pharmacy.")


def test_clinic_wording_gets_the_pharmacy_name_and_falls_back_when_broken() -> None:
    plain = FlowStart(
        "copay_assistance", RX, {"copay": 300}, template={"en": "Copay help? ${copay}. Reply 1 or 2."}
    )
    assert body(engine.start([plain], facts(), MONDAY_OPEN)) == (
        "Hi Margaret, this is Lakeside Oncology Pharmacy. Copay help? $300. Reply 1 or 2."
    )
    broken = FlowStart("refill_reminder", RX, template={"en": "Hi {nickname}"})
    assert "Reply 1 to refill" in body(engine.start([broken], facts(), MONDAY_OPEN))


def test_first_contact_ends_with_how_to_opt_out() -> None:
    first = FlowStart("refill_reminder", RX, {"first_contact": True})
    assert body(engine.start([first], facts(), MONDAY_OPEN)).endswith("Reply STOP to opt out.")
    assert "STOP" not in body(engine.start([REFILL], facts(), MONDAY_OPEN))


def test_the_classifier_gets_the_open_questions_context() -> None:
    seen: list[str | None] = []

    def recording(text: str, context: str | None = None) -> Classification:
        seen.append(context)
        return CLASSIFY(text, context)

    state = engine.start([CHECKIN], facts(), MONDAY_OPEN).next_state
    decision = engine.handle(state, "diarrhea", facts(), MONDAY_OPEN, classifier=recording)
    engine.handle(decision.next_state, "2", facts(), MONDAY_OPEN, classifier=recording)
    engine.handle(None, "hello", facts(), MONDAY_OPEN, classifier=recording)
    assert seen == ["checkin_open", "checkin_severity", None]


def test_a_symptom_instead_of_an_answer_is_triaged_first_then_the_question_returns() -> None:
    dialog = Dialog(facts(site=site(offers_delivery=False)))
    dialog.start(REFILL)
    asked = dialog.say("I have a rash")  # no grade in the words ("my hands hurt" is moderate: LABELS.md)
    assert "How bad is it" in body(asked)
    assert dialog.state is not None and dialog.state.flow == "free_text"
    graded = dialog.say("1")
    assert graded.signals[0].value["symptom"] == "rash"
    assert "One more question: Time to refill your medicine" in body(graded)
    assert dialog.state is not None and dialog.state.flow == "refill_reminder"
    assert dialog.say("1").tasks[0].kind == "refill"


def test_a_question_inside_a_flow_keeps_the_question_open() -> None:
    dialog = Dialog()
    dialog.start(REFILL)
    opened = dialog.state
    decision = dialog.say("can I take it with food?")
    assert decision.tasks[0].queue == "clinical"
    assert decision.next_state == opened  # not counted as a retry either


def test_unknown_flow_in_state_is_treated_as_no_dialog() -> None:
    stale = ConversationState("retired_flow", "x", {}, MONDAY_OPEN + timedelta(hours=1))
    decision = engine.handle(stale, "banana", facts(), MONDAY_OPEN, classifier=CLASSIFY)
    assert decision.tasks[0].kind == "unrecognized"
    assert engine.on_timeout(stale, facts(), MONDAY_OPEN).next_state is None


def test_states_are_json_safe_and_always_time_out() -> None:
    dialog = Dialog()
    states = [dialog.start(REFILL, CHECKIN, FlowStart("copay_assistance", RX)).next_state]
    for text in ("1", "2", "rash", "2", "3", "1"):
        states.append(dialog.say(text).next_state)
    open_states = [state for state in states if state is not None]
    assert len(open_states) >= 4  # the checks below must see real states, not an empty list
    for state in open_states:
        json.dumps(state.context)
        assert state.expires_at is not None and state.expires_at.tzinfo is not None


def test_naive_now_is_taken_as_utc() -> None:
    decision = engine.start([REFILL], facts(), datetime(2026, 3, 2, 16, 0))
    assert decision.next_state is not None
    assert decision.next_state.expires_at == MONDAY_OPEN + timedelta(hours=24)


def test_multiple_therapies_pick_the_named_prescription() -> None:
    two = facts(
        detailed=True,
        therapies=(therapy(), therapy(prescription_id="rx-2", drug="ibrutinib", expected_days_left=9)),
    )
    text = body(engine.start([FlowStart("refill_reminder", "rx-2")], two, MONDAY_OPEN))
    assert "Time to refill ibrutinib" in text


def test_business_time_in_the_site_zone() -> None:
    chicago = site()
    assert is_open(chicago, MONDAY_OPEN)
    assert not is_open(chicago, FRIDAY_NIGHT)
    opening = next_opening(chicago, FRIDAY_NIGHT)
    assert opening is not None and (opening.weekday(), opening.hour) == (0, 9)
    assert when_text(chicago, opening, FRIDAY_NIGHT, "en") == "on Monday"
    assert when_text(chicago, opening, FRIDAY_NIGHT, "es") == "el lunes"
    four_hours = add_business_hours(chicago, datetime(2026, 3, 2, 21, 0, tzinfo=UTC), 4)  # Mon 15:00 Chicago
    assert four_hours is not None and four_hours.astimezone(UTC) == datetime(2026, 3, 3, 17, 0, tzinfo=UTC)
    # Across the spring DST change (Sunday 8 March 2026): Monday opens at 09:00 CDT = 14:00 UTC.
    after_dst = next_opening(chicago, datetime(2026, 3, 7, 18, 0, tzinfo=UTC))
    assert after_dst is not None and after_dst.astimezone(UTC) == datetime(2026, 3, 9, 14, 0, tzinfo=UTC)
    assert next_opening(site(business_hours=("17:00", "09:00")), MONDAY_OPEN) is None
    assert not is_open(site(time_zone="Mars/Olympus"), datetime(2026, 3, 2, 3, 0, tzinfo=UTC))


def test_conversations_stays_pure() -> None:
    code = (
        "import sys, conversations.engine, conversations.flows, conversations.classify;"
        "bad = [m for m in ('aiohttp', 'sqlalchemy', 'twilio', 'bot', 'scheduler', 'integrations')"
        " if m in sys.modules]; print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("intent", ["confirm", "decline"])
def test_an_unsure_yes_or_no_is_asked_again_then_handed_to_a_person(intent: str) -> None:
    """Below CLARIFY_BELOW a yes/no moves nothing: one clarifying re-ask, then a task for a person."""

    def unsure(text: str, context: str | None) -> Classification:
        return Classification(text=text, intent=intent, confidence=engine.CLARIFY_BELOW - 0.01)

    start = engine.start([REFILL], facts(), MONDAY_OPEN)
    assert start.next_state is not None
    again = engine.handle(start.next_state, "yeah i guess", facts(), MONDAY_OPEN, unsure)
    assert not again.tasks and not again.signals and again.next_state is not None
    assert again.next_state.state == start.next_state.state
    person = engine.handle(again.next_state, "yeah i guess", facts(), MONDAY_OPEN, unsure)
    assert [t.kind for t in person.tasks] == ["unrecognized_reply"] and not person.signals
    assert person.next_state is None


def test_a_sure_yes_is_taken() -> None:
    def sure(text: str, context: str | None) -> Classification:
        return Classification(text=text, intent="confirm", confidence=engine.CLARIFY_BELOW)

    start = engine.start([REFILL], facts(site=site(offers_delivery=False)), MONDAY_OPEN)
    done = engine.handle(start.next_state, "yes", facts(site=site(offers_delivery=False)), MONDAY_OPEN, sure)
    assert [s.kind for s in done.signals] == ["refill_confirmed"]
