"""Intent classification of patient texts (English and Spanish): labels, severity, symptoms and values.

Pure and synchronous. A text is normalised (conversations.normalize), then lexicon patterns find red flags,
consent words, symptoms and request phrases, each checked against negation ("no nausea", "sin dolor") and
hypothetical scope ("what if I throw up"); the question the patient answers (the context) turns bare answers
("1", "sí", "3", "none") into labels. The primary label is the first found in PRIMARY_ORDER.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from conversations import ensemble, extract
from conversations.ensemble import RuleResult
from conversations.keywords import consent_action_of, is_clinical, wants_texts
from conversations.lexicons.emergency import (
    DESPAIR_PATTERN,
    EMERGENCY_EXCLUSIONS,
    EMERGENCY_PATTERNS,
    FEVER_THRESHOLD_F,
    FEVER_WORDS,
    NON_SYMPTOM_EMERGENCIES,
    PAST_EVENT_PATTERN,
    RESOLVED_EVENT_PATTERN,
)
from conversations.lexicons.intents import (
    ACK_WORDS,
    AGREE_PATTERN,
    EN_MARKERS,
    ES_MARKERS,
    FINE_PATTERNS,
    INTENT_PATTERNS,
    NO_WORDS,
    REPLY_FILLERS,
    TAPBACK_PATTERN,
    UNSURE_PATTERN,
    YES_WORDS,
)
from conversations.lexicons.symptoms import (
    BOUNDARY_WORDS,
    HYPOTHETICAL_PATTERN,
    NEGATION_BREAKERS,
    NEGATORS,
    QUESTION_VERB_PATTERN,
    RESOLVED_PATTERN,
    SEVERITY_PATTERNS,
    SYMPTOM_EXCLUSIONS,
    SYMPTOM_PATTERNS,
)
from conversations.model import load_model
from conversations.normalize import Lexicon, Normalized, WordPattern, normalize
from conversations.scope import optout_scope
from conversations.severity import stated_severity
from conversations.types import CONTEXTS, PRIMARY_ORDER, SEVERITIES, Classification

__all__ = ["FEVER_THRESHOLD_F", "classify", "classify_rules", "red_flag", "rule_pass"]

_LOGGER = logging.getLogger(__name__)


def _compile(patterns: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(_alternation(patterns))


def _alternation(patterns: tuple[str, ...]) -> str:
    return "|".join(f"(?:{p})" for p in patterns)


# The patterns searched in every text are WordPatterns: the same matches, but a text is searched only from a
# word where a match can start (an unanchored search of a long alternation tries every branch at every
# character, and these few cost as much as the lexicons).


_EMERGENCY = Lexicon(EMERGENCY_PATTERNS)
_EMERGENCY_EXCLUDED = WordPattern(_alternation(EMERGENCY_EXCLUSIONS))
_PAST_EVENT = WordPattern(f"{PAST_EVENT_PATTERN}|{RESOLVED_EVENT_PATTERN}")
_DESPAIR = re.compile(DESPAIR_PATTERN)
_FEVER = tuple((name, WordPattern(p)) for name, p in FEVER_WORDS)
_SYMPTOMS = Lexicon(SYMPTOM_PATTERNS)
# Labels in priority order, so that of two phrases starting at the same word the one that matters more wins.
_INTENT_ORDER = ("discontinued", "help", "wrong_number", "reschedule", "opt_in", *PRIMARY_ORDER)
_INTENTS = Lexicon(
    (label, p) for label in dict.fromkeys(_INTENT_ORDER) for p in INTENT_PATTERNS.get(label, ())
)
_NEGATABLE = frozenset({"refill_request", "call_request", "missed_dose", "reschedule"})
_FINE = WordPattern(_alternation(FINE_PATTERNS))
_SYMPTOM_EXCLUDED = WordPattern(_alternation(SYMPTOM_EXCLUSIONS))
_RESOLVED = WordPattern(RESOLVED_PATTERN)
_AGREE = WordPattern(AGREE_PATTERN)
_TAPBACK = re.compile(TAPBACK_PATTERN)
_UNSURE = WordPattern(UNSURE_PATTERN)
_TAPBACK_LABEL = {
    "disliked": "decline",
    "no le gusto": "decline",
    "questioned": "question",
    "cuestiono": "question",
}
_EXPLICIT_FINE = re.compile(
    r"\bno (?:side effects?|symptoms?|problems?|issues?)\b|\bnothing (?:new|to report)\b"
)
_HYPOTHETICAL = WordPattern(HYPOTHETICAL_PATTERN)
_QUESTION_VERB = WordPattern(QUESTION_VERB_PATTERN)
_SEVERITY = WordPattern("|".join(f"(?P<s{i}>{p})" for i, (_, p) in enumerate(SEVERITY_PATTERNS)))
_SEVERITY_LEVEL = {f"s{i}": level for i, (level, _) in enumerate(SEVERITY_PATTERNS)}
_QUESTION_OPENING = re.compile(
    r"(?:^|[,.;!?] |^(?:thanks|thank you|ok|okay|hi|hello|hey|gracias|oye|hola|buenas|buenos dias|perdon|sorry) )"
    r"(?:(?:can|could|may|should|shall|do|does|did|will|would|is|are|am|was|were|have|has)"
    r" (?:i|you|we|it|this|that|there|he|she|they|someone|somebody|anyone|u)\b"
    r"|(?:can|could|may|should|does|did|will|would|is|are|was|were|has) (?:my|the|these|those)\b"
    r"|(?:what|whats|when|where|which|who|why|how)\b|(?:puedo|debo|tengo que|se puede|cuando|donde|cuanto|quien"
    r"|cuantos|cuantas|por que|hay|como (?:puedo|debo|se)|que (?:hago|pasa|debo|puedo)|a que hora|es normal)\b)"
)
_ENOUGH_DAYS = 7
_ASKED_GRADE = re.compile(
    r"\b(?:is|was|would|could) (?:that|this|it|he|she) (?:\w+ )?(?:bad|serious|severe|grave)\b"
    r"|\b(?:es|sera|seria|esta) (?:eso |esto )?(?:malo|grave|mal|serio)\b"
)
_STATUS_QUESTION = re.compile(
    r"\b(?:is|are|was|has) (?:my|the|her|his|it|our|their|\w+ s|\w+s) ?(?:\w+ )?(?:refill|refills|order|prescription|medicine"
    r"|meds|pills|package|delivery)? ?(?:ready|shipped|coming|on (?:its|the) way|out|been sent|sent)\b"
    r"|\bwhen(?:s| is| will| does| do| did)? (?:my|the|her|his|i|we|it)? ?(?:next )?(?:get )?(?:refill|order|delivery"
    r"|package|medicine|pills) (?:due|ready|come|coming|ship|arrive|be ready|get here)\b|\bwhens my\b"
    r"|\bhow many refills\b|\b(?:cuando|cuándo) (?:me )?(?:toca|llega|sale|mandan|envian|estara)\b"
    r"|\bcuantos (?:refills|resurtidos)\b|\bya (?:esta|estan|salio|mandaron|enviaron) (?:list[oa]s? )?(?:mi|la|el|mis)\b"
    r"|\b(?:esta|estan) (?:list[oa]s?|preparad[oa]s?) (?:mi|mis|la|las|el)\b|\b(?:tracking|rastreo)\b"
    r"|\b(?:the|my|her|his) (?:refill|order|prescription|medicine|meds|pills) ready(?: yet| or (?:what|not)|\s*\?)|\b(?:resurtido|receta|medicina"
    r"|pedido|refill|pastillas?) (?:ya )?(?:esta|estan) (?:list[oa]s?|preparad[oa]s?)\b"
)
_PAIN = re.compile(
    r"\b(?:hurts?|hurting|painful|sore|stings?|stinging|aching|aches|duelen?|dolor(?:es)? de|me arde\w*|arden)\b"
)
_LOW_GRADE_F = 99.0
# Said to the copay offer: a worry about the cost ("I can't afford it", "$412", "está carísimo") stays a cost
# concern; the offer's own words taken up ("yes, the copay help please") are a yes.
_COST_WORRY = WordPattern(
    r"\b(?:afford\w*|expensive|pricey|costly|too (?:much|high|steep)|cant pay|can not pay|cannot pay|unable to pay"
    r"|broke|behind|went up|jumped|doubled|tripled|fortune|deductibles?|deducibles?|no (?:puedo|podemos|puede) pagar"
    r"|car[oa]|carisim[oa]|altisim[oa]|alcanza|subio|mucho dinero|dollars|dolares|bucks|crazy|insane|ridiculous"
    r"|outrageous|eating (?:us|me) alive|killing (?:me|us)|matando|me mata|runaround|laid off|despidieron|lost (?:my |our"
    r" |the )?(?:insurance|job|coverage)|perdi (?:el |mi )?(?:seguro|trabajo|empleo)|no (?:tengo|tenemos) (?:seguro"
    r"|dinero|trabajo)|no insurance|sin seguro)\b|\d{2,}"
)
_ACCEPTS_HELP = WordPattern(
    r"(?<!\bno )(?<!\bnot )(?<!\bdont )(?<!\bya no )\b(?:love|want|take|accept|welcome|appreciate|go ahead"
    r"|sign (?:me|us) up|count me in|acepto|aceptamos|quiero|queremos|que me ayuden|que nos ayuden|ayudenme"
    r"|me interesa)\b"
)
# Out of the medicine now, or needing more: a refill request even when it answers the refill reminder.
_OUT_NOW = WordPattern(
    r"\b(?:ran|run|running|im|i am|am|is|are|were|was|completely|all|totally)(?: already| completely| totally| all)? out\b|\bout of (?:pills|medicine|meds"
    r"|medication|it|them|tablets)\b|\b(?:last|final) (?:one|pill|dose|tablet|capsule)\b|\bnone left\b"
    r"|\bno (?:pills|meds|medicine|tablets) left\b|\bneed (?:more|some more)\b|\bse (?:me|le|nos) (?:acab|termin)\w*"
    r"|\bya no (?:me |le )?(?:tengo|tiene|quedan?) (?:pastillas|medicina|nada|ninguna|ni una|ni uno|ninguno)\b|\bno me quedan?\b"
    r"|\bme quede sin\b|\b(?:la|mi) ultima\b|\bme hace falta\b|\b(?:ocupo|necesito|necesita) mas\b"
)  # from here up to the fever threshold a reading is a mild side effect
# "No entiendo", "no sé qué contestar": not understanding, not a "no" (LABELS.md: help).
_NOT_UNDERSTOOD = re.compile(r"^no (?:le |lo )?(?:entiendo|entendi|comprendo|capto|se (?:que|cual|como|leer))\b")
_BARE_WORDS = 3
_WORD_RE = re.compile(r"[a-z]+")
# In a check-in, these say there is something to report even without a known symptom word.
_SOMETHING = re.compile(
    r"\b(?:thing|issue|issues|problem|problems|again|still|same|worse|hand|hands|feet|foot|skin|stomach|mouth|eyes"
    r"|legs?|arms?|back|head|lo mismo|otra vez|todavia|igual|peor|manos|pies|piel|estomago|boca|ojos|piernas)\b"
)
_QUESTION_BLOCKERS = frozenset({"help", "wrong_number", "reschedule", "opt_in", "opt_out"})
# Asking whether to change how the medicine is taken: a question, even when a day or a trip is named.
_DOSING_QUESTION = re.compile(
    r"\b(?:can|should|could|may|do) i (?:\w+ )?(?:stop|take|skip|hold|pause|quit|double|drink|eat|crush|split"
    r"|cut|break|keep taking)\b|\b(?:puedo|debo) (?:\w+ )?(?:dejar|tomar\w*|saltar\w*|suspender\w*|parar)\b"
)
_REQUEST = re.compile(
    r"^(?:please )?(?:can|could|would|will) (?:you|u|we|someone|somebody)\b|^(?:me )?(?:pueden|puede|podrian|podria)\b"
)
_REQUESTED = frozenset({"decline", "confirm", "refill_request", "call_request", "cost_concern"})
_ANSWER_CONTEXTS = frozenset({"yes_no", "refill_reminder", "copay_offer"})
_CHOICES: dict[str, dict[int, str]] = {
    "refill_reminder": {1: "confirm", 2: "decline", 3: "call_request"},
    "copay_offer": {1: "confirm", 2: "decline"},
}
_YES_FOLLOWERS = frozenset(
    """
    please but i and refill send thanks thank gracias por pero that it go yes sure ok sounds de
    claro quiero necesito mandenla envienla absolutely definitely we my the to need want si y you
    can would do todavia
    """.split()
)
_NO_FOLLOWERS = frozenset(
    """
    thanks thank gracias not i way sir maam need por todavia aun no we nothing nada im its it that
    ahorita ahora necesito quiero thx ty nope
    """.split()
)
# Words after an unaccented "si" that make it "yes" rather than "if" ("si por favor", "si claro").
_SI_YES_FOLLOWERS = frozenset(
    """
    por porfa claro gracias senora senor senorita mija mijo please thanks thank ok okay si yes dale quiero
    mandenla mandenlo envienla envienlo perfecto seguro de pero adelante andale bueno correcto exacto gracia
    """.split()
)
_OK_AS_YES = frozenset(
    {"ok", "sounds", "good", "perfect", "alright", "fine", "thumbsup", "great", "perfecto", "vale"}
)


@dataclass
class _Found:
    """What the passes found in one text."""

    norm: Normalized
    context: str | None
    negated: list[bool]
    hypothetical: list[bool]
    asked: list[bool]
    resolved: list[bool]
    labels: set[str] = field(default_factory=set)
    quieted: bool = False  # a symptom was named but negated or said to be over
    symptoms: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    severity: str | None = None
    confidence: float = 0.9
    alarms: set[str] = field(default_factory=set)  # the red flags' names
    despair_only: bool = False  # the only self-harm words were despair ("ya no aguanto") a symptom may explain
    low_grade: bool = False  # a temperature reading below the fever threshold
    past_event: bool = False  # a red flag told as history ("had chest pain back in May, it was the gallbladder")

    def add_symptom(self, name: str) -> None:
        if name not in self.symptoms:
            self.symptoms.append(name)


def _token_at(text: str, position: int) -> int:
    return text.count(" ", 0, position)


_OBJECT_NEGATORS = frozenset({"nada", "nothing", "anything", "ningun", "ninguna", "nadie", "ni"})


def _negation_mask(tokens: tuple[str, ...]) -> list[bool]:
    """Tokens in the scope of a negator: up to five words after it, to the clause's end."""
    mask = [False] * len(tokens)
    broken_until = -1  # "no puede comer nada por las llagas": the "nada" of a cancelled negation negates nothing
    for i, token in enumerate(tokens):
        if token not in NEGATORS:
            continue
        if (i <= broken_until and token in _OBJECT_NEGATORS) or _breaks(tokens, i + 1):
            j = i + 1
            while j < min(len(tokens), i + 4) and tokens[j][0].isalnum():
                j += 1
            broken_until = max(broken_until, j - 1)  # to the clause's end, at most three words on
            continue
        for j in range(i + 1, min(len(tokens), i + 6)):
            if not tokens[j][0].isalnum() or tokens[j] in BOUNDARY_WORDS:
                break
            mask[j] = True
    return mask


_CLITICS = frozenset({"me", "le", "se", "te", "nos", "les"})


def _breaks(tokens: tuple[str, ...], j: int) -> bool:
    """The word after a negator cancels it ("not sure", "no se si"); a pronoun passes it on to the verb
    after it ("no me deja dormir" cancels, "no me duele" stays negated)."""
    if j >= len(tokens) or tokens[j] not in NEGATION_BREAKERS:
        return False
    if tokens[j] in _CLITICS and j + 1 < len(tokens) and tokens[j + 1][0].isalpha():
        return _breaks(tokens, j + 1) or tokens[j + 1] in _CLITICS
    return True


def _clause_mask(norm: Normalized, pattern: WordPattern) -> list[bool]:
    """Tokens after a cue (hypothetical "if", a question "can I") up to the clause's end."""
    mask = [False] * len(norm.tokens)
    for match in pattern.finditer(norm):
        start = _token_at(norm.text, match.end())
        for j in range(start, len(norm.tokens)):
            token = norm.tokens[j]
            if token in (",", ".", ";", "!", "?", "but", "pero"):
                break
            mask[j] = True
    return mask


def _resolved_mask(norm: Normalized) -> list[bool]:
    """Tokens before a "it's better now" cue in the same clause."""
    mask = [False] * len(norm.tokens)
    for match in _RESOLVED.finditer(norm):
        start = _token_at(norm.text, match.start())
        if start > 0 and (norm.tokens[start - 1] in NEGATORS or norm.tokens[start - 1] in ("cant", "still")):
            continue  # "won't go away", "still not better"
        for j in range(start - 1, -1, -1):
            token = norm.tokens[j]
            if token in (",", ".", ";", "!", "?", "but", "pero"):
                break
            mask[j] = True
    return mask


def _clauses(tokens: tuple[str, ...]) -> list[int]:
    """The clause number of each token (clauses end at punctuation)."""
    numbers, clause = [], 0
    for token in tokens:
        numbers.append(clause)
        if not token[0].isalnum():
            clause += 1
    return numbers


def _live(found: _Found, index: int, *, hypothetical: bool = True, asked: bool = False) -> bool:
    """True when the match at a token is not negated (nor imagined, nor merely asked about, when checked)."""
    if index >= len(found.negated):
        return True
    if found.negated[index] or (hypothetical and found.hypothetical[index]):
        return False
    return not (asked and found.asked[index])


def _emergencies(found: _Found) -> None:
    text = found.norm.text
    excluded: list[re.Match[str]] | None = None
    for index, match in _EMERGENCY.scan(found.norm):
        if not _live(found, index, hypothetical=False):
            found.quieted = True  # "no chest pain", "no blood in it": read, and denied
            continue
        if excluded is None:
            excluded = list(_EMERGENCY_EXCLUDED.finditer(found.norm))
        if any(ex.start() < match.end() and match.start() < ex.end() for ex in excluded):
            _not_an_alarm(found)
            continue
        name = match.lastgroup or "emergency"
        if name == "self_harm" and "self_harm" not in found.alarms:
            found.despair_only = any(
                d.start() <= match.start() < d.end() for d in _DESPAIR.finditer(text)
            )
        elif name == "self_harm":
            found.despair_only = found.despair_only and any(
                d.start() <= match.start() < d.end() for d in _DESPAIR.finditer(text)
            )
        found.alarms.add(name)
        found.labels.add("emergency")
        found.add_symptom(name)
        if name not in NON_SYMPTOM_EMERGENCIES:
            found.labels.add("side_effect")
    _fever(found)


def _not_an_alarm(found: _Found) -> None:
    """A red flag the rules read and excluded ("blood tests", a faint years ago): the model must be surer to raise
    one, and much surer when it was told as history."""
    found.quieted = True
    found.past_event = found.past_event or _PAST_EVENT.search(found.norm) is not None


def _fever(found: _Found) -> None:
    temperature = extract.temperature_f(found.norm)
    if temperature is not None:
        found.values["temperature_f"] = temperature
    text = found.norm.text
    excluded = [ex.span() for ex in _EMERGENCY_EXCLUDED.finditer(found.norm)]
    for name, pattern in _FEVER:
        matches = list(pattern.finditer(found.norm))
        if excluded and any(any(a < m.end() and m.start() < b for a, b in excluded) for m in matches):
            _not_an_alarm(found)  # "tuve fiebre hace dos meses, era gripa"
        if any(
            _live(found, _token_at(text, m.start()))
            and not any(a < m.end() and m.start() < b for a, b in excluded)
            for m in matches
        ):
            found.add_symptom(name)
            found.labels.add("side_effect")
            if temperature is None or temperature >= FEVER_THRESHOLD_F:
                found.labels.add("emergency")
    if temperature is not None and temperature >= FEVER_THRESHOLD_F:
        found.labels.add("emergency")
        found.add_symptom("fever")
    if "emergency" in found.labels and "fever" in found.symptoms:
        found.alarms.add("fever")
    elif temperature is not None and _LOW_GRADE_F <= temperature < FEVER_THRESHOLD_F:
        found.add_symptom("fever")  # a low-grade reading (LABELS.md: side_effect, mild); triage knows the value
        found.labels.add("side_effect")
        found.low_grade = True


def _despair(found: _Found) -> None:
    """ "Ya no aguanto" said of a symptom, or to the severity question, grades it: not a self-harm flag."""
    if not found.despair_only or found.alarms != {"self_harm"}:
        return
    named = [s for s in found.symptoms if s not in NON_SYMPTOM_EMERGENCIES]
    if named or found.context == "checkin_severity":
        found.symptoms.remove("self_harm")
        found.labels.discard("emergency")
        found.alarms.discard("self_harm")


def _consent(found: _Found) -> None:
    action = consent_action_of(found.norm)
    if action == "ambiguous":
        question = found.norm.question or _QUESTION_OPENING.search(found.norm.text)
        answering = found.context in ("checkin_open", "checkin_severity", "missed_doses")
        action = None if question or answering or is_clinical(found.norm) else "opt_out"
    if action is not None:
        found.labels.add(action)


def _symptoms(found: _Found) -> None:
    unwell = False
    excluded = [m.span() for m in _SYMPTOM_EXCLUDED.finditer(found.norm)]
    for index, match in _SYMPTOMS.scan(found.norm):
        if any(start < match.end() and match.start() < end for start, end in excluded):
            continue
        if not _live(found, index) or (found.resolved[index] and match.lastgroup != "bleeding"):
            found.quieted = True  # (bleeding that stopped is still reported: LABELS.md, a side effect)
        else:
            if match.lastgroup == "unwell":
                unwell = True
            else:
                found.add_symptom(match.lastgroup or "unspecified")
    if (
        unwell
        and not found.symptoms
        and not (found.norm.question or _QUESTION_OPENING.search(found.norm.text))
    ):
        found.add_symptom("unwell")  # "what are the side effects?" asks; a named symptom says more
    if any(s not in NON_SYMPTOM_EMERGENCIES for s in found.symptoms):
        found.labels.add("side_effect")


def _intents(found: _Found) -> None:
    text = found.norm.text
    at: dict[str, list[int]] = {}
    for index, match in _INTENTS.scan(found.norm):
        label = match.lastgroup or "unknown"
        if label in _NEGATABLE and not _live(found, index, asked=label == "missed_dose"):
            continue
        found.labels.add(label)
        at.setdefault(label, []).append(index)
    if "discontinued" in found.labels:  # the doctor stopped it: no refill, and no doses are being missed
        found.labels -= {"discontinued", "missed_dose", "refill_request"}
        found.labels.add("decline")
    if "refill_request" in found.labels and _STATUS_QUESTION.search(text) and not _OUT_NOW.search(found.norm):
        found.labels.discard("refill_request")  # "is my refill ready?", "when's my next fill due": a question
        found.labels.add("question")
    if "decline" in at and "refill_request" in at:
        clause = _clauses(found.norm.tokens)
        declined = {clause[i] for i in at["decline"]}
        if all(clause[i] in declined and any(d <= i for d in at["decline"]) for i in at["refill_request"]):
            found.labels.discard("refill_request")  # "hold off on the refill"
    if (found.norm.question and (len(found.norm.words) > 1 or found.labels)) or _QUESTION_OPENING.search(
        text
    ):
        found.labels.add("question")
    if "question" in found.labels and found.labels & _QUESTION_BLOCKERS:
        if found.labels & _QUESTION_BLOCKERS == {"reschedule"} and _DOSING_QUESTION.search(text):
            # "can I stop the pills while I'm on vacation?" asks about dosing, not about a delivery day
            found.labels.discard("reschedule")
        else:
            found.labels.discard("question")
    elif "question" not in at and _REQUEST.match(text) and found.labels & _REQUESTED:
        found.labels.discard("question")  # "can you stop my auto refill" asks for something, not about it


# A self-correction ("yes... no wait, not yet", "sí... no, espere, todavía no"): the answer after it counts.
_CORRECTION = re.compile(
    r"\b(?:wait|hold on|actually|scratch that|i mean|sorry|oops|never ?mind|espera|espere|esperen|perdon|mejor dicho"
    r"|quiero decir|digo|pensandolo bien)\b"
)
_YES_TOKENS = frozenset("yes y si sure ok claro dale correct".split())
_NO_TOKENS = frozenset("no not never nunca".split())


def _corrected(words: tuple[str, ...], text: str) -> str | None:
    """The last answer of a text that corrects itself, when it differs from the first one."""
    marker = _CORRECTION.search(text)
    if marker is None:
        return None
    answers = ["yes" if w in _YES_TOKENS else "no" for w in words if w in _YES_TOKENS or w in _NO_TOKENS]
    if len(answers) < 2 or answers[0] == answers[-1]:
        return None
    after = text[marker.end() :].split()
    if not any(w in _YES_TOKENS or w in _NO_TOKENS for w in after):
        return None  # "no, sorry, I meant the other one": nothing answered after the correction
    return answers[-1]


def _polarity(found: _Found) -> str | None:
    """ "yes" or "no" when the text opens with an answer word, else None."""
    tokens = found.norm.tokens
    words = found.norm.words
    if not words:
        return None
    if (corrected := _corrected(words, found.norm.text)) is not None:
        return corrected
    if _UNSURE.search(found.norm) or _NOT_UNDERSTOOD.match(found.norm.text):
        return None
    if words in (("please",), ("please", "do")):
        return "yes"
    first, rest = words[0], words[1:]
    if first == "ya" and rest == ("no",):
        return "no"  # "ya no": not any more
    core = [w for w in words if w not in REPLY_FILLERS or w in ("yes", "no", "si")]
    follower_ok = len(tokens) == 1 or not tokens[1][0].isalnum() or len(core) <= 2
    if first in NO_WORDS or " ".join(words) in NO_WORDS:
        if follower_ok or (rest and rest[0] in _NO_FOLLOWERS):
            return "no"
    if first == "si" and len(words) > 1 and not found.norm.yes_accent and not follower_ok:
        if rest[0] not in _SI_YES_FOLLOWERS:
            return None  # "si no mejora..." is "if"
        return "yes"  # "si por favor", "si claro": yes without its accent
    if first in YES_WORDS or " ".join(words) in YES_WORDS:
        if follower_ok or (rest and rest[0] in _YES_FOLLOWERS):
            return "yes"
    return None


def _answer(found: _Found) -> None:
    """Bare answers to the question asked: numbered choices, yes/no, counts and ratings."""
    context, norm = found.context, found.norm
    choice = extract.choice(norm, REPLY_FILLERS)
    if choice is not None:
        found.values["choice"] = choice
    polarity = _polarity(found)
    fine = bool(_FINE.search(norm)) and not found.symptoms
    if context in _CHOICES and choice is not None and choice in _CHOICES[context]:
        found.labels.add(_CHOICES[context][choice])
        found.confidence = 0.95
        if _CHOICES[context][choice] == "confirm" and not _OUT_NOW.search(norm):
            found.labels.discard("refill_request")  # "1 refill pls": the choice says it
    elif context == "checkin_severity" and "help" not in found.labels:  # "what's the difference between 2 and 3"
        _severity_answer(found, fine or polarity == "no")
    elif context == "missed_doses":
        count = extract.count_in_answer(norm)
        if count is None and polarity == "no":
            count = 0
        if count is not None:
            found.labels.add("missed_dose")
            found.values["missed_doses"] = count
    elif context == "checkin_open":
        if not found.symptoms and "help" not in found.labels and (fine or polarity == "no" or found.quieted):
            found.labels.add("decline")
        elif (
            (polarity == "yes" and norm.words[0] not in _OK_AS_YES)
            or found.symptoms
            or stated_severity(norm) in ("moderate", "severe")  # "in bed all day", "can't eat": something to report
            or (not found.labels and _SOMETHING.search(norm.text))
        ):
            found.labels.add("side_effect")  # "just the hand thing again": something to report
    elif context == "refill_reminder":
        _refill_answer(found)
    _yes_no(found, polarity, fine)
    if context == "copay_offer" and "decline" in found.labels and "confirm" not in found.labels:
        found.labels.discard("cost_concern")  # "no, I have a copay card already" explains the no
    elif (
        context == "copay_offer"
        and "cost_concern" in found.labels
        and not _COST_WORRY.search(norm)
        and _ACCEPTS_HELP.search(norm)
    ):
        found.labels.discard("cost_concern")  # "we'd love the copay help": the offer taken, no worry told
        found.labels.add("confirm")


def _refill_answer(found: _Found) -> None:
    """What else answers "Reply 1 to refill, 2 if you still have enough": asking for it, or a count left."""
    labels, left = found.labels, extract.days_left(found.norm)
    if "refill_request" in labels and "decline" not in labels:
        labels.add("confirm")  # asking for the refill answers the reminder: yes
        if not _OUT_NOW.search(found.norm):
            labels.discard("refill_request")  # out of it now stays a refill request (LABELS.md)
    elif left is not None and not labels & {"confirm", "decline"}:
        labels.discard("refill_request")
        labels.add("decline" if left >= _ENOUGH_DAYS else "confirm")


def _yes_no(found: _Found, polarity: str | None, fine: bool) -> None:
    context, labels = found.context, found.labels
    words = found.norm.words
    is_ack = all(w in ACK_WORDS for w in words)
    if context in ("checkin_open", "checkin_severity", "missed_doses"):
        if is_ack and not labels:
            labels.add("ack")
        return
    agree = bool(_AGREE.search(found.norm))
    if (
        polarity is None
        and "decline" not in labels
        and context in _ANSWER_CONTEXTS
        and (agree or (is_ack and _OK_AS_YES.intersection(words)))
    ):
        polarity = "yes"
    weak = polarity == "yes" and context is None and words[0] in _OK_AS_YES
    if (
        polarity == "yes"
        and not weak
        and (context is not None or not is_ack or "yes" in words or "si" in words)
    ):
        labels.add("confirm")
    elif weak and not labels:
        labels.add("ack")  # "ok, thanks for letting me know": nothing was asked
    elif polarity == "no":
        labels.add("decline")
    elif is_ack:
        labels.add("ack")
    elif fine and not labels:
        labels.add("decline" if _EXPLICIT_FINE.search(found.norm.text) else "ack")
    elif (agree or found.quieted) and not labels:
        labels.add("ack")  # "está bien, gracias", "no more diarrhea, thank god"
    if "confirm" in labels and "ack" in labels:
        labels.discard("ack")


def _severity_answer(found: _Found, none: bool) -> None:
    rating = extract.severity_number(found.norm)
    if rating is not None:
        found.severity = SEVERITIES[rating]
    else:
        found.severity = _stated_severity(found, allow_none=True) or ("none" if none else None)
    if found.severity is not None or found.symptoms:
        found.labels.add("side_effect")


def _stated_severity(found: _Found, allow_none: bool = False) -> str | None:
    """The highest severity the words state ("mild", "pretty bad", "worst ever", "muy fuerte")."""
    best: str | None = None
    for match in _SEVERITY.finditer(found.norm):
        level = _SEVERITY_LEVEL[match.lastgroup or ""]
        if level == "none" and not allow_none:
            continue
        if level != "mild" and not _live(found, _token_at(found.norm.text, match.start())):
            continue  # "nada grave", "not severe": what it is not
        if level in ("moderate", "severe") and any(
            a.start() <= match.start() and match.end() <= a.end() for a in _ASKED_GRADE.finditer(found.norm.text)
        ):
            continue  # "is that bad?", "¿es grave?": asks whether it is, says nothing of how it feels
        if best is None or SEVERITIES.index(level) > SEVERITIES.index(best):
            best = level
    return best


def _pain_severity(found: _Found) -> str | None:
    """ "Hurts", "me duele", "sore" with no other grade: moderate (LABELS.md: "hurts" is moderate)."""
    for match in _PAIN.finditer(found.norm.text):
        if _live(found, _token_at(found.norm.text, match.start()), asked=True):
            return "moderate"
    return None


def _values(found: _Found, today: date | None) -> None:
    norm, labels, values = found.norm, found.labels, found.values
    if (money := extract.amount(norm)) is not None:
        values["amount"] = money
        labels.add("cost_concern")  # a dollar figure from a patient is about what the medicine costs
    if (left := extract.days_left(norm)) is not None:
        values["days_left"] = left
    if "missed_dose" in labels and "missed_doses" not in values:
        if (count := extract.missed_count(norm)) is not None:
            values["missed_doses"] = count
    if (when := extract.resolve_date(norm, today)) is not None:
        values["date"] = when


def _language(norm: Normalized) -> str:
    words: tuple[str, ...] | list[str] = norm.words
    if not norm.raw.isascii():  # emoji read as English words ("🙏" -> "thanks") say nothing of the language
        decomposed = unicodedata.normalize("NFKD", norm.raw.lower())
        words = _WORD_RE.findall("".join(c for c in decomposed if not unicodedata.combining(c)))
    spanish = sum(1 for w in words if w in ES_MARKERS)
    english = sum(1 for w in words if w in EN_MARKERS)
    if spanish != english:
        return "es" if spanish > english else "en"
    raw = norm.raw.lower()
    return "es" if any(c in raw for c in "ñ¿¡áéíóú") else "en"


def classify(text: str, context: str | None = None, *, today: date | None = None) -> Classification:
    """Understand one patient text: the learned model combined with the lexicon rules (conversations.ensemble).

    Args:
        text: the message body.
        context: the question the text answers (one of conversations.types.CONTEXTS), or None.
        today: the reference day for dates ("next tuesday"); the local date by default.

    Returns:
        The Classification (see classify_rules); ``confidence`` is calibrated (ensemble.CLARIFY_BELOW).
    """
    return ensemble.combine(rule_pass(text, context, today=today), load_model())


def classify_rules(text: str, context: str | None = None, *, today: date | None = None) -> Classification:
    """The lexicon rules alone (the safety net under the model, and the baseline it is measured against)."""
    return rule_pass(text, context, today=today).result


def rule_pass(text: str, context: str | None = None, *, today: date | None = None) -> RuleResult:
    """Understand one patient text with the lexicon rules, keeping what the ensemble needs to know.

    Args:
        text: the message body.
        context: the question the text answers (one of conversations.types.CONTEXTS), or None.
        today: the reference day for dates ("next tuesday"); the local date by default.

    Returns:
        The Classification: primary intent (PRIMARY_ORDER), other labels, severity, language, confidence,
        values (missed_doses, days_left, amount, date, temperature_f, choice) and symptoms.
    """
    norm = normalize(text or "")
    ctx = context if context in CONTEXTS else None
    found = _Found(
        norm=norm,
        context=ctx,
        negated=_negation_mask(norm.tokens),
        hypothetical=_clause_mask(norm, _HYPOTHETICAL),
        asked=_clause_mask(norm, _QUESTION_VERB),
        resolved=_resolved_mask(norm),
    )
    if (tapback := _TAPBACK.match(norm.folded)) is not None:
        found.labels.add(_TAPBACK_LABEL.get(tapback.group(1), "ack"))  # a reaction to our own text
    elif norm.words:
        _emergencies(found)
        _consent(found)
        _symptoms(found)
        _despair(found)
        _intents(found)
        _answer(found)
        _values(found, today)
        if "opt_in" in found.labels:  # "add me back, he took me off by accident": the wish to get texts again
            found.labels -= {"decline", "confirm", "wrong_number", "ack"}
    result = _result(found, text or "")
    return RuleResult(
        result=result,
        norm=norm,
        context=ctx,
        bare=_is_bare(found, tapback is not None),
        scope=optout_scope(norm) if "opt_out" in found.labels else None,
        quieted=found.quieted,
        keep_texts="opt_out" not in found.labels and wants_texts(norm),
        past_event=found.past_event and "emergency" not in found.labels,
    )


def red_flag(text: str) -> bool:
    """True when the emergency rules alone read a red flag (fever included): a cheap check (a few µs, about a
    tenth of ``classify``) for putting a text ahead of a backlog; ``classify`` still decides how it is handled."""
    norm = normalize(text or "")
    if not norm.words or _TAPBACK.match(norm.folded):
        return False
    # only the masks _emergencies reads (negation, and "if" for a fever); the others stay empty
    found = _Found(norm, None, _negation_mask(norm.tokens), _clause_mask(norm, _HYPOTHETICAL), [], [])
    _emergencies(found)
    return "emergency" in found.labels


def _is_bare(found: _Found, tapback: bool) -> bool:
    """A short answer the open question decides ("1", "si", "no", "3 doses"), or a tapback reaction."""
    if tapback:
        return True
    if found.context is None or len(found.norm.words) > _BARE_WORDS:
        return False
    if not found.labels:  # "no sé" to a yes/no question: I don't know, not a no
        return found.context in _ANSWER_CONTEXTS and _UNSURE.search(found.norm) is not None
    return not found.labels & {"emergency", "opt_out"}  # those the ensemble weighs with the model anyway


def _result(found: _Found, text: str) -> Classification:
    labels = [label for label in PRIMARY_ORDER if label in found.labels] or ["unknown"]
    severity = None
    if "side_effect" in labels:
        words = _stated_severity(found)
        severity = found.severity or stated_severity(found.norm) or words
        if words == "very_severe":  # "worst ever, in bed all day": the words say more than the function
            severity = words
        severity = severity or _pain_severity(found) or ("mild" if found.low_grade else None)
    confidence = found.confidence if labels != ["unknown"] else 0.3
    if labels == ["question"] and not found.norm.question:
        confidence = 0.6
    return Classification(
        text=text,
        intent=labels[0],
        also=tuple(labels[1:]),
        severity=severity,
        language=_language(found.norm),
        confidence=round(confidence, 2),
        values=found.values,
        symptoms=tuple(found.symptoms),
    )
