"""Text normalisation for the classifier: case, accents, emoji, stretched letters, shorthand and typos."""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

try:  # the regex parser, to bucket lexicon alternatives by first letter (an optimisation only)
    import re._constants as _sre  # type: ignore[import-not-found,unused-ignore]
    import re._parser as _sre_parse  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - another Python: every alternative is tried at every word
    _sre_parse = None

from conversations.lexicons import EMOJI, FUZZY_TARGETS, NUMBER_WORDS, SHORTHAND, VOCABULARY

__all__ = ["Lexicon", "Normalized", "WordPattern", "fix_word", "fold", "normalize", "number_value", "own_words"]

_LOGGER = logging.getLogger(__name__)

_EMOJI_RE = re.compile("|".join(re.escape(e) for e in sorted(EMOJI, key=len, reverse=True)))
_APOSTROPHES = re.compile(r"['’‘`´]")
_DIGIT_WORDS = re.compile(r"\b(2day|2nite|2morrow|2moro|2mrw|b4|4got|4get|gr8|l8r|2nd time)\b")
_DIGIT_WORD_TEXT = {
    "2day": "today",
    "2nite": "tonight",
    "2morrow": "tomorrow",
    "2moro": "tomorrow",
    "2mrw": "tomorrow",
    "b4": "before",
    "4got": "forgot",
    "4get": "forget",
    "gr8": "great",
    "l8r": "later",
    "2nd time": "second time",
}
_SLASH_WORDS = (
    (re.compile(r"\bb/c\b"), " because "),
    (re.compile(r"\bw/o\b"), " without "),
    (re.compile(r"\bw/(?=\s|[a-z])"), " with "),
)
_THUMBS = re.compile(r"\bthumbs? ?up\b")
_TOKEN_RE = re.compile(r"\d+(?:[.,:/]\d+)*|[a-z]+|[,.;!?]")
_STRETCH_RE = re.compile(r"([a-z])\1{2,}")
# A question mark, or a Spanish question word with its accent opening a sentence ("qué hago", "cuándo la tomo").
_QUESTION_RE = re.compile(
    r"[?¿]|(?:^|[.,;!¡]\s*)(?:qué|cuándo|cómo|dónde|cuánto|cuánta|cuántos|cuántas|cuál|cuáles|quién|por qué)(?!\w)",
    re.IGNORECASE,
)
_YES_ACCENT_RE = re.compile(r"(?<![a-záéíóúñ])s[íì](?![a-záéíóúñ])", re.IGNORECASE)

# Words the spelling fixer must leave alone: shorthand, targets, everything named in the lexicons.
_VOCABULARY: set[str] = set(VOCABULARY) | set(SHORTHAND) | set(FUZZY_TARGETS) | set(NUMBER_WORDS)
# Short words are fixed only for a swap of two neighbouring letters ("stpo", "hlep"), never by fuzzy match.
_SHORT_SWAPS: dict[str, str] = {
    word[:i] + word[i + 1] + word[i] + word[i + 2 :]: word
    for word in ("stop", "quit", "help", "info", "alto", "baja", "pain", "rash", "sick", "call", "refill")
    for i in range(1, len(word) - 1)
    if word[i] != word[i + 1]
}
_MIN_RATIO = 85.0
_DIMINUTIVES = ("citos", "citas", "cito", "cita", "itos", "itas", "ito", "ita")
_TARGETS_BY_INITIAL: dict[str, tuple[str, ...]] = {}
for _target in FUZZY_TARGETS:
    _TARGETS_BY_INITIAL.setdefault(_target[0], ())
    _TARGETS_BY_INITIAL[_target[0]] += (_target,)

_VOWELS = frozenset("aeiou")


def _skeleton(word: str) -> str:
    """The word as typed with its vowels left out (the first letter kept): "hands" -> "hnds"."""
    return word[0] + "".join(c for c in word[1:] if c not in _VOWELS)


# Lexicon words by their skeleton, where no other lexicon word has the same one ("cldnt" can only be couldnt;
# "cnt" could be cant, count or cuenta and is left to SHORTHAND).
_SKELETONS: dict[str, str | None] = {}
for _word in sorted(_VOCABULARY):
    if _word.isalpha() and len(_word) >= 3:
        _key = _skeleton(_word)
        _SKELETONS[_key] = None if _key in _SKELETONS and _SKELETONS[_key] != _word else _word


def _is_subsequence(short: str, long: str) -> bool:
    letters = iter(long)
    return all(c in letters for c in short)


def _unvoweled(word: str) -> str | None:
    """A lexicon word typed without (some of) its vowels or its final g: "hnds", "cldnt", "bottl", "relly",
    "mornin". Short words only when no vowel is left after the first letter, so "pena" stays itself."""
    if word.endswith("in") and f"{word}g" in _VOCABULARY:
        return f"{word}g"
    if len(word) < 3 or (len(word) < 5 and any(c in _VOWELS for c in word[1:])):
        return None
    target = _SKELETONS.get(_skeleton(word))
    if target is None or not _is_subsequence(word, target) or target in (f"{word}a", f"{word}o"):
        return None  # "problem" is English, not "problema" typed short
    missing = len(target) - len(word)  # "mrs" is no "mareos": a short word may miss one letter
    return target if 0 < missing <= (1 if len(word) < 5 else len(word) // 2 + 1) else None


@dataclass(frozen=True, slots=True)
class Normalized:
    """A text ready for matching.

    Attributes:
        raw: the text as received.
        folded: lower case, accents removed, emoji as words, punctuation kept (for value extraction).
        tokens: words, numbers and clause punctuation after shorthand expansion and spelling fixes.
        text: the tokens joined by single spaces (what the lexicon patterns match against).
        question: the text has a question mark or opens a sentence with an accented Spanish question word.
        yes_accent: the text has "sí" with its accent (Spanish yes, as opposed to "si", if).
        words: the tokens without punctuation.
        starts: (token index, offset in ``text``) of every word, where lexicon patterns may match.
        heads: the first _PREFIX characters of ``text`` at each of ``starts`` (what Lexicon and WordPattern
            look up to choose what to try there).
    """

    raw: str
    folded: str
    tokens: tuple[str, ...]
    text: str
    question: bool
    yes_accent: bool
    words: tuple[str, ...] = ()
    starts: tuple[tuple[int, int], ...] = ()
    heads: tuple[str, ...] = ()


def fold(text: str) -> str:
    """Lower case, emoji as words, apostrophes dropped, accents removed (ñ becomes n)."""
    text = text.lower()
    ascii_only = text.isascii()
    if not ascii_only or "#" in text or ":" in text:
        text = _EMOJI_RE.sub(lambda m: EMOJI[m.group(0)], text)
    text = _APOSTROPHES.sub("", text)
    if not ascii_only:
        decomposed = unicodedata.normalize("NFKD", text)
        text = "".join(c for c in decomposed if not unicodedata.combining(c))
    if "thumb" in text:
        text = _THUMBS.sub(" thumbsup ", text)
    if "/" in text:
        for pattern, replacement in _SLASH_WORDS:
            text = pattern.sub(replacement, text)
    if "2" in text or "4" in text or "8" in text:  # each of _DIGIT_WORDS holds one
        text = _DIGIT_WORDS.sub(lambda m: _DIGIT_WORD_TEXT[m.group(1)], text)
    return text


def _destretch(word: str) -> str:
    """ "yesss" -> "yes", "goood" -> "good": runs of three or more letters cut to one, else two."""
    single = _STRETCH_RE.sub(r"\1", word)
    if single in _VOCABULARY:
        return single
    double = _STRETCH_RE.sub(r"\1\1", word)
    if double in _VOCABULARY:
        return double
    return single


def _undiminish(word: str) -> str | None:
    """A Spanish diminutive's plain word when the lexicons know it ("llaguitas" -> "llagas", "poquito" -> "poco")."""
    for suffix in _DIMINUTIVES:
        if not word.endswith(suffix) or len(word) - len(suffix) < 2:
            continue
        stem, ending = word[: -len(suffix)], suffix.replace("cit", "").replace("it", "")
        if stem.endswith("gu"):
            stem = stem[:-1]  # llagu-itas -> llag-as
        elif stem.endswith("qu"):
            stem = stem[:-2] + "c"  # poqu-ito -> poc-o
        plural = ending.endswith("s")
        bare = (stem,) if suffix.startswith("c") else ()  # dolor-cito -> dolor, pie-citos -> pie
        for candidate in (
            stem + ending,
            stem + ("os" if plural else "o"),
            stem + ("as" if plural else "a"),
            *bare,
        ):
            if candidate in _VOCABULARY:
                return str(candidate)
    return None


@lru_cache(maxsize=65536)
def fix_word(word: str) -> str:
    """One folded word in its plain spelling: shorthand expanded, stretches cut, typos of lexicon words fixed.

    The result may hold several words ("idk" -> "i dont know"). A Spanish diminutive becomes its plain word
    when the lexicons know that ("llaguitas" -> "llagas"). Fuzzy fixes need a word of five letters or
    more, the same first letter, at most one edit (two from eight letters) and, past six letters, a rapidfuzz
    ratio of 85, so short and real words do not drift; four-letter keywords are fixed only for a swapped pair.
    """
    if word in SHORTHAND:
        return SHORTHAND[word]
    if word in _VOCABULARY or not word.isalpha():
        return word
    if _STRETCH_RE.search(word):
        return fix_word(_destretch(word))
    if (full := _unvoweled(word)) is not None:
        return full
    if len(word) < 5:
        return _SHORT_SWAPS.get(word, word)
    if (plain := _undiminish(word)) is not None:
        return plain
    limit = 1 if len(word) < 8 else 2
    for candidate in (word, *_sound_alike(word)):
        if candidate in _VOCABULARY:
            return candidate
        found = process.extractOne(
            candidate, _TARGETS_BY_INITIAL.get(candidate[0], ()), scorer=OSA.distance, score_cutoff=limit
        )
        if found and (len(word) <= 6 or fuzz.ratio(candidate, found[0]) >= _MIN_RATIO):
            return str(found[0])
    return word  # "visiting" is two edits from "vomiting" but a different word


def _sound_alike(word: str) -> tuple[str, ...]:
    """Spellings that sound the same in Spanish, for a word the lexicons do not know: b and v swapped at the
    start ("bomite"), g for v ("gomite"), sh for ch ("pesho"), a silent h left out ("ospital", "emorragia")."""
    first = word[0]
    out: tuple[str, ...] = ()
    if "sh" in word:
        out += (word.replace("sh", "ch"),)  # "pesho", "noshe": the Spanish ch written as English sh
    if first in "bv":
        out += (("v" if first == "b" else "b") + word[1:],)
    elif first == "g" and word[1:2] in ("o", "u"):
        out += ("v" + word[1:],)  # "gomite" for vomité
    elif first in "aeiou":
        out += ("h" + word,)
    return out


# A reply pasted under our own message ("Reply 1 to refill, 2 if…" then "2"), or with a mail signature: the
# lines that are ours or the phone's are not the patient's words.
_OUR_INSTRUCTION = re.compile(
    r"\b(?:reply|text back|responda|responde|conteste|contesta)\s+(?:stop|\d|yes|no|si|sí|help|ayuda)\b\s*"
    r"(?:to|para|for|if|si|when|cuando)\b",
    re.IGNORECASE,
)
_SIGNATURE = re.compile(
    r"^\s*(?:sent from my|enviado desde mi|get outlook for|sent via|sent with|enviado con)\b", re.IGNORECASE
)


def own_words(text: str) -> str:
    """The patient's own lines of a text of several lines: lines holding our reply instructions and phone
    signatures left out, a leading ">" (quoting) dropped; the text unchanged when that would leave nothing."""
    if "\n" not in text:
        return text
    lines = [
        line.lstrip().removeprefix(">").strip()
        for line in text.splitlines()
        if not _OUR_INSTRUCTION.search(line) and not _SIGNATURE.match(line)
    ]
    kept = "\n".join(line for line in lines if line)
    return kept or text


def normalize(text: str) -> Normalized:
    """Normalise a patient's text for matching (see Normalized): the patient's own lines (own_words)."""
    raw, text = text, own_words(text)
    folded = fold(text)
    tokens: list[str] = []
    for token in _TOKEN_RE.findall(folded):
        fixed = fix_word(token) if token[0].isalpha() else token
        tokens.extend(fixed.split())
    starts: list[tuple[int, int]] = []
    words: list[str] = []
    offset = 0
    for index, token in enumerate(tokens):
        if token[0].isalnum():
            starts.append((index, offset))
            words.append(token)
        offset += len(token) + 1
    joined = " ".join(tokens)
    return Normalized(
        raw=raw,
        folded=folded,
        tokens=tuple(tokens),
        text=joined,
        question=bool(_QUESTION_RE.search(text)),
        yes_accent=bool(_YES_ACCENT_RE.search(text)),
        words=tuple(words),
        starts=tuple(starts),
        heads=tuple(joined[offset : offset + _PREFIX] for _, offset in starts),
    )


def _split_alternatives(pattern: str) -> list[str]:
    """The top-level alternatives of a regular expression's source ("a|(b|c)" -> ["a", "(b|c)"])."""
    parts: list[str] = []
    depth, start, index, in_class = 0, 0, 0, False
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            index += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char in "()":
            depth += 1 if char == "(" else -1
        elif char == "|" and depth == 0:
            parts.append(pattern[start:index])
            start = index + 1
        index += 1
    parts.append(pattern[start:])
    return parts


_ASCII_DIGITS = frozenset("0123456789")
_ASCII_WORD = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _set_chars(items: list[tuple[object, object]], ascii_classes: bool = False) -> set[str] | None:
    """The characters a parsed class matches, or None for too many. With ``ascii_classes`` \\d and \\w count
    only their ASCII characters (what they match in a text that is ASCII; Lexicon checks that)."""
    chars: set[str] = set()
    for op, arg in items:
        if op is _sre.LITERAL and isinstance(arg, int):
            chars.add(chr(arg))
        elif op is _sre.RANGE and isinstance(arg, tuple) and arg[1] - arg[0] < 64:
            chars.update(chr(c) for c in range(arg[0], arg[1] + 1))
        elif ascii_classes and op is _sre.CATEGORY and arg is _sre.CATEGORY_DIGIT:
            chars |= _ASCII_DIGITS
        elif ascii_classes and op is _sre.CATEGORY and arg is _sre.CATEGORY_WORD:
            chars |= _ASCII_WORD
        else:
            return None  # a category (\w), a negation or a wide range: any character
    return chars


def _first_chars(items: Iterable[tuple[object, object]]) -> tuple[frozenset[str] | None, bool]:
    """(characters a parsed pattern can start with, or None for any; whether it can match nothing)."""
    chars: set[str] = set()
    for op, arg in items:
        if op in (_sre.AT, _sre.ASSERT, _sre.ASSERT_NOT):
            continue  # zero-width: \b, ^, lookarounds
        if op is _sre.LITERAL and isinstance(arg, int):
            return frozenset(chars | {chr(arg)}), False
        if op is _sre.IN and isinstance(arg, list):
            found = _set_chars(arg)
            return (None, False) if found is None else (frozenset(chars | found), False)
        if op is _sre.SUBPATTERN and isinstance(arg, tuple):
            sub, empty = _first_chars(arg[-1])
        elif op is _sre.BRANCH and isinstance(arg, tuple):
            results = [_first_chars(branch) for branch in arg[1]]
            if any(r[0] is None for r in results):
                return None, False
            sub = frozenset().union(*(r[0] or () for r in results))
            empty = any(r[1] for r in results)
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT) and isinstance(arg, tuple):
            sub, empty = _first_chars(arg[2])
            empty = empty or arg[0] == 0
        else:
            return None, False
        if sub is None:
            return None, False
        chars |= sub
        if not empty:
            return frozenset(chars), False
    return frozenset(chars), True


# A lexicon tries, at each word, only the alternatives that can begin with the word's first _PREFIX characters
# (its first letter alone leaves hundreds of alternatives per letter in the big lexicons; three leave a few).
_PREFIX = 3
_MAX_PREFIXES = 1024  # past this many spellings of a start, the rest of it may be anything
_Prefixes = set[str]


def _extend(items: Iterable[tuple[object, object]], heads: _Prefixes) -> tuple[_Prefixes, _Prefixes]:
    """Grow the possible starts of a match through a parsed sequence: (still growing, finished) starts.

    A finished start either has _PREFIX characters or stops where the parse is not followed (a class such as
    \\w, a back reference): anything may come after it. The analysis may only over-approximate (a start it
    lists need not be possible), never leave a possible start out: that is what keeps the matches unchanged.
    """
    done: _Prefixes = set()
    for op, arg in items:
        if not heads:
            break
        if op in (_sre.AT, _sre.ASSERT, _sre.ASSERT_NOT):
            continue  # zero-width (\b, ^, lookarounds): ignoring it only lists more starts
        chars: set[str] | None = None
        if op is _sre.LITERAL and isinstance(arg, int):
            chars = {chr(arg)}
        elif op is _sre.IN and isinstance(arg, list):
            chars = _set_chars(arg, ascii_classes=True)
        elif op is _sre.SUBPATTERN and isinstance(arg, tuple):
            heads, finished = _extend(arg[-1], heads)
            done |= finished
            continue
        elif op is _sre.BRANCH and isinstance(arg, tuple):
            grown: _Prefixes = set()
            for branch in arg[1]:
                more, finished = _extend(branch, heads)
                grown |= more
                done |= finished
            heads = grown
            continue
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT) and isinstance(arg, tuple):
            heads, finished = _repeat(arg[0], arg[1], arg[2], heads)
            done |= finished
            continue
        if chars is None or len(heads) * len(chars) > _MAX_PREFIXES:
            return set(), done | heads  # not followed further: anything may come next
        grown = {head + c for head in heads for c in chars}
        done |= {g for g in grown if len(g) >= _PREFIX}
        heads = {g for g in grown if len(g) < _PREFIX}
    return heads, done


def _repeat(
    low: int, high: int, sub: Iterable[tuple[object, object]], heads: _Prefixes
) -> tuple[_Prefixes, _Prefixes]:
    """_extend through a repeat {low,high} of a parsed sequence."""
    after: _Prefixes
    done: _Prefixes
    after, done = (set(heads) if low == 0 else set()), set()
    current, count = heads, 0
    while current and count < min(high, max(low, _PREFIX)):
        current, finished = _extend(sub, current)
        done |= finished
        count += 1
        if count >= low:
            after |= current
    if current and count < high:
        done |= current  # further repetitions not followed: anything may come next
    return after, done


def _prefixes(items: Iterable[tuple[object, object]]) -> frozenset[str] | None:
    """Strings of up to _PREFIX characters, one of which starts every match of a parsed pattern (None: any)."""
    heads, done = _extend(items, {""})
    found = heads | done
    return None if "" in found else frozenset(found)


class _Bucket:
    """The alternatives tried at words of one first letter, narrowed further by the word's first characters."""

    def __init__(self, entries: list[tuple[str, str, frozenset[str] | None]]) -> None:
        self._entries = entries
        # The named groups keep the order they have among all this letter's alternatives, whatever subset is
        # compiled, so that of two hits at one word the same entry wins as with the whole letter's alternation.
        self._order = list(dict.fromkeys(name for name, _, _ in entries))
        self._compiled: dict[tuple[int, ...], re.Pattern[str] | None] = {}

    def pattern(self, start: str) -> re.Pattern[str] | None:
        """The alternation of the alternatives that may match at a word beginning with ``start``."""
        if not start.isascii():  # the starts were worked out for ASCII text (\d and \w): try all of them
            chosen = tuple(range(len(self._entries)))
        else:
            chosen = tuple(
                i
                for i, (_, _, prefixes) in enumerate(self._entries)
                if prefixes is None or any(start.startswith(p) for p in prefixes)
            )
        if chosen not in self._compiled:
            self._compiled[chosen] = _compile_groups([self._entries[i][:2] for i in chosen], self._order)
        return self._compiled[chosen]


def _compile_groups(entries: list[tuple[str, str]], order: list[str]) -> re.Pattern[str] | None:
    """One named group per entry name, in ``order``, each the alternation of its entries' patterns."""
    if not entries:
        return None
    groups: dict[str, list[str]] = {name: [] for name in order}
    for name, alternative in entries:
        groups[name].append(f"(?:{alternative})")
    return re.compile("|".join(f"(?P<{name}>{'|'.join(parts)})" for name, parts in groups.items() if parts))


class Lexicon:
    """A lexicon category as regexes tried at word starts, bucketed by the first characters they can match.

    Each (name, pattern) becomes a named group; of several hits at the same word the earlier name wins. Only
    the alternatives that can start with a word's first letter are tried there, which makes large lexicons
    several times faster than one alternation; among those, only the ones that can start with the word's
    first _PREFIX characters are compiled into the pattern tried (once per distinct start, on first sight).
    """

    def __init__(self, named: Iterable[tuple[str, str]]) -> None:
        entries: list[tuple[str, str, frozenset[str] | None, frozenset[str] | None]] = []
        for name, pattern in named:
            for alternative in _split_alternatives(pattern):
                parsed = _sre_parse.parse(alternative) if _sre_parse else None
                chars, empty = _first_chars(parsed) if parsed is not None else (None, True)
                prefixes = _prefixes(parsed) if parsed is not None else None
                entries.append((name, alternative, None if empty else chars, prefixes))
        letters = set().union(*(chars for _, _, chars, _ in entries if chars is not None))
        self._by_char = {
            c: _Bucket([(n, a, p) for n, a, cs, p in entries if cs is None or c in cs]) for c in letters
        }
        self._default = _Bucket([(n, a, p) for n, a, cs, p in entries if cs is None])
        self._at: dict[str, re.Pattern[str] | None] = {}  # a word's first characters -> the pattern tried

    def _pattern(self, start: str) -> re.Pattern[str] | None:
        if start not in self._at:
            self._at[start] = self._by_char.get(start[0], self._default).pattern(start)
        return self._at[start]

    def scan(self, norm: Normalized) -> Iterator[tuple[int, re.Match[str]]]:
        """(token index, match) of every hit starting at a word; ``match.lastgroup`` names the entry."""
        text, at = norm.text, self._at
        for (index, offset), start in zip(norm.starts, norm.heads, strict=True):
            pattern = at[start] if start in at else self._pattern(start)
            if pattern is not None and (match := pattern.match(text, offset)) is not None:
                yield index, match

    def search(self, norm: Normalized) -> bool:
        """True when any entry matches at some word."""
        return next(self.scan(norm), None) is not None


class WordPattern:
    """A regex matched in ``norm.text`` only at the words where one of its matches can start.

    ``search`` and ``finditer`` return exactly what ``pattern.search(norm.text)`` and ``finditer`` return.
    When every match provably starts at a word (see _word_initials), the pattern is tried with ``match`` at
    just the words whose first characters can begin a match, and a text with none of them is ruled out by
    one bit test (see _word_bits): an unanchored search of a long alternation tries every branch at every
    character, which made a few such patterns cost more than whole lexicons. A pattern that is not provably
    word-anchored is simply searched. Make WordPatterns once, as module constants: each takes a bit.
    """

    def __init__(self, pattern: str) -> None:
        self.pattern = re.compile(pattern)
        parsed = _sre_parse.parse(pattern) if _sre_parse else None
        initials = _word_initials(list(parsed)) if parsed is not None else None
        self._prefixes = _prefixes(parsed) if parsed is not None and initials is not None else None
        # A match may begin with a digit: then inside a number too, after its point or slash ("1.10 out of 10").
        self._in_numbers = initials is not None and any(c.isdigit() for c in initials)
        self._at: dict[str, bool] = {}  # a word's first characters -> whether a match may start there
        self._bit = 0
        if self._prefixes is not None:
            self._bit = _REGISTRY.add(self)

    def may_start(self, head: str) -> bool:
        """Whether a match may start at a word beginning with ``head`` (or, for a number, inside it)."""
        if head not in self._at:
            prefixes = self._prefixes or ()
            self._at[head] = not head.isascii() or any(head.startswith(p) for p in prefixes)
        return self._at[head] or (self._in_numbers and head[0].isdigit())

    def _tries(self, norm: Normalized) -> list[tuple[int, bool]]:
        """(offset, whole) of the words to try in order; ``whole``: search the rest of the text from there."""
        bits, union = _word_bits(norm)
        if not union & self._bit:
            return []
        tries = []
        for (index, offset), head, word_bits in zip(norm.starts, norm.heads, bits, strict=True):
            if not word_bits & self._bit:
                continue
            if self._in_numbers and head[0].isdigit() and not norm.tokens[index].isdigit():
                tries.append((offset, True))  # "1.10": a match may start after the point
                break
            if self._at[head]:
                tries.append((offset, False))
        return tries

    def search(self, norm: Normalized) -> re.Match[str] | None:
        """``pattern.search(norm.text)``."""
        if self._prefixes is None:
            return self.pattern.search(norm.text)
        for offset, whole in self._tries(norm):
            if whole:
                return self.pattern.search(norm.text, offset)
            if (found := self.pattern.match(norm.text, offset)) is not None:
                return found
        return None

    def finditer(self, norm: Normalized) -> Iterator[re.Match[str]]:
        """``pattern.finditer(norm.text)``."""
        if self._prefixes is None:
            return self.pattern.finditer(norm.text)
        return self._matches(norm)

    def _matches(self, norm: Normalized) -> Iterator[re.Match[str]]:
        end = 0  # matches do not overlap (and none is empty: every match starts with one of the prefixes)
        for offset, whole in self._tries(norm):
            if whole:
                yield from self.pattern.finditer(norm.text, max(offset, end))
                return
            if offset >= end and (found := self.pattern.match(norm.text, offset)) is not None:
                yield found
                end = found.end()


class _Registry:
    """The word-anchored WordPatterns, one bit each, and per word's first characters the bits of those that
    may match starting there."""

    def __init__(self) -> None:
        self.patterns: list[WordPattern] = []
        self.bits: dict[str, int] = {}
        # The last text's bits: the classifier asks for one text's bits some twenty times in a row.
        self.last: tuple[Normalized | None, dict[str, int], tuple[int, ...], int] = (None, {}, (), 0)

    def add(self, pattern: WordPattern) -> int:
        self.patterns.append(pattern)
        self.bits = {}  # a new table: bits worked out before this pattern are incomplete
        return 1 << (len(self.patterns) - 1)

    def head_bits(self, head: str, table: dict[str, int]) -> int:
        bits = sum(1 << i for i, pattern in enumerate(self.patterns) if pattern.may_start(head))
        table[head] = bits
        return bits


_REGISTRY = _Registry()


def _word_bits(norm: Normalized) -> tuple[tuple[int, ...], int]:
    """For each word of the text, the bits of the WordPatterns that may match from it; and their union."""
    last_norm, last_table, bits, union = _REGISTRY.last
    table = _REGISTRY.bits
    if last_norm is norm and last_table is table:
        return bits, union
    bits = tuple(table[h] if h in table else _REGISTRY.head_bits(h, table) for h in norm.heads)
    union = 0
    for word_bits in bits:
        union |= word_bits
    _REGISTRY.last = (norm, table, bits, union)
    return bits, union


_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


def _word_initials(items: list[tuple[object, object]]) -> frozenset[str] | None:
    """The characters a match can begin with where ``\\b`` anchors it, or None when a match of the parsed
    pattern may start elsewhere than at one of Normalized.starts (lookarounds may come first).

    In the normalised text words are [a-z]+, numbers such as "3" or "1.5" and punctuation, joined by single
    spaces (_TOKEN_RE, fix_word). So a letter where ``\\b`` holds always starts a word, a digit there starts a
    number or follows its point ("1.5"), and where ``^`` holds, the text's start, a letter or digit starts the
    first word.
    """
    for i, (op, arg) in enumerate(items):
        if op in (_sre.ASSERT, _sre.ASSERT_NOT):
            continue
        if op is _sre.AT and arg in (_sre.AT_BOUNDARY, _sre.AT_BEGINNING, _sre.AT_BEGINNING_STRING):
            prefixes = _prefixes(items[i + 1 :])
            if prefixes is None or any(p[0] not in _ALNUM for p in prefixes):
                return None
            return frozenset(p[0] for p in prefixes) if arg is _sre.AT_BOUNDARY else frozenset()
        if op is _sre.SUBPATTERN and isinstance(arg, tuple):
            return _word_initials([*arg[-1], *items[i + 1 :]])
        if op is _sre.BRANCH and isinstance(arg, tuple):
            initials = [_word_initials([*branch, *items[i + 1 :]]) for branch in arg[1]]
            if any(found is None for found in initials):
                return None
            return frozenset(c for found in initials if found is not None for c in found)
        return None
    return None


def number_value(token: str) -> int | None:
    """The integer a token states ("3", "three", "tres"), or None."""
    if token.isdigit():
        return int(token)
    return NUMBER_WORDS.get(token)
