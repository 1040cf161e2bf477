"""Text normalisation: case, accents, emoji, stretched letters, shorthand, spelling fixes, word scanning."""

from __future__ import annotations

import re

import pytest

from conversations.normalize import Lexicon, WordPattern, fix_word, fold, normalize, number_value


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Sí", "si"),
        ("NÁUSEAS", "nauseas"),
        ("mañana", "manana"),
        ("can’t", "cant"),
        ("it's", "its"),
        ("b/c of the rash", " because  of the rash"),
    ],
)
def test_fold(raw: str, expected: str) -> None:
    assert fold(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Yesss!!", "yes ! !"),
        ("nooo", "no"),
        ("plsss", "please"),
        ("refil plz", "refill please"),
        ("thx", "thanks"),
        ("ty", "thank you"),
        ("k", "ok"),
        ("yep", "yes"),
        ("nope", "no"),
        ("idk", "i dont know"),
        ("my meds", "my medicine"),
        ("u r great", "you are great"),
        ("tmrw", "tomorrow"),
        ("2day", "today"),
        ("w/o food", "without food"),
        ("need my rx asap", "need my prescription as soon as possible"),
        ("👍", "thumbsup"),
        ("✅", "yes"),
        ("👎", "no"),
        ("🙏", "thanks"),
        ("wrong #", "wrong number"),
        ("gracias xfa", "gracias por favor"),
    ],
)
def test_shorthand_emoji_and_stretches(raw: str, expected: str) -> None:
    assert normalize(raw).text == expected


@pytest.mark.parametrize(
    ("typo", "fixed"),
    [
        ("diarhea", "diarrhea"),
        ("diarrhia", "diarrhea"),
        ("nausia", "nausea"),
        ("refil", "refill"),
        ("perscription", "prescription"),
        ("capecitibine", "capecitabine"),
        ("vomitting", "vomiting"),
        ("tierd", "tired"),
        ("xelodda", "xeloda"),
    ],
)
def test_spelling_fixes(typo: str, fixed: str) -> None:
    assert fix_word(typo) == fixed


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("hnds", "hands"),  # typed with sore hands (hand-foot syndrome): vowels left out
        ("cldnt", "couldnt"),
        ("bottl", "bottle"),
        ("relly", "really"),
        ("jst", "just"),
        ("opn", "open"),
        ("mornin", "morning"),  # the final g dropped
        ("cnt", "cant"),  # ambiguous skeleton (count, cuenta): SMS shorthand decides
        ("mrs", "mrs"),  # a title, not "mareos": a short word may miss one letter only
        ("pena", "pena"),  # a real Spanish word with its vowels
    ],
)
def test_words_typed_without_vowels(typed: str, meant: str) -> None:
    assert fix_word(typed) == meant


@pytest.mark.parametrize(
    "word",
    [
        "rash",
        "rush",
        "pain",
        "stop",
        "couch",
        "thinks",
        "skipping",
        "receive",
        "breaking",
        "diarrea",
        "fiebre",
    ],
)
def test_real_and_short_words_are_left_alone(word: str) -> None:
    assert fix_word(word) == word


def test_normalized_fields() -> None:
    norm = normalize("¿Sí, puedo? 38.4 C")
    assert norm.question
    assert norm.yes_accent
    assert norm.words == ("si", "puedo", "38.4", "c")
    assert norm.tokens[1] == ","
    assert [norm.text[offset:].split()[0] for _, offset in norm.starts] == list(norm.words)
    assert not normalize("si vomito").yes_accent


def test_empty_and_symbol_only_texts() -> None:
    for raw in ("", "   ", "???", "🌮🎉", "\u200b"):
        norm = normalize(raw)
        assert norm.words == ()
        assert norm.starts == ()


@pytest.mark.parametrize(
    ("token", "value"), [("3", 3), ("three", 3), ("tres", 3), ("zero", 0), ("blue", None)]
)
def test_number_value(token: str, value: int | None) -> None:
    assert number_value(token) == value


def test_lexicon_tries_every_word_start_and_names_the_entry() -> None:
    lexicon = Lexicon([("first", r"\ba b\b|(?<!x )\bq\w+"), ("second", r"\bb c\b|\w+ z\b|(?:x )?y")])
    hits = [(i, m.lastgroup, m.group(0)) for i, m in lexicon.scan(normalize("a b c, quick y z; x quiet"))]
    assert hits == [
        (0, "first", "a b"),
        (1, "second", "b c"),  # overlapping phrases are both found
        (4, "first", "quick"),
        (5, "second", "y z"),  # of two alternatives starting at the same word, the first listed wins
    ]  # and "quiet" after "x " is kept out by the lookbehind
    assert lexicon.search(normalize("quick"))
    assert not lexicon.search(normalize("nothing here"))


def test_lexicon_narrowing_by_word_start_finds_what_the_whole_alternation_finds() -> None:
    # Lexicon tries at a word only the alternatives that can begin with its first characters; digits, word
    # classes, optional and repeated parts, lookbehinds and a non-ASCII digit must not hide a hit.
    named = [
        ("count", r"\b(?:\d+|two|a few) (?:days?|weeks?) (?:without|sin)\b"),
        ("day", r"\b(?:\w+day|morning) (?:is|would be) better\b|(?:on |next )?(?:monday|mon)\b"),
        ("stretch", r"\bno{1,3}pe\b|\ba{0,2}b c\b|(?:ab)+ x\b|(?<!x )\bq\w+"),
        ("any", r"\w*bleed\w*|\bx?y\b"),
    ]
    whole = re.compile("|".join(f"(?P<{name}>{pattern})" for name, pattern in named))
    lexicon = Lexicon(named)
    texts = (
        "3 days without , two weeks sin pastillas ; tuesday is better next monday mon",
        "nooope nope ab c aab c b c abab x quick x quiet y xy nosebleeding",
        "٣ days without it , a few days without",
    )
    for text in texts:
        norm = normalize(text)
        expected = [
            (i, m.lastgroup, m.span())
            for i, offset in norm.starts
            if (m := whole.match(norm.text, offset)) is not None
        ]
        assert [(i, m.lastgroup, m.span()) for i, m in lexicon.scan(norm)] == expected
        assert expected  # the texts do hit


@pytest.mark.parametrize(
    "pattern",
    [
        r"\b(?:is|are) (?:\w+ )?better\b|(?<!\bwill )\bgoes away\b|^no more\b",  # word-anchored: narrowed
        r"\bno{1,3}pe\b|\b(?:\d+|a few) days\b|^0\b",  # a digit may start it, inside a number too
        r"better|away",  # no word boundary: searched as is
    ],
)
def test_word_pattern_finds_what_the_plain_search_finds(pattern: str) -> None:
    word_pattern = WordPattern(pattern)
    plain = re.compile(pattern)
    for text in (
        "no more texts , it is way better now and it goes away",
        "it will goes away , nothing is better , it is are better",
        "3 days , a few days , nope , ٣ days",
        "it lasted 1.5 days , faraway itsbetter",
        "the rash is gone",
        "0 , none",
        "",
    ):
        norm = normalize(text)
        assert [m.span() for m in word_pattern.finditer(norm)] == [m.span() for m in plain.finditer(norm.text)]
        found, expected = word_pattern.search(norm), plain.search(norm.text)
        assert (found and found.span()) == (expected and expected.span())
