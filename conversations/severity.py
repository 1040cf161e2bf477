"""Severity read from what a patient says: CTCAE counts, function, and intensity words (LABELS.md).

Counts (CTCAE v5): diarrhea stools a day — 1–3 mild, 4–6 moderate, 7+ severe; vomiting episodes in 24 h —
1–2 mild, 3–5 moderate, 6+ severe. Function: "can't eat", "in bed all day", "can't walk", blisters → severe;
painful or limiting chores ("hurts to open jars") → moderate. These are the confident severity rules: when
one fires it decides; otherwise the lexicon's intensity words and the model's severity head do.
"""

from __future__ import annotations

import re

from conversations.normalize import Normalized, WordPattern, number_value

__all__ = ["count_severity", "function_severity", "stated_severity"]

_ORDER = ("none", "mild", "moderate", "severe", "very_severe")
_DIARRHEA = re.compile(
    r"^(?:diarr\w*|diarea\w*|diary|stools?|bms?|bowel|poop\w*|pooped|loose|watery|runs|bathroom|restroom|toilet"
    r"|evacuaciones|evacue|evacuado|obrado|obre|popo|bano|excusado|chorrillo|soltura|cagalera|deposiciones|dia|dire)$"
)
_VOMIT = re.compile(
    r"^(?:vomit\w*|threw|throw|throwing|thrown|through|thru|bomit\w*|puk\w*|vomite|vomito|vomitado|vomitando|vomitar|vomitos?"
    r"|devolvi\w*|devolver|devuelto|basca\w*|arqueos?|heav\w*)$"
)
_TIMES = frozenset(
    "times time x veces vez stools bms episodes episodios trips movements evacuaciones deposiciones rounds".split()
)
# "2 extra times a day", "3 veces mas", "3 loose stools", "5 deposiciones liquidas"
_BETWEEN = frozenset("extra more other mas loose watery liquid runny".split())
_ONCE = {"once": 1, "twice": 2, "thrice": 3}
_NEAR = 7  # words between the count and the symptom it counts
_MULTIPLE = re.compile(r"^(\d+)x$")
_THRESHOLDS = {
    "diarrhea": ((7, "severe"), (4, "moderate"), (1, "mild")),
    "vomit": ((6, "severe"), (3, "moderate"), (1, "mild")),
}

# WordPatterns (conversations.normalize): searched only from a word where a match can start.
_FUNCTION: tuple[tuple[str, WordPattern], ...] = (
    (
        "severe",
        WordPattern(
            r"\b(?:cant|can not|cannot|unable to|couldnt|could not|no (?:puedo|puede|pude|pudo)|ni|no he podido"
            r"|no ha podido) (?:even )?(?:eat|drink|swallow|keep (?:anything|food|water) down|walk|hold|stand"
            r"|get out of bed|get up|do anything|work|sleep|comer|tomar agua|beber|tragar|caminar|agarrar"
            r"|sostener|levantarme|levantarse|pararme|hacer nada|trabajar|dormir)\b"
            r"|\b(?:in|stuck in|staying in) bed all day\b|\ben (?:la )?cama todo el dia\b|\bblisters?\b|\bampollas?\b"
            r"|\bnot eating\b|\bno (?:estoy|esta|he|ha) comi\w*\b|\bno come nada\b|\bcant keep anything down\b"
            r"|\b(?:cant|can not|cannot|couldnt|could not) keep (?:anything|nothing|food|it|water|liquids) down\b"
            r"|\b(?:stopped|quit|barely|hardly|isnt|hasnt been) eating\b|\b(?:sleeps?|sleepy|sleeping|slept) all day\b"
            r"|\bduerme todo el dia\b|\bdej[oe] de comer\b|\btoo (?:\w+ )?to (?:eat|walk|swallow|stand|get up|hold)\b"
            r"|\bno retiene nada\b|\bno puedo retener nada\b|\b(?:eaten|ate|eating|comido) (?:almost |nearly |practically"
            r" |basically |next to )?(?:nothing|nada)\b|\b(?:havent|hasnt|have not|has not) eaten (?:anything|in|for|since)\b"
        ),
    ),
    (
        "moderate",
        WordPattern(
            r"\b(?:hurts?|painful|hard|difficult|trouble|struggl\w*) (?:to |when i |when |with )?(?:open\w*|hold\w*"
            r"|button\w*|walk\w*|grip\w*|cook\w*|writ\w*|typ\w*|chew\w*|jars?)\b|\bme cuesta (?:abrir|agarrar|caminar"
            r"|comer|masticar|escribir)\b|\b(?:hurts|duele) but (?:i )?(?:can|still) (?:eat|walk)\b"
            r"|\b(?:duele|duelen|dolor|arde|arden)\b(?: \w+){0,4} pero (?:si )?puedo comer\b|\bduelen? (?:al|para) (?:abrir|agarrar|caminar|comer|masticar|lavar)\b"
            r"|\b(?:cant|can not|cannot|couldnt) (?:open|unscrew|twist) (?:\w+ )?(?:jars?|bottles?|lids?|caps?)\b"
            r"|\bno puedo abrir (?:los |las )?(?:frascos|botes|tapas)\b|\b(?:hard|difficult|trouble) to (?:stand|do the"
            r" dishes|wash)\b|\b(?:sting|stings|burn|burns|hurt|hurts) when i (?:eat|walk|chew|swallow)\b"
        ),
    ),
)


def _kind_near(words: tuple[str, ...], index: int) -> str | None:
    best: tuple[int, str] | None = None
    for j in range(max(0, index - _NEAR), min(len(words), index + _NEAR + 1)):
        for kind, pattern in (("diarrhea", _DIARRHEA), ("vomit", _VOMIT)):
            if pattern.match(words[j]) and (best is None or abs(j - index) < best[0]):
                best = (abs(j - index), kind)
    return best[1] if best else None


def count_severity(norm: Normalized) -> str | None:
    """The CTCAE grade of a stated count of stools or vomiting episodes ("diarrhea 7 times today"), or None."""
    words, best = norm.words, None
    for i, word in enumerate(words):
        multiple = _MULTIPLE.match(word)
        value = int(multiple.group(1)) if multiple else _ONCE.get(word) or number_value(word)
        if value is None or not 0 < value < 60:
            continue
        after = words[i + 1 : i + 3]
        counted = (
            multiple is not None
            or word in _ONCE
            or (len(after) > 0 and after[0] in _TIMES)
            or (len(after) > 1 and after[0] in _BETWEEN and after[1] in _TIMES)
        )
        if not counted:
            continue
        kind = _kind_near(words, i)
        if kind is None:
            continue
        grade = next(level for floor, level in _THRESHOLDS[kind] if value >= floor)
        if best is None or _ORDER.index(grade) > _ORDER.index(best):
            best = grade
    return best


def function_severity(norm: Normalized) -> str | None:
    """The grade that what the symptom stops the patient doing implies ("can't eat" severe), or None."""
    for level, pattern in _FUNCTION:
        if pattern.search(norm):
            return level
    return None


def stated_severity(norm: Normalized) -> str | None:
    """The confident severity: a count, else function; None when neither is stated."""
    return count_severity(norm) or function_severity(norm)
