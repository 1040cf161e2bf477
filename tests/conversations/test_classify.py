"""The intent classifier: targets on the labelled sets, contexts, safety rules, negation, values, languages."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from conversations.classify import classify
from conversations.evaluate import evaluate_records, load_records
from conversations.types import INTENTS, SEVERITIES

ROOT = Path(__file__).resolve().parents[2]
DEV = ROOT.parent / "shared" / "data" / "intents_dev.jsonl"
EXTRA = ROOT / "tests" / "conversations" / "data" / "intents_extra.jsonl"


def _check_targets(path: Path) -> None:
    report = evaluate_records(load_records(path))
    failures = "\n".join(f"{e['expected']} -> {e['got']}: {e['text']}" for e in report.errors)
    assert report.accuracy is not None and report.accuracy >= 0.95, failures
    assert report.emergency_recall == 1.0, failures
    assert report.opt_out_precision is not None and report.opt_out_precision >= 0.99, failures
    assert report.opt_out_recall is not None and report.opt_out_recall >= 0.98, failures
    assert report.side_effect_recall is not None and report.side_effect_recall >= 0.97, failures


@pytest.mark.skipif(not DEV.exists(), reason=f"the shared dev set is absent ({DEV})")
def test_targets_on_the_shared_dev_set() -> None:
    _check_targets(DEV)


def test_targets_on_the_projects_own_held_out_set() -> None:
    records = load_records(EXTRA)
    assert len(records) >= 150
    assert {r["lang"] for r in records} == {"en", "es"}
    _check_targets(EXTRA)


HOLDOUTS = sorted((ROOT / "tests" / "conversations" / "data").glob("intents_holdout_*.jsonl"))


def test_the_held_out_batches_are_there() -> None:
    assert len(HOLDOUTS) >= 8
    records = [r for path in HOLDOUTS for r in load_records(path)]
    assert len(records) >= 700
    assert {r["lang"] for r in records} == {"en", "es"}
    assert sum(1 for r in records if r["intent"] == "emergency") >= 100


@pytest.mark.parametrize("path", HOLDOUTS, ids=[p.stem for p in HOLDOUTS])
def test_targets_on_each_held_out_batch(path: Path) -> None:
    """Batches written before the classifier saw them (HOLDOUT_LOG.md has their first-run figures)."""
    _check_targets(path)


EMERGENCY_BATCHES = sorted((ROOT / "tests" / "conversations" / "data").glob("intents_emergency_*.jsonl"))


def test_the_emergency_batches_are_there() -> None:
    assert len(EMERGENCY_BATCHES) >= 3
    records = [r for path in EMERGENCY_BATCHES for r in load_records(path)]
    assert len(records) >= 170
    assert {r["lang"] for r in records} == {"en", "es"}
    emergencies = sum(1 for r in records if r["intent"] == "emergency")
    assert 0.4 <= emergencies / len(records) <= 0.7  # emergency-heavy, with near misses beside them


@pytest.mark.parametrize("path", EMERGENCY_BATCHES, ids=[p.stem for p in EMERGENCY_BATCHES])
def test_targets_on_each_emergency_batch(path: Path) -> None:
    """Emergency-heavy batches (HOLDOUT_LOG.md): every emergency caught, near misses left alone."""
    report = evaluate_records(load_records(path))
    failures = "\n".join(f"{e['expected']} -> {e['got']}: {e['text']}" for e in report.errors)
    assert report.emergency_recall == 1.0, failures
    assert report.accuracy is not None and report.accuracy >= 0.95, failures
    assert report.opt_out_precision in (None, 1.0), failures  # most batches hold no opt-out at all
    assert report.side_effect_recall is not None and report.side_effect_recall >= 0.97, failures


@pytest.mark.parametrize(
    "text",
    [
        # a body part or system and an alarm cue, in either order, with words between
        "he is really hard to wake up",
        "coughed up a whole bunch of blood",
        "her tongue got so thick",
        "throwing up dark brown stuff again",
        "his arm and leg on the left side wont work",
        "se le está hinchando la boca",
        "le sangra la nariz y no se le para",
        "no le alcanza el aire",
        # negation that is the alarm itself
        "not breathing well",
        "his breathing isnt good",
        "she doesnt respond when i call her",
        # indirect self-harm, overdose and falls
        "ya no aguanto, quiero desaparecer",
        "what's even the point of living like this",
        "took extra pills on purpose",
        "my mom fell down the stairs and isnt moving",
        "running 101 since last night",
    ],
)
def test_emergency_concepts(text: str) -> None:
    assert classify(text).intent == "emergency"


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("no chest pain", "ack"),
        ("my stool has no blood in it", "unknown"),
        ("I have a blood test tomorrow, do I take my pill first?", "question"),
        ("my gums bleed a little when I brush", "side_effect"),
        ("need a refill on my breathing treatment too", "refill_request"),
        ("I feel faint-hearted about starting this, can someone call me", "call_request"),
        ("this copay is killing me", "cost_concern"),
        ("the price of this med is giving me a heart attack lol", "cost_concern"),
        ("ya no aguanto el dolor de manos", "side_effect"),
        ("cant stand this nausea", "side_effect"),
    ],
)
def test_near_misses_are_not_emergencies(text: str, intent: str) -> None:
    assert classify(text).intent == intent


@pytest.mark.parametrize(
    ("text", "context", "intent"),
    [
        # a reading in the fever range is a temperature even unnamed; a price or a dose is not
        ("running 100.6 since lunch", None, "emergency"),
        ("39.2 this morning", None, "emergency"),
        ("it was $100.5 last time", None, "cost_concern"),
        ("took 100.5 mg", None, "unknown"),
        # Spanish diminutives and words that are something else in another sense
        ("tengo llaguitas en la lengua", None, "side_effect"),
        ("tengo la cara llena de granos", None, "side_effect"),
        ("está muy cara la medicina", None, "cost_concern"),
        # a sentence opened by an accented question word asks, with or without "?"
        ("qué efectos tiene la pastilla", None, "question"),
        # opt-out scoped to a medicine no longer taken is a declined refill, not a revocation
        ("stop the reminders for my old med", None, "decline"),
        ("stop the reminders", None, "opt_out"),
        ("this is harassment stop", None, "opt_out"),
        ("I dont want to get these anymore", None, "opt_out"),
        # a dosing question stays a question when a trip or a day is named
        ("can i stop the pills for a week while im on vacation?", None, "question"),
        ("can you deliver it on the 3rd instead", None, "reschedule"),
        ("can you call me after 2", None, "call_request"),
        ("I need to cancel my appointment for friday", None, "reschedule"),
        # "si" without its accent is "yes" before polite words, "if" otherwise
        ("si por favor necesito ayuda", "copay_offer", "confirm"),
        ("si no mejora les aviso", "yes_no", "unknown"),
        # negated severity words do not grade a symptom up
        ("un poco de diarrea pero nada grave", "checkin_open", "side_effect"),
        ("Thumbs up", None, "ack"),
    ],
)
def test_generalisation_fixes(text: str, context: str | None, intent: str) -> None:
    assert classify(text, context).intent == intent


def test_negated_severity_word_does_not_count() -> None:
    assert classify("un poco de diarrea pero nada grave", "checkin_open").severity == "mild"


@pytest.mark.parametrize(
    "text",
    [
        "i feel like im dying",
        "she cant stay awake and shes breathing slow",
        "hes talking nonsense and doesnt know what day it is",
        "pooping black tar looking stuff",
        "swallowed the whole bottle",
        "theres a lot of blood in the toilet after i went",
        "se le está hinchando la boca después de la pastilla",
        "mi papá se puso pálido y se cayó, no contesta",
        "having trouble breeding since last night",
        "my kid swallowed some of my pills",
        "he's turning blue",
        "can't lift my arm",
    ],
)
def test_vague_emergencies(text: str) -> None:
    assert classify(text).intent == "emergency"


@pytest.mark.parametrize(
    ("text", "context", "intent", "severity"),
    [
        ("1", "refill_reminder", "confirm", None),
        ("2", "refill_reminder", "decline", None),
        ("3", "refill_reminder", "call_request", None),
        ("dos", "refill_reminder", "decline", None),
        ("5", "refill_reminder", "unknown", None),
        ("1", "copay_offer", "confirm", None),
        ("2", "copay_offer", "decline", None),
        ("yes", "yes_no", "confirm", None),
        ("no", "yes_no", "decline", None),
        ("sí", "yes_no", "confirm", None),
        ("nope", "yes_no", "decline", None),
        ("👍", "yes_no", "confirm", None),
        ("no", "checkin_open", "decline", None),
        ("nothing", "checkin_open", "decline", None),
        ("all good", "checkin_open", "decline", None),
        ("some nausea", "checkin_open", "side_effect", None),
        ("0", "checkin_severity", "side_effect", "none"),
        ("1", "checkin_severity", "side_effect", "mild"),
        ("2", "checkin_severity", "side_effect", "moderate"),
        ("3", "checkin_severity", "side_effect", "severe"),
        ("4", "checkin_severity", "side_effect", "very_severe"),
        ("mild", "checkin_severity", "side_effect", "mild"),
        ("pretty bad", "checkin_severity", "side_effect", "moderate"),
        ("terrible", "checkin_severity", "side_effect", "severe"),
        ("leve", "checkin_severity", "side_effect", "mild"),
        ("fuerte", "checkin_severity", "side_effect", "moderate"),  # LABELS.md: "fuerte" is moderate
        ("muy fuerte", "checkin_severity", "side_effect", "severe"),
        ("2", "missed_doses", "missed_dose", None),
        ("none", "missed_doses", "missed_dose", None),
        ("7", None, "unknown", None),
    ],
)
def test_contexts_turn_bare_answers_into_labels(
    text: str, context: str, intent: str, severity: str | None
) -> None:
    result = classify(text, context)
    assert result.intent == intent
    assert result.severity == severity


@pytest.mark.parametrize(
    ("text", "count"), [("2", 2), ("three", 3), ("a couple", 2), ("ninguna", 0), ("uno", 1)]
)
def test_missed_doses_answer_gives_the_count(text: str, count: int) -> None:
    result = classify(text, "missed_doses")
    assert result.intent == "missed_dose"
    assert result.values["missed_doses"] == count


@pytest.mark.parametrize(
    ("text", "context"),
    [
        ("2 but I also threw up blood", "refill_reminder"),
        ("yes but I feel like I'm going to pass out", "yes_no"),
        ("chest pain", "checkin_severity"),
        ("I can't breathe", "missed_doses"),
        ("dolor de pecho", "copay_offer"),
        ("fiebre de 39", None),
        ("no puedo respirar", None),
        ("me desmayé", None),
        ("sangrado que no para", None),
        ("quiero morir", None),
        ("my lips and tongue are swelling", None),
        ("he is confused and slurring", None),
        ("I took too many pills on purpose", None),
        ("had a seizure", None),
        ("my stool is black", None),
        ("fever and chills", None),
    ],
)
def test_red_flags_are_emergencies_in_any_context(text: str, context: str | None) -> None:
    assert classify(text, context).intent == "emergency"


@pytest.mark.parametrize(
    ("text", "emergency", "fahrenheit"),
    [
        ("fever of 38.4 since this afternoon", True, 101.1),
        ("temp 100.4", True, 100.4),
        ("temperature is 100.2", False, 100.2),
        ("99.1 temp this morning", False, 99.1),
        ("tengo 37.5 de temperatura", False, 99.5),
        ("mi esposo tiene 102 de fiebre", True, 102.0),
    ],
)
def test_fever_is_judged_on_the_number(text: str, emergency: bool, fahrenheit: float) -> None:
    result = classify(text)
    assert (result.intent == "emergency") is emergency
    assert result.values["temperature_f"] == fahrenheit


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("no chest pain or fever, just really tired", "side_effect"),
        ("no nausea, no diarrhea, all good", "ack"),
        ("sin dolor", "ack"),
        ("I'm not short of breath, just tired", "side_effect"),
        ("I'm confused about when to take the second pill", "question"),
        ("what should I do if I throw up after a dose?", "question"),
        ("¿qué hago si vomito después de tomarla?", "question"),
        ("what happens if I miss a dose?", "question"),
    ],
)
def test_negation_and_hypotheticals_do_not_raise_labels(text: str, intent: str) -> None:
    assert classify(text).intent == intent


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("stop texting me", "opt_out"),
        ("please unsubscribe me", "opt_out"),
        ("no me manden más mensajes", "opt_out"),
        ("I had to stop taking it because of the rash", "side_effect"),
        ("can I quit the blood thinner before surgery?", "question"),
        ("cancel my refill", "decline"),
        ("the pain won't end", "side_effect"),
        ("START", "opt_in"),
        ("HELP", "help"),
        ("AYUDA", "help"),
    ],
)
def test_opt_out_versus_clinical_stop(text: str, intent: str) -> None:
    assert classify(text).intent == intent


def test_a_pill_count_is_not_a_temperature() -> None:
    result = classify("tengo 38 pastillas, I have 38 pills left")
    assert result.intent != "emergency"
    assert "temperature_f" not in result.values
    assert result.values["days_left"] == 38


def test_several_labels_primary_by_order() -> None:
    result = classify("yes refill it but the rash is worse", "yes_no")
    assert result.intent == "side_effect"
    assert "confirm" in result.also
    assert "rash" in result.symptoms
    assert result.labels == (result.intent, *result.also)


@pytest.mark.parametrize(
    ("text", "severity"),
    [
        ("a little nausea", "mild"),
        ("mild rash on my chest", "mild"),
        ("moderate cough", "moderate"),
        ("severe headache", "severe"),
        ("the diarrhea is really bad", "severe"),
        ("mouth sores, I can't eat", "severe"),
        ("worst pain ever in my feet", "very_severe"),
        ("unbearable cramps", "very_severe"),
        ("la diarrea es muy fuerte", "severe"),
        ("just some nausea", None),
    ],
)
def test_stated_severity(text: str, severity: str | None) -> None:
    result = classify(text)
    assert result.intent == "side_effect"
    assert result.severity == severity


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        ("I missed 2 doses this week", "missed_doses", 2),
        ("olvidé dos dosis esta semana", "missed_doses", 2),
        ("I have 10 pills left", "days_left", 10),
        ("about a week left", "days_left", 7),
        ("I still have ten left", "days_left", 10),
        ("todavía me quedan como diez", "days_left", 10),
        ("me quedan como diez, gracias", "days_left", 10),
        ("$850 is way too much", "amount", 850.0),
        ("I owe 1,200 dollars", "amount", 1200.0),
        ("can you deliver next tuesday", "date", "2025-03-11"),
        ("deliver on 12/3 please", "date", "2025-12-03"),
        ("recuérdenme mañana", "date", "2025-03-07"),
        ("temp 38.4 C", "temperature_f", 101.1),
        ("1 please", "choice", 1),
    ],
)
def test_values(text: str, key: str, value: object) -> None:
    result = classify(text, None, today=date(2025, 3, 6))  # a Thursday
    assert result.values[key] == value


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("refil plz", "refill_request"),
        ("please refil my perscription", "refill_request"),
        ("I need more capecitibine", "refill_request"),
        ("diarhea again", "side_effect"),
        ("nausia is bad today", "side_effect"),
        ("yesss", "confirm"),
        ("thx!", "ack"),
        ("🙏", "ack"),
    ],
)
def test_typos_shorthand_and_emoji(text: str, intent: str) -> None:
    assert classify(text, "yes_no" if text == "yesss" else None).intent == intent


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("I need a refill", "en"),
        ("necesito surtir mi receta", "es"),
        ("sí", "es"),
        ("ok gracias", "es"),
        ("ok", "en"),
    ],
)
def test_language(text: str, language: str) -> None:
    assert classify(text).language == language


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "\n",
        "😀",
        "?!?!",
        "x" * 5000,
        "1" * 400,
        "\u0000\u200b",
        "$$$",
        "🤮🤮 🤢",
        "a/b/c/d",
        "1/1/1",
    ],
)
def test_any_text_gets_a_valid_classification(text: str) -> None:
    result = classify(text, "checkin_severity")
    assert result.intent in INTENTS
    assert set(result.also) <= INTENTS
    assert result.severity is None or result.severity in SEVERITIES
    assert 0.0 <= result.confidence <= 1.0
    assert result.language in ("en", "es")
    assert result.text == text


def test_unknown_context_is_ignored() -> None:
    assert classify("1", "no_such_context").intent == "unknown"
    assert classify("1", "no_such_context").values["choice"] == 1


def test_confidence_ranks_clear_answers_above_gibberish() -> None:
    assert classify("1", "refill_reminder").confidence > classify("asdfgh").confidence


@pytest.mark.parametrize(
    ("text", "context", "intent"),
    [
        ("Liked “Your refill is ready”", None, "ack"),
        ('Disliked "Reply 1 to refill"', "refill_reminder", "decline"),
        ("the nausea is better now", None, "ack"),
        ("rash is gone", "checkin_open", "decline"),
        ("hiccups that won't go away", None, "side_effect"),
        ("no rash no fever no nothing", "checkin_open", "decline"),
        ("I'm not taking it anymore, doctor switched me to something else", None, "decline"),
        ("can you stop my auto refill", None, "decline"),
        ("take me off the auto refill", None, "decline"),
        ("I have about 20 left", "refill_reminder", "decline"),
        ("only 3 pills left", "refill_reminder", "confirm"),
        ("do the refill", "refill_reminder", "confirm"),
        ("Ok, thanks for letting me know", None, "ack"),
        ("ok", "yes_no", "confirm"),
        ("Not sure yet", "yes_no", "unknown"),
        ("I'm tired of waiting for my refill, where is it?", None, "refill_request"),
        ("My grandson is visiting this weekend", None, "unknown"),
        ("no I have a copay card already", "copay_offer", "decline"),
        ("STOP 2", "refill_reminder", "opt_out"),
        ("no más", "checkin_open", "decline"),
    ],
)
def test_reactions_resolutions_and_requests(text: str, context: str | None, intent: str) -> None:
    assert classify(text, context).intent == intent


def test_symptoms_are_canonical_names() -> None:
    result = classify("I have diarhea and my hands are peeling, also a fever of 101")
    assert result.intent == "emergency"
    assert {"diarrhea", "hand_foot", "fever"} <= set(result.symptoms)
    assert classify("ya no quiero vivir").also == ()  # self-harm is not a side effect of the drug
