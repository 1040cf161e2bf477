"""New-start flow: welcome, how to reach the pharmacy, the one detailed-messages question."""

from __future__ import annotations

from datetime import timedelta

from conversations.types import FlowStart
from tests.conversations.flowkit import RX, Dialog, body, facts, segments

NEW = FlowStart("new_start", RX)


def test_welcome_names_the_pharmacy_its_phone_asks_consent_and_says_how_to_stop() -> None:
    dialog = Dialog()
    decision = dialog.start(NEW)
    text = body(decision)
    assert text.startswith("Welcome to Lakeside Oncology Pharmacy, Margaret!")
    assert "+13125550100" in text
    assert "Reply YES if we may name your medicine in texts, NO to keep texts general." in text
    assert text.endswith("Reply STOP to opt out.")
    assert segments(text) == ("GSM-7", 2)
    assert dialog.state is not None and dialog.state.context["ask"] == "yes_no"
    assert dialog.state.expires_at == dialog.now + timedelta(hours=72)


def test_yes_and_no_set_detailed_consent() -> None:
    yes = Dialog()
    yes.start(NEW)
    decision = yes.say("yes")
    assert decision.consent == "detailed_yes"
    assert "We will name your medicine" in body(decision)
    assert decision.next_state is None
    no = Dialog()
    no.start(NEW)
    assert no.say("no").consent == "detailed_no"


def test_unexpected_answer_asks_the_question_again() -> None:
    dialog = Dialog()
    dialog.start(NEW)
    again = dialog.say("banana")
    assert again.consent is None
    assert "Reply YES if we may name your medicine" in body(again)
    assert dialog.say("yes").consent == "detailed_yes"


def test_no_answer_keeps_texts_general_and_does_not_ask_again() -> None:
    dialog = Dialog()
    dialog.start(NEW)
    done = dialog.timeout()
    assert done.consent is None and not done.replies and done.next_state is None


def test_already_consented_gets_only_the_welcome_and_replies_are_free_text() -> None:
    dialog = Dialog(facts(detailed=True))
    text = body(dialog.start(NEW))
    assert "name your medicine" not in text
    assert dialog.state is not None and dialog.state.state == "welcomed"
    answer = dialog.say("can I take it with food?")
    assert [(t.queue, t.kind) for t in answer.tasks] == [("clinical", "question")]
    assert answer.next_state is None


def test_spanish_welcome_and_si() -> None:
    dialog = Dialog(facts("es"))
    text = body(dialog.start(NEW))
    assert text.startswith("Bienvenido a Lakeside Oncology Pharmacy.")
    assert "¿Podemos nombrar su medicamento en los mensajes? Responda SI o NO." in text
    assert "responda STOP" in text
    decision = dialog.say("sí")
    assert decision.consent == "detailed_yes"
    assert body(decision) == "Gracias. Nombraremos su medicamento en los mensajes."
