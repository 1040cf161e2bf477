"""Values stated in a patient's text: temperature, dollar amount, days of supply left, doses missed, a date."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import date, timedelta

from conversations.lexicons.emergency import TEMPERATURE_CUES
from conversations.normalize import Normalized, WordPattern, number_value

__all__ = [
    "amount",
    "choice",
    "count_in_answer",
    "days_left",
    "missed_count",
    "resolve_date",
    "severity_number",
    "temperature_f",
]

_LOGGER = logging.getLogger(__name__)

_NUM = (
    r"(\d+|a couple(?: of)?|couple(?: of)?|a few|few|several|one|two|three|four|five|six|seven|eight|nine|ten"
    r"|eleven|twelve|fifteen|twenty|thirty|a|an|uno|una|un|dos|tres|cuatro|cinco|seis|siete|ocho|nueve|diez"
    r"|doce|quince|veinte|treinta|un par de|unos|unas)"
)
_UNIT = r"(?:pills?|tablets?|capsules?|caps|doses?|days?|pastillas?|tabletas?|capsulas?|dosis|dias)"
_TEMP_VALUE = re.compile(r"^\d{2,3}(?:[.,]\d)?$")
_TEMP_CUES = frozenset(TEMPERATURE_CUES.split())
# A reading with one decimal in the body-temperature range is a temperature even unnamed ("running 100.6",
# "39.2 now", "99.6 this morning", "tengo 37.8"): below the threshold it is a low-grade reading, not a fever.
_BARE_FEVER = re.compile(r"^(?:9[6-9]|10[0-6]|3[5-9]|4[01])[.,]\d$")
# A whole number in the fever range right after one of these is a reading ("running 101", "spiked 102").
_READING_VERBS = frozenset(
    {"running", "spiking", "spiked", "ran", "hit", "reached", "tengo", "tiene", "tenia", "traigo", "trae", "marca",
     "marco", "marcaba", "subio", "llego"}
)  # fmt: skip
_WHOLE_FEVER = re.compile(r"^(?:10[0-6]|3[89]|4[01])$")
_NOT_TEMPERATURE_UNITS = frozenset(
    "mg mcg ml cc kg lb lbs pounds pound dollars dollar bucks usd percent pills tablets capsules miles hours"
    " minutes days units g gr oz kilos libras dolares pesos horas dias anos years yrs semanas weeks pastillas veces"
    " times meses months".split()
)
_UNITS = {
    "f": "f",
    "fahrenheit": "f",
    "c": "c",
    "celsius": "c",
    "centigrade": "c",
    "degrees": "",
    "degree": "",
    "deg": "",
    "grados": "",
    "grado": "",
}
_AMOUNT = re.compile(
    r"\$\s?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?|(?<![\d.,])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?"
    r" ?(?:dollars?|bucks|dolares|usd)\b"
)
# WordPatterns (conversations.normalize): searched only from a word where a match can start.
_LEFT = WordPattern(
    rf"\b{_NUM} (?:more |extra )?{_UNIT}(?: of (?:it|them|\w+))? (?:left|remaining|worth|to go)\b"
    rf"|\b(?:have|got|quedan|queda|tengo) (?:about |like |maybe |only |just |around |roughly |still |como |solo "
    rf"|nomas )*{_NUM} (?:more |extra )?{_UNIT}\b"
    rf"|\b(?:have|got|quedan|queda|tengo) (?:about |like |maybe |only |just |around |roughly |still |como |solo "
    rf"|nomas )*(\d+) (?:left|remaining|more)\b"
    # A number word with "left" ("I still have ten left"), and a Spanish count at the end of its clause
    # ("todavía me quedan como diez"): the unit is the one the reminder asked about.
    rf"|\b(?:have|got|quedan|queda|tengo) (?:about |like |maybe |only |just |around |roughly |still |como |solo "
    rf"|nomas )*{_NUM} (?:left|remaining)\b"
    rf"|\b(?:quedan|queda) (?:todavia |aun |como |solo |nomas |unas |unos )*{_NUM}(?= [.,;!?]|$)"
)
_WEEKS_LEFT = WordPattern(
    rf"\b{_NUM} (?:more )?(?:weeks?|semanas?|months?|mes|meses)(?: s)?(?: worth)?(?: of \w+)?(?: left| remaining"
    rf"| worth|$)|\b(?:queda|quedan|tengo) (?:para )?(?:como )?{_NUM} (?:semanas?|mes|meses)\b"
)
_MISSED = WordPattern(
    rf"\b(?:missed|miss|skipped|skip|forgot|forgotten|olvide|perdi|salte|me salte|didnt take|did not take|no tome)"
    rf"(?: \w+)?? {_NUM} (?:\w+ )?(?:doses?|pills?|days?|times|dosis|pastillas?|dias|veces)\b"
    rf"|\b{_NUM} (?:doses?|pills?|days?|dosis|pastillas|dias) (?:missed|skipped|olvidad\w*)\b"
    rf"|\b(?:en|for|in|durante|por) {_NUM} (?:days?|dias)\b"
)
_ZERO_ANSWERS = re.compile(
    r"^(?:no|none|nothing|zero|cero|ninguna|ninguno|nada|not any|not one|0)\b|\b(?:didnt|did not|havent|have not)"
    r" miss(?:ed)? (?:any|a single|one)\b|\btook (?:them|it) all\b|\bno (?:missed|skipped) doses\b"
    r"|\bnot a single\b|\bno (?:he )?(?:olvidado|fallado) ninguna\b|\btodas\b"
)
_NUMBER_TOKEN = re.compile(rf"\b{_NUM}\b")
# A number that is a time, not a count of doses ("took it 5 hours late", "a las 8").
_CLOCK_AFTER = re.compile(r" (?:hours?|hrs?|minutes?|mins?|horas?|minutos?|am|pm|o clock|oclock)\b")
_ONCE_WORDS = {"once": 1, "twice": 2, "thrice": 3}
# A number word as autocorrect or a voice typer leaves it, taken only as a whole answer ("Tree", "Tow").
_MISHEARD_NUMBERS = {"tree": 3, "tow": 2, "twoo": 2, "thee": 3, "won": 1, "fore": 4}
_CHOICE_WORDS = {"one": 1, "two": 2, "three": 3, "uno": 1, "dos": 2, "tres": 3}
_NOT_A_CHOICE = frozenset(
    """
    pills pill tablets days day times doses dose hours hour minutes am pm weeks week or to and of
    dollars bucks months years pastillas dias veces dosis semanas horas o y a mg x percent
    """.split()
)
_FRACTION = re.compile(r"^(\d)/\d+$")
_NOT_RATINGS = frozenset(
    {"a", "an", "un", "una", "none", "nothing", "once", "few", "several", "couple", "par"}
)
_WEEKDAYS: dict[str, int] = {
    "monday": 0,
    "tuesday": 1,
    "wednesday": 2,
    "thursday": 3,
    "friday": 4,
    "saturday": 5,
    "sunday": 6,
    "lunes": 0,
    "martes": 1,
    "miercoles": 2,
    "jueves": 3,
    "viernes": 4,
    "sabado": 5,
    "domingo": 6,
}
_MONTHS: dict[str, int] = {
    name: i + 1
    for names in (
        (
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ),
        (
            "enero",
            "febrero",
            "marzo",
            "abril",
            "mayo",
            "junio",
            "julio",
            "agosto",
            "septiembre",
            "octubre",
            "noviembre",
            "diciembre",
        ),
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sept", "oct", "nov", "dec"),
    )
    for i, name in enumerate(names)
}
_WEEKDAY_RE = WordPattern(rf"\b(next |this |on |el |este |el proximo |proximo )?({'|'.join(_WEEKDAYS)})\b")
_SLASH_DATE = re.compile(r"(?<![\d/])(\d{1,2})/(\d{1,2})(?:/(\d{2,4}))?(?![\d/])")
_MONTH_DATE = WordPattern(
    rf"\b(?:({'|'.join(_MONTHS)}) (\d{{1,2}})(?:st|nd|rd|th)?|(\d{{1,2}}) de ({'|'.join(_MONTHS)}))\b"
)
_RELATIVE = WordPattern(
    r"\b(tomorrow|today|tonight|next week|la proxima semana|la semana que viene|hoy|pasado manana"
    r"|(?<!esta )(?<!la )(?<!cada )(?<!las )(?<!en la )manana)\b"
)


def _num(text: str) -> int | None:
    text = text.strip()
    if text in ("a couple", "a couple of", "couple", "couple of", "un par de"):
        return 2
    if text in ("a few", "few", "several", "unos", "unas"):
        return 3
    if text in ("a", "an"):
        return 1
    return number_value(text)


def _unit_after(tokens: tuple[str, ...], index: int) -> str | None:
    """ "f", "c" or "" (degrees, scale unsaid) when a unit follows the number at index, else None."""
    following = tokens[index + 1 : index + 3]
    if following and following[0] in _UNITS:
        unit = _UNITS[following[0]]
        if not unit and len(following) > 1 and following[1] in _UNITS:
            return _UNITS[following[1]] or ""
        return unit
    return None


_ONES = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
         "zero": 0, "oh": 0, "uno": 1, "un": 1, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "seis": 6,
         "siete": 7, "ocho": 8, "nueve": 9, "cero": 0}  # fmt: skip
_ONE = "|".join(_ONES)
_DECIMAL = rf"(?: (?:point|punto|con) ({_ONE})| y (medio))?"
# Temperatures said in words, as voice-to-text writes them: "a hundred and two", "one oh one point five",
# "ninety nine point five", "treinta y ocho y medio", "cuarenta". Read only next to a temperature word.
_SPOKEN_TEMPERATURES = (
    (re.compile(rf"\b(?:a |one )?hundred(?: and)? ({_ONE})\b{_DECIMAL}"), 100.0),
    (re.compile(rf"\b(?:a |one )hundred()(?: (?:point|punto) ({_ONE}))?()\b(?! and)"), 100.0),
    (re.compile(rf"\bone (?:oh|o|zero) ({_ONE})\b{_DECIMAL}"), 100.0),
    (re.compile(rf"\bninety ({_ONE})\b{_DECIMAL}"), 90.0),
    (re.compile(rf"\btreinta y ({_ONE})\b{_DECIMAL}"), 30.0),
    (re.compile(rf"\bthirty ({_ONE})\b{_DECIMAL}"), 30.0),  # Celsius in English words: "thirty eight point six C"
    (re.compile(rf"\bforty(?: ({_ONE}))?\b{_DECIMAL}"), 40.0),
    (re.compile(rf"\bciento(?: y)? ({_ONE})\b{_DECIMAL}"), 100.0),
    (re.compile(rf"\bcuarenta(?: y ({_ONE}))?\b{_DECIMAL}"), 40.0),
)


# "tengo treinta y ocho", "tiene cuarenta": a reading in words after a Spanish verb of having, unnamed.
_SPOKEN_READING = WordPattern(
    r"\b(?:tengo|tiene|tenia|traigo|trae|marca|marco|subio a|llego a) (?:como |ya |unos )?(?:treinta y (?:ocho|nueve)"
    r"|cuarenta)\b(?! (?:pastillas|anos|dias|veces|dolares|pesos|semanas|meses|horas|libras|kilos))"
    # "running a hundred and one": running is how English says a fever is being had
    r"|\b(?:running|runnin|runing) (?:a |about |like |almost |over |at |around )?(?:a |one )?(?:hundred|one (?:oh|o|zero))"
    r"\b(?!(?: \w+)? (?:miles|dollars|bucks|yards|pills|times|calls))"
)


def _spoken_temperature(norm: Normalized) -> float | None:
    """The highest temperature said in words (°F or °C as said), when a temperature word is in the text."""
    if not _TEMP_CUES.intersection(norm.tokens) and not _SPOKEN_READING.search(norm):
        return None
    best: float | None = None
    for pattern, base in _SPOKEN_TEMPERATURES:
        for match in pattern.finditer(norm.text):
            ones, tenth, half = match.groups()
            value = (
                base
                + (_ONES[ones] if ones else 0)
                + (_ONES[tenth] / 10 if tenth else 0)
                + (0.5 if half else 0)
            )
            best = value if best is None else max(best, value)
    return best


def temperature_f(norm: Normalized) -> float | None:
    """The highest body temperature stated, in °F (a Celsius value, 35-43, is converted); None if none.

    A number counts when a unit follows it ("38.4 C", "101°") or a temperature word is near it ("fever of
    101", "tengo 38.9 de temperatura"), so "38 pills" is not a fever; a reading with one decimal in the fever
    range ("running 100.6", "39.2") counts unless a dollar sign or another unit goes with it.
    """
    best: float | None = None
    tokens = norm.tokens
    for index, token in enumerate(tokens):
        if not _TEMP_VALUE.match(token):
            continue
        unit = _unit_after(tokens, index)
        if unit is None and not _TEMP_CUES.intersection(tokens[max(0, index - 4) : index + 8]):
            read = index > 0 and tokens[index - 1] in _READING_VERBS and _WHOLE_FEVER.match(token)
            bare = (_BARE_FEVER.match(token) or read) and f"${token}" not in norm.folded.replace("$ ", "$")
            if not bare or (index + 1 < len(tokens) and tokens[index + 1] in _NOT_TEMPERATURE_UNITS):
                continue
        value = float(token.replace(",", "."))
        if 35.0 <= value <= 43.0 and unit != "f":
            value = value * 9 / 5 + 32
        elif not 93.0 <= value <= 110.0:
            continue
        best = value if best is None else max(best, value)
    if (spoken := _spoken_temperature(norm)) is not None:
        spoken = spoken * 9 / 5 + 32 if 35.0 <= spoken <= 43.0 else spoken
        if 93.0 <= spoken <= 110.0:
            best = spoken if best is None else max(best, spoken)
    return round(best, 1) if best is not None else None


def amount(norm: Normalized) -> float | None:
    """The dollar amount stated ("$850", "1,200 dollars"), or None."""
    match = _AMOUNT.search(norm.folded)
    if not match:
        return None
    whole = match.group(1) or match.group(3)
    cents = match.group(2) or match.group(4) or "0"
    return float(whole.replace(",", "")) + float(f"0.{cents}")


def days_left(norm: Normalized) -> int | None:
    """Days of supply the patient says are left (a pill a day; "about a week" is 7), or None."""
    match = _LEFT.search(norm)
    if match:
        value = _num(next(g for g in match.groups() if g))
        if value is not None:
            return value
    match = _WEEKS_LEFT.search(norm)
    if match:
        value = _num(match.group(1) or match.group(2))
        if value is not None:
            span = match.group(0)
            return value * (30 if re.search(r"\bmonths?\b|\bmes", span) else 7)
    return None


def missed_count(norm: Normalized) -> int | None:
    """How many doses a report of missed doses states ("missed 2 doses", "olvidé dos dosis"), or None."""
    match = _MISSED.search(norm)
    if not match:
        return None
    found = next((g for g in match.groups() if g), None)
    return _num(found) if found else None


def _misheard(words: Sequence[str]) -> int | None:
    """A whole answer that is a number word as autocorrect leaves it ("Tree"), else None."""
    return _MISHEARD_NUMBERS.get(words[0]) if len(words) == 1 else None


def count_in_answer(norm: Normalized) -> int | None:
    """The count an answer to "how many?" gives: a number or number word, "none" / "ninguna" as 0."""
    if _ZERO_ANSWERS.search(norm.text):
        return 0
    if (misheard := _misheard(norm.words)) is not None:
        return misheard
    for word in norm.words:
        if word in _ONCE_WORDS:
            return _ONCE_WORDS[word]
    for match in _NUMBER_TOKEN.finditer(norm.text):
        if match.group(1) not in ("a", "an", "un") and not _CLOCK_AFTER.match(norm.text, match.end()):
            return _num(match.group(1))
    return None


def severity_number(norm: Normalized) -> int | None:
    """A 0-4 rating in an answer to the severity question ("3", "about a 2", "cuatro"), or None."""
    if (misheard := _misheard(norm.words)) is not None:
        return misheard if misheard <= 4 else None
    for token in norm.words:
        if (fraction := _FRACTION.match(token)) is not None:
            token = fraction.group(1)
        value = number_value(token)
        if value is not None and value <= 4 and token not in _NOT_RATINGS:
            return value
    return None


def choice(norm: Normalized, fillers: frozenset[str]) -> int | None:
    """A bare numbered option: "1", "3 please", "dos", "2, I'm fine", "2 but ...", else None."""
    tokens = norm.tokens
    if not tokens:
        return None
    first = tokens[0]
    if first.isdigit():
        rest = tokens[1:]
        if rest and rest[0] in _NOT_A_CHOICE:
            return None
        return int(first) if len(first) == 1 else None
    if len(tokens) > 2 and tokens[1] in (",", ".", "!") and first in _CHOICE_WORDS:
        return _CHOICE_WORDS[first]  # "uno, mándelo", "two. still have some"
    words = [t for t in norm.words if t not in fillers]
    if (misheard := _misheard(words)) is not None:
        return misheard
    if len(words) == 1 and (value := number_value(words[0])) is not None and value <= 9:
        return (
            value if words[0] not in ("none", "nothing", "ninguna", "ninguno", "once", "una", "un") else None
        )
    return None


def _next_weekday(today: date, weekday: int) -> date:
    """The first such weekday after today ("next tuesday" said on a Monday is tomorrow)."""
    return today + timedelta(days=(weekday - today.weekday()) % 7 or 7)


def resolve_date(norm: Normalized, today: date | None = None) -> str | None:
    """The date a text names ("next tuesday", "12/3", "mañana", "march 5"), as ISO, relative to today.

    ``today`` defaults to the local date, read only when the text names a date.
    """
    if (found := _date_expression(norm)) is None:
        return None
    kind, match = found
    day = today or date.today()
    if kind == "slash":
        return _dated(day, int(match.group(1)), int(match.group(2)), match.group(3))
    if kind == "month":
        return _dated(
            day, _MONTHS[match.group(1) or match.group(4)], int(match.group(2) or match.group(3)), None
        )
    if kind == "weekday":
        return _next_weekday(day, _WEEKDAYS[match.group(2)]).isoformat()
    word = match.group(1)
    if word in ("today", "tonight", "hoy"):
        return day.isoformat()
    if word == "pasado manana":
        return (day + timedelta(days=2)).isoformat()
    if word in ("tomorrow", "manana"):
        return (day + timedelta(days=1)).isoformat()
    return (day + timedelta(days=7 - day.weekday())).isoformat()  # next week: its Monday


def _date_expression(norm: Normalized) -> tuple[str, re.Match[str]] | None:
    if "/" in norm.folded and (match := _SLASH_DATE.search(norm.folded)):
        return "slash", match
    for kind, pattern in (("month", _MONTH_DATE), ("weekday", _WEEKDAY_RE), ("relative", _RELATIVE)):
        if match := pattern.search(norm):
            return kind, match
    return None


def _dated(today: date, month: int, day: int, year: str | None) -> str | None:
    try:
        if year:
            full = int(year) + (2000 if len(year) == 2 else 0)
            return date(full, month, day).isoformat()
        candidate = date(today.year, month, day)
        if candidate < today - timedelta(days=31):
            candidate = date(today.year + 1, month, day)
        return candidate.isoformat()
    except ValueError:
        return None
