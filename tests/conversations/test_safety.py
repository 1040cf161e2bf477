"""Dialog-level safety, severity from counts and function, and scoped opt-outs."""

from __future__ import annotations

import pytest

from conversations.classify import classify
from conversations.flows.safety import guard
from conversations.normalize import normalize
from conversations.severity import count_severity, function_severity
from conversations.types import Classification


@pytest.mark.parametrize(
    ("text", "context"),
    [
        ("no quiero el refill", "refill_reminder"),
        ("no quiero que me la manden", "yes_no"),
        ("ok but don't send it, I still have plenty", "yes_no"),
        ("no thanks", "copay_offer"),
    ],
)
def test_a_refused_answer_is_never_a_confirm(text: str, context: str) -> None:
    result = classify(text, context)
    assert "confirm" not in result.labels
    assert result.intent != "opt_in"


def test_guard_turns_a_confirm_with_a_refusal_into_a_decline() -> None:
    cls = Classification(text="si, no quiero el refill", intent="confirm")
    assert guard(cls, "refill_reminder").intent == "decline"


@pytest.mark.parametrize(
    ("text", "context"),
    [
        ("1 but stop texting me", "refill_reminder"),
        ("yes, but don't send me any more texts", "yes_no"),
        ("si pero ya no me manden mensajes", "refill_reminder"),
        ("ok. no more messages please", "copay_offer"),
    ],
)
def test_an_opt_out_inside_an_answer_wins(text: str, context: str) -> None:
    assert classify(text, context).intent == "opt_out"


def test_an_emergency_inside_an_answer_wins() -> None:
    assert classify("1, also my chest hurts and I can't breathe", "refill_reminder").intent == "emergency"


@pytest.mark.parametrize(
    "text",
    [
        "should I stop taking it?",
        "can I skip tonight's dose?",
        "¿puedo dejar de tomarla mientras tomo antibiótico?",
    ],
)
def test_a_question_about_stopping_a_medicine_is_a_question(text: str) -> None:
    result = classify(text, "checkin_open")
    assert result.intent == "question"
    assert "side_effect" not in result.labels and "opt_out" not in result.labels


@pytest.mark.parametrize(
    "text",
    [
        "no, I was asking about the copay",
        "no, I was just asking if diarrhea is normal",
        "no, solo preguntaba",
    ],
)
def test_a_denial_records_no_symptom(text: str) -> None:
    result = classify(text, "checkin_open")
    assert "side_effect" not in result.labels
    assert result.symptoms == ()


@pytest.mark.parametrize(
    "text", ["you can text me again", "ya pueden escribirme otra vez", "I want my refill reminders back"]
)
def test_an_opt_in_in_words(text: str) -> None:
    assert classify(text).intent == "opt_in"


@pytest.mark.parametrize(
    "text", ["don't stop the reminders, they help me", "if you text me again I'm blocking this number"]
)
def test_stop_look_alikes(text: str) -> None:
    result = classify(text)
    assert result.intent != "opt_in"
    if text.startswith("don't"):
        assert result.intent != "opt_out"


def test_a_scoped_opt_out_keeps_its_label_and_names_the_program() -> None:
    result = classify("stop sending me the copay stuff")
    assert result.intent == "opt_out"
    assert result.values["optout_scope"] == "copay_assistance"
    assert "optout_scope" not in classify("STOP").values
    assert "optout_scope" not in classify("stop all texts about the copay").values


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("diarrhea 7 times today", "severe"),
        ("diarrhea 5 times since breakfast", "moderate"),
        ("loose stools twice", "mild"),
        ("the runs, 2 times", "mild"),
        ("threw up 3 times last night", "moderate"),
        ("vomited 6 times in 24 hours", "severe"),
        ("vomité dos veces", "mild"),
        ("fui al baño 8 veces con diarrea", "severe"),
        ("took 2 pills", None),
    ],
)
def test_severity_from_ctcae_counts(text: str, level: str | None) -> None:
    assert count_severity(normalize(text)) == level


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("mouth sores, I can't eat", "severe"),
        ("no puedo comer por las llagas", "severe"),
        ("in bed all day with fatigue", "severe"),
        ("my hands hurt to open jars", "moderate"),
        ("my hands are a bit red", None),
    ],
)
def test_severity_from_function(text: str, level: str | None) -> None:
    assert function_severity(normalize(text)) == level


def test_severity_reaches_the_classification() -> None:
    result = classify("diarrhea 7 times today")
    assert result.intent == "side_effect" and result.severity == "severe"
    assert classify("no puedo comer, tengo llagas en la boca").severity == "severe"


@pytest.mark.parametrize(
    ("text", "reading", "emergency"),
    [
        ("temp is a hundred and two", 102.0, True),
        ("her temperature is one oh one point five", 101.5, True),
        ("my temperature was ninety nine point five", 99.5, False),
        ("treinta y ocho y medio de temperatura", 101.3, True),
        ("tiene treinta y siete de temperatura", 98.6, False),
        ("cuarenta grados de calentura", 104.0, True),
    ],
)
def test_a_temperature_said_in_words_is_read_against_the_threshold(
    text: str, reading: float, emergency: bool
) -> None:
    result = classify(text, "checkin_open")
    assert result.values.get("temperature_f") == reading
    assert (result.intent == "emergency") is emergency


@pytest.mark.parametrize(
    ("word", "plain"), [("bomite", "vomite"), ("bomitando", "vomitando"), ("ospital", "hospital")]
)
def test_spanish_sound_alike_spellings_are_read_as_the_plain_word(word: str, plain: str) -> None:
    from conversations.normalize import fix_word

    assert fix_word(word) == plain


def test_phonetic_vomiting_blood_is_an_emergency() -> None:
    assert classify("bomite sangre hace rato").intent == "emergency"
