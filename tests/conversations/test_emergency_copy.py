"""DOMAIN's two emergency groups in the patient's words: fever or chills alone → call the clinic now, at its
after-hours number; chest pain, trouble breathing, self-harm (and anything with them) → 911."""

from __future__ import annotations

import pytest

from integrations.twilio.segments import is_gsm7
from tests.conversations.flowkit import Dialog, body, facts, site

AFTER_HOURS = "+13125550199"


@pytest.mark.parametrize(
    ("language", "text"),
    [("en", "I have a fever of 101.2 and chills"), ("es", "tengo fiebre de 39 y escalofrios")],
)
def test_fever_alone_says_call_the_clinic_now_at_its_after_hours_number(language: str, text: str) -> None:
    decision = Dialog(facts(language, site=site(after_hours_phone=AFTER_HOURS))).say(text)
    said = body(decision)
    assert decision.replies[0].kind == "emergency"
    assert AFTER_HOURS in said and ("call 911 or go to" not in said and "Llame al 911 o vaya" not in said)
    assert [(t.queue, t.priority) for t in decision.tasks] == [("urgent_clinical", 1)]


def test_without_an_after_hours_number_the_site_phone_is_given() -> None:
    said = body(Dialog().say("fever 102 since last night"))
    assert "+13125550100" in said and "day or night" in said


@pytest.mark.parametrize(
    "text", ["I have chest pain", "fever of 102 and I can't breathe", "I want to hurt myself, I have a fever"]
)
def test_the_911_group_still_says_911(text: str) -> None:
    said = body(Dialog(facts(site=site(after_hours_phone=AFTER_HOURS))).say(text))
    assert "Please call 911 or go to the nearest ER now" in said and AFTER_HOURS not in said


def test_the_english_call_clinic_text_stays_gsm7() -> None:
    said = body(Dialog(facts(site=site(after_hours_phone=AFTER_HOURS))).say("fever 101"))
    assert is_gsm7(said)
