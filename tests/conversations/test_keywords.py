"""Consent keywords: carrier words, natural-language revocation, clinical "stop", ambiguity, opt-in and help."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conversations.keywords import consent_action, is_opt_in_word

ROOT = Path(__file__).resolve().parents[2]
LABELLED = [
    ROOT.parent / "shared" / "data" / "intents_dev.jsonl",
    ROOT / "tests/conversations/data/intents_extra.jsonl",
]


@pytest.fixture(scope="module")
def labelled_sets() -> list[dict[str, object]]:
    """The labelled records of the shared dev set (when present) and of the project's own set."""
    rows: list[dict[str, object]] = []
    for path in LABELLED:
        if path.exists():
            rows += [
                json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
            ]
    return rows


OPT_OUT = [
    # "didn't mean to" about something else: the stop stands
    "i didnt mean to be rude but dont text me again",
    "sorry didnt mean to yell, just stop texting me again",
    "accidentally got these, stop sending them again",
    "STOP",
    "stop",
    "Stop.",
    "STOP!!",
    "  stop  ",
    "stop 🛑",
    "🛑",
    "Stop please",
    "please stop",
    "STOPALL",
    "stop all",
    "UNSUBSCRIBE",
    "unsubscribe me",
    "CANCEL",
    "END",
    "quit",
    "revoke",
    "OPTOUT",
    "opt out",
    "opt-out",
    "ALTO",
    "alto por favor",
    "PARAR",
    "detener",
    "CANCELAR",
    "BAJA",
    "darme de baja",
    "stop texting me",
    "please unsubscribe me",
    "no more messages",
    "take me off this list",
    "please take my number off your texting list",
    "remove my number",
    "I don't want these messages anymore",
    "do not text me again",
    "stop sending me reminders",
    "leave me alone, stop sending these",
    "wrong number, stop texting",
    "I am done with these reminders. Stop.",
    "no me manden más mensajes",
    "no me envíen más textos",
    "ya no quiero recibir mensajes",
    "dejen de escribirme",
    "por favor quiten mi número",
    "alto, no más textos",
    "stop all texts from the refill program",
    "unsubscribe me from the refill reminder texts",
]

NOT_CONSENT = [
    "I had to stop taking it because of the rash",
    "can I quit the blood thinner before surgery?",
    "cancel my refill",
    "the pain won't end",
    "the nausea won't quit",
    "my diarrhea won't stop",
    "I quit coffee, does that matter with this pill",
    "end of the month works better for delivery",
    "I want to stop this medicine",
    "can I stop taking it if I feel nauseous?",
    "alto costo, no puedo pagar",
    "dejé de tomarla por el sarpullido",
    "I stopped by yesterday but you were closed",
    "the game starts at 7",
    "when should I start the new bottle?",
    "help me I can't breathe",
    "please don't send me the refill yet",
    "stop sending the medicine to my old address",
    "take me off the auto refill",
    "unsubscribe me from auto refill",
    "no more refills needed",
    "no more diarrhea",
    "alto riesgo",
    "paren de mandarme la medicina",
    "ya no me manden la medicina",
    "please make it stop",
    "stop by tomorrow for pickup",
    "yes",
    "",
    "   ",
]


@pytest.mark.parametrize("text", OPT_OUT)
def test_opt_out_keywords_and_revocation(text: str) -> None:
    assert consent_action(text) == "opt_out"


@pytest.mark.parametrize("text", NOT_CONSENT)
def test_clinical_and_other_uses_are_not_consent(text: str) -> None:
    assert consent_action(text) is None


@pytest.mark.parametrize("text", ["stop?", "Stop it", "cancel it", "can I stop?", "para"])
def test_short_stop_like_messages_are_ambiguous(text: str) -> None:
    assert consent_action(text) == "ambiguous"


@pytest.mark.parametrize(
    "text",
    [
        "START",
        "start",
        "Unstop",
        "UNSTOP!",
        "resume messages",
        "start texting me again please",
        "please turn my reminders back on",
        "quiero volver a recibir mensajes",
        # the stop itself was the mistake
        "my wife unsubscribed me by mistake, please turn the texts back on",
        "oops didn't mean to unsubscribe, please resume",
        "texted STOP by accident",
        "me equivoqué al poner stop, sigan mandándome",
        "COMENZAR",
        "iniciar",
    ],
)
def test_opt_in(text: str) -> None:
    assert consent_action(text) == "opt_in"
    assert is_opt_in_word(text, opted_out=True)


@pytest.mark.parametrize("text", ["YES", "yes", "Sí", "si", "y"])
def test_yes_opts_in_only_when_opted_out(text: str) -> None:
    assert consent_action(text, opted_out=True) == "opt_in"
    assert consent_action(text, opted_out=False) is None
    assert not is_opt_in_word(text, opted_out=False)


@pytest.mark.parametrize("text", ["HELP", "help", "Help?", "INFO", "info please", "AYUDA", "ayuda por favor"])
def test_help(text: str) -> None:
    assert consent_action(text) == "help"


def test_none_body_is_nothing() -> None:
    assert consent_action(None) is None
    assert consent_action(None, opted_out=True) is None


def test_opt_out_recall_on_the_labelled_sets(labelled_sets: list[dict[str, object]]) -> None:
    """Every opt-out of the labelled sets is caught as consent (or at worst asked about), no false ones."""
    opt_outs = [r for r in labelled_sets if r["intent"] == "opt_out"]
    others = [r for r in labelled_sets if r["intent"] not in ("opt_out", "emergency")]
    caught = [r for r in opt_outs if consent_action(str(r["text"])) in ("opt_out", "ambiguous")]
    false = [r["text"] for r in others if consent_action(str(r["text"])) == "opt_out"]
    assert len(caught) / len(opt_outs) >= 0.98
    assert not false
