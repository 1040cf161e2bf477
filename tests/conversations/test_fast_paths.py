"""The classifier's fast paths (conversations.normalize) find exactly what the plain regexes find, on real texts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import conversations.classify  # noqa: F401  (registers the classifier's WordPatterns)
import conversations.extract  # noqa: F401
import conversations.flows.safety  # noqa: F401
import conversations.severity  # noqa: F401
from conversations import classify, keywords
from conversations.normalize import _REGISTRY, Lexicon, Normalized, _compile_groups, normalize

DATA = Path(__file__).resolve().parent / "data"
# Every other labelled text of the project's own sets (every one takes a few seconds), plus numbers with a
# point or a slash and digits that are not ASCII.
TEXTS = [
    json.loads(line)["text"]
    for path in sorted(DATA.glob("intents_*.jsonl"))
    for line in path.read_text(encoding="utf-8").splitlines()
    if line.strip()
][::2] + ["it was 1.10 out of 10 , 3/4 of a pill", "٣ días sin pastillas", "tomé 2,5 , 10:30 , 0"]
NORMS = [normalize(text) for text in TEXTS]


def test_the_texts_are_many() -> None:
    assert len(NORMS) > 1000


_WHOLE: dict[int, re.Pattern[str] | None] = {}


def _per_letter_scan(lexicon: Lexicon, norm: Normalized) -> list[tuple[int, str | None, tuple[int, int]]]:
    """What Lexicon.scan found before narrowing by three characters: each letter's whole alternation."""
    hits = []
    for index, offset in norm.starts:
        bucket = lexicon._by_char.get(norm.text[offset], lexicon._default)
        if id(bucket) not in _WHOLE:
            _WHOLE[id(bucket)] = _compile_groups([entry[:2] for entry in bucket._entries], bucket._order)
        whole = _WHOLE[id(bucket)]
        if whole is not None and (match := whole.match(norm.text, offset)) is not None:
            hits.append((index, match.lastgroup, match.span()))
    return hits


@pytest.mark.parametrize(
    "lexicon",
    [classify._EMERGENCY, classify._SYMPTOMS, classify._INTENTS, keywords._OPT_OUT, keywords._OPT_IN],
    ids=["emergency", "symptoms", "intents", "opt_out", "opt_in"],
)
def test_lexicon_scan_equals_the_per_letter_alternation(lexicon: Lexicon) -> None:
    for norm in NORMS:
        found = [(i, m.lastgroup, m.span()) for i, m in lexicon.scan(norm)]
        assert found == _per_letter_scan(lexicon, norm), norm.text


def test_word_patterns_find_what_the_plain_regexes_find() -> None:
    assert len(_REGISTRY.patterns) >= 25  # the classifier's per-text patterns are word-anchored ones
    for norm in NORMS:
        for word_pattern in _REGISTRY.patterns:
            plain = word_pattern.pattern
            spans = [m.span() for m in word_pattern.finditer(norm)]
            assert spans == [m.span() for m in plain.finditer(norm.text)], (plain.pattern[:60], norm.text)
            first, expected = word_pattern.search(norm), plain.search(norm.text)
            assert (first and first.span()) == (expected and expected.span()), (plain.pattern[:60], norm.text)
