"""Consent keywords, checked by the SMS channel before any other logic: STOP, START, HELP and their kin.

Exact carrier keywords (Twilio's STOP/STOPALL/UNSUBSCRIBE/CANCEL/END/QUIT, START/UNSTOP, HELP/INFO, the
newer REVOKE/OPTOUT and Spanish ALTO/PARAR/BAJA/AYUDA...) count in any case, with stray punctuation, emoji
and polite words around them. Natural-language revocation ("stop texting me", "no me manden más mensajes")
counts as an opt-out too (FCC 2024: any reasonable means). A stop-like word in a clinical sense ("I had to
stop taking it", "can I quit the blood thinner?") is not consent: the conversation gets it. A short message
that could be either ("stop?", "stop it", "cancel it") is "ambiguous": the channel asks once.
"""

from __future__ import annotations

import logging
from typing import Literal

from conversations.lexicons.optout import (
    AMBIGUOUS_COMPANIONS,
    AMBIGUOUS_STARTS,
    CHANGED_MIND_PATTERN,
    CLINICAL_PATTERNS,
    FILLER_WORDS,
    HELP_KEYWORDS,
    KEEP_TEXTS_PATTERN,
    OPT_IN_KEYWORDS,
    OPT_IN_PATTERNS,
    OPT_IN_WHEN_OPTED_OUT,
    OPT_OUT_EXCLUSIONS,
    OPT_OUT_KEYWORDS,
    OPT_OUT_PATTERNS,
    OPT_OUT_SCOPED,
    TAKE_BACK_PATTERN,
)
from conversations.normalize import Lexicon, Normalized, WordPattern, normalize

__all__ = [
    "ConsentAction",
    "consent_action",
    "consent_action_of",
    "is_clinical",
    "is_opt_in_word",
    "is_opt_out_phrase",
    "wants_texts",
]

_LOGGER = logging.getLogger(__name__)

ConsentAction = Literal["opt_out", "opt_in", "help", "ambiguous"]

_OPT_OUT = Lexicon(("opt_out", p) for p in OPT_OUT_PATTERNS)
_OPT_IN = Lexicon(("opt_in", p) for p in OPT_IN_PATTERNS)
_CLINICAL = Lexicon(("clinical", p) for p in CLINICAL_PATTERNS)
# WordPatterns: searched only from a word where a match can start (conversations.normalize).
_NOT_ABOUT_TEXTS = WordPattern("|".join(OPT_OUT_EXCLUSIONS))
_SCOPED = WordPattern(OPT_OUT_SCOPED)
_KEEP_TEXTS = WordPattern(KEEP_TEXTS_PATTERN)
_TAKE_BACK = WordPattern(TAKE_BACK_PATTERN)
_CHANGED_MIND = WordPattern(CHANGED_MIND_PATTERN)
_ABOUT_TEXTS = WordPattern(
    r"\b(?:text|texts|texting|message|messages|messaging|sms|reminders?|notifications?|alerts?|this number|my number"
    r"|mensajes?|textos?|recordatorios?|avisos?)\b"
)
# Stop words that, asked as a bare question ("stop?"), may mean the medicine rather than the texts.
_QUESTIONABLE = frozenset({"stop", "quit", "end", "cancel", "parar", "cancelar", "alto"})
_MAX_AMBIGUOUS_WORDS = 3
# Whole messages that may mean "no more texts" or "no more of something else" ("no más", "ya basta").
_AMBIGUOUS_PHRASES = frozenset({"no mas", "ya no mas", "no more", "enough", "that is enough", "thats enough"})


def _core(words: tuple[str, ...]) -> str:
    return " ".join(w for w in words if w not in FILLER_WORDS)


def is_opt_out_phrase(norm: Normalized) -> bool:
    """True when the normalised text revokes consent in natural language ("stop texting me")."""
    return _OPT_OUT.search(norm)


def is_clinical(norm: Normalized) -> bool:
    """True when the text speaks of the medicine, a symptom or a treatment (a stop word is then clinical)."""
    return _CLINICAL.search(norm)


def is_opt_in_word(text: str | None, opted_out: bool) -> bool:
    """True when the text asks to receive texts again (YES counts only for a patient who opted out)."""
    return consent_action(text, opted_out=opted_out) == "opt_in"


def _keyword_action(norm: Normalized, opted_out: bool) -> ConsentAction | None:
    words = norm.words
    joined = " ".join(words)
    core = _core(words)
    if opted_out and joined in OPT_IN_WHEN_OPTED_OUT:
        return "opt_in"
    if core in OPT_OUT_KEYWORDS or joined in OPT_OUT_KEYWORDS:
        if norm.question and core in _QUESTIONABLE:
            return "ambiguous"
        return "opt_out"
    if core in OPT_IN_KEYWORDS or joined in OPT_IN_KEYWORDS:
        return "opt_in"
    if core in HELP_KEYWORDS or joined in HELP_KEYWORDS:
        return "help"
    return None


def _keyword_clause(norm: Normalized) -> ConsentAction | None:
    """A sentence of its own that is a stop keyword ("I am done with these. STOP.")."""
    clauses: list[list[str]] = [[]]
    for token in norm.tokens:
        if token[0].isalnum():
            clauses[-1].append(token)
        elif clauses[-1]:
            clauses.append([])
    if len([c for c in clauses if c]) < 2:
        return None
    for words in clauses:
        if _core(tuple(words)) in OPT_OUT_KEYWORDS:
            return "ambiguous" if is_clinical(norm) or norm.question else "opt_out"
    return None


def wants_texts(norm: Normalized) -> bool:
    """True for a wish that the texts go on ("I don't want the texts to stop", "no dejen de mandarme…")."""
    return _KEEP_TEXTS.search(norm) is not None


def consent_action_of(norm: Normalized, opted_out: bool = False) -> ConsentAction | None:
    """consent_action on an already normalised text (the classifier shares it)."""
    if not norm.words:
        return None
    if _NOT_ABOUT_TEXTS.search(norm) and not _ABOUT_TEXTS.search(norm):
        return None  # "unsubscribe me from auto refill" is about the refills
    if _SCOPED.search(norm):
        return None  # "stop the reminders for my old med": that medicine, not the texts
    if _TAKE_BACK.search(norm):
        return "opt_in"  # "I hereby rescind my prior opt-out", "my wife unsubscribed me by mistake"
    if wants_texts(norm):
        # "please don't stop the reminders": the texts should go on; after a change of mind, back on
        return "opt_in" if _CHANGED_MIND.search(norm) else None
    action = _keyword_action(norm, opted_out)
    if action is not None:
        return action
    if is_opt_out_phrase(norm):
        return "opt_out"
    if (clause := _keyword_clause(norm)) is not None:
        return clause
    if _OPT_IN.search(norm):
        return "opt_in"
    core = _core(norm.words).split()
    if " ".join(core) in _AMBIGUOUS_PHRASES:
        return "ambiguous"
    stops = [w for w in core if w in AMBIGUOUS_STARTS]
    others = [w for w in core if w not in AMBIGUOUS_STARTS]
    if stops and len(core) <= _MAX_AMBIGUOUS_WORDS and all(w in AMBIGUOUS_COMPANIONS for w in others):
        return None if is_clinical(norm) else "ambiguous"
    return None


def consent_action(text: str | None, opted_out: bool = False) -> ConsentAction | None:
    """What a text means for consent, before any other logic.

    Args:
        text: the message body (None or empty: nothing).
        opted_out: the sender is opted out now (then YES / SÍ also opts back in, as Twilio does).

    Returns:
        "opt_out", "opt_in" or "help" for a consent keyword or a natural-language revocation; "ambiguous" for
        a short stop-like message that may mean the medicine (the channel sends one clarifying text); None
        when the text is for the conversation.
    """
    action = consent_action_of(normalize(text or ""), opted_out)
    if action is not None:
        _LOGGER.debug("consent action %s", action)
    return action
