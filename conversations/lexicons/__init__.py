"""Lexicons of the intent classifier, as data: shorthand, symptoms, safety words, opt-out and intents."""

from __future__ import annotations

import re
from collections.abc import Iterable

from conversations.lexicons import emergency, intents, optout, symptoms
from conversations.lexicons.text import EMOJI, FUZZY_TARGETS, KNOWN_WORDS, NUMBER_WORDS, SHORTHAND

__all__ = ["EMOJI", "FUZZY_TARGETS", "KNOWN_WORDS", "NUMBER_WORDS", "SHORTHAND", "VOCABULARY"]

_ESCAPE = re.compile(r"\\[a-zA-Z]")
_WORD = re.compile(r"[a-z]{2,}")


def _pattern_words(patterns: Iterable[str]) -> set[str]:
    """The literal words spelled out in regular expressions (escapes such as \\b and \\w dropped)."""
    words: set[str] = set()
    for pattern in patterns:
        words.update(_WORD.findall(_ESCAPE.sub(" ", pattern)))
    return words


def _all_patterns() -> list[str]:
    found: list[str] = [p for _, p in symptoms.SYMPTOM_PATTERNS]
    found += [p for _, p in symptoms.SEVERITY_PATTERNS]
    found += [p for _, p in emergency.EMERGENCY_PATTERNS] + [p for _, p in emergency.FEVER_WORDS]
    found += list(emergency.EMERGENCY_EXCLUSIONS)
    for patterns in intents.INTENT_PATTERNS.values():
        found += list(patterns)
    found += list(intents.FINE_PATTERNS) + list(optout.OPT_OUT_PATTERNS) + list(optout.OPT_IN_PATTERNS)
    found += (
        list(optout.CLINICAL_PATTERNS) + list(optout.OPT_OUT_EXCLUSIONS) + list(symptoms.SYMPTOM_EXCLUSIONS)
    )
    found += [
        optout.OPT_OUT_SCOPED,
        symptoms.RESOLVED_PATTERN,
        symptoms.HYPOTHETICAL_PATTERN,
        symptoms.QUESTION_VERB_PATTERN,
    ]
    found += [intents.AGREE_PATTERN, intents.UNSURE_PATTERN, intents.TAPBACK_PATTERN]
    found += list(optout.OPT_OUT_KEYWORDS | optout.OPT_IN_KEYWORDS | optout.HELP_KEYWORDS)
    return found


# Real words the spelling fixer must leave alone: every word the lexicons spell out, plus common words.
VOCABULARY: frozenset[str] = frozenset(
    _pattern_words(_all_patterns())
    | KNOWN_WORDS
    | intents.ES_MARKERS
    | intents.EN_MARKERS
    | intents.ACK_WORDS
    | intents.REPLY_FILLERS
    | symptoms.NEGATORS
    | symptoms.BOUNDARY_WORDS
    | optout.FILLER_WORDS
)
