"""Shared pieces of the dialog flows: step results, states, answer parsing and the site's business time."""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from conversations.templates import WEEKDAYS, language_of, render
from conversations.types import (
    Classification,
    ConversationState,
    PatientFacts,
    SignalSpec,
    SiteFacts,
    TaskSpec,
    Therapy,
)

__all__ = [
    "Step",
    "ack_sentence",
    "add_business_hours",
    "as_utc",
    "choice_of",
    "has_any",
    "is_open",
    "lang",
    "local_today",
    "med_values",
    "new_state",
    "next_opening",
    "normalize",
    "number_of",
    "site_values",
    "therapy_for",
    "when_text",
]

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Step:
    """What one flow step decided, before the engine turns it into a Decision.

    Attributes:
        texts: reply fragments, joined into one SMS by the engine.
        tasks: tasks to open.
        signals: signals to record.
        next_state: the dialog's next position, or None when this flow is over.
        consent: "detailed_yes" / "detailed_no" when the patient answered that question.
        used: the intent labels this step acted on (others are honoured as second intents).
        kind: the reply kind ("reply", "emergency", "followup", "outreach").
    """

    texts: tuple[str, ...] = ()
    tasks: tuple[TaskSpec, ...] = ()
    signals: tuple[SignalSpec, ...] = ()
    next_state: ConversationState | None = None
    consent: str | None = None
    used: frozenset[str] = field(default_factory=frozenset)
    kind: str = "reply"

    def plus(self, other: Step) -> Step:
        """Both steps' effects; the later one's next state wins when it has one."""
        return Step(
            texts=self.texts + other.texts,
            tasks=self.tasks + other.tasks,
            signals=self.signals + other.signals,
            next_state=other.next_state or self.next_state,
            consent=self.consent or other.consent,
            used=self.used | other.used,
            kind="emergency" if "emergency" in (self.kind, other.kind) else self.kind,
        )


def as_utc(now: datetime) -> datetime:
    """``now`` as aware UTC (a naive value is taken to be UTC already)."""
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def lang(facts: PatientFacts) -> str:
    """The template language for this patient."""
    return language_of(facts.language)


def new_state(
    flow: str,
    step: str,
    ask: str | None,
    now: datetime,
    hours: float,
    prescription_id: str | None,
    **data: Any,
) -> ConversationState:
    """A dialog position that times out ``hours`` from now; ``ask`` is the classifier context of the step."""
    return ConversationState(
        flow=flow,
        state=step,
        context={"ask": ask, **data},
        expires_at=as_utc(now) + timedelta(hours=hours),
        prescription_id=prescription_id,
    )


def therapy_for(facts: PatientFacts, prescription_id: str | None) -> Therapy | None:
    """The therapy a dialog is about: the named one, else the patient's only one."""
    for therapy in facts.therapies:
        if therapy.prescription_id == prescription_id:
            return therapy
    if prescription_id is None and len(facts.therapies) == 1:
        return facts.therapies[0]
    return None


def site_values(facts: PatientFacts) -> dict[str, str]:
    """Placeholders every template may use."""
    site = facts.site
    return {
        "first_name": facts.first_name,
        "site_name": site.name,
        "site_phone": site.phone,
        "urgent_phone": site.after_hours_phone or site.phone,  # the number answered at night too
    }


def med_values(facts: PatientFacts, therapy: Therapy | None) -> dict[str, str]:
    """How to name the medicine: the drug only with detailed consent, else "your medicine"."""
    language = lang(facts)
    if facts.detailed_consent and therapy is not None and therapy.drug:
        drug = therapy.drug
        return {"med": drug, "med_cap": render("med_named_cap", language, drug=drug), "drug": drug}
    generic = render("med_generic", language)
    return {"med": generic, "med_cap": render("med_generic_cap", language), "drug": generic}


# -- reading answers -----------------------------------------------------------------------------------

_NUMBER_WORDS = {
    "zero": 0, "none": 0, "one": 1, "once": 1, "two": 2, "twice": 2, "three": 3, "four": 4,
    "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "cero": 0, "ninguna": 0,
    "ninguno": 0, "nada": 0, "uno": 1, "una": 1, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "seis": 6,
    "siete": 7, "ocho": 8, "nueve": 9, "diez": 10,
}  # fmt: skip
_LEADING_DIGIT = re.compile(r"^\s*#?\s*(\d)(?!\d)")
_ANY_NUMBER = re.compile(r"(?<![\d.])(\d{1,3})(?![\d.])")


def normalize(text: str) -> str:
    """Lower case, accents removed, whitespace collapsed: for keyword checks."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]", " ", normalize(text)).split())


def has_any(text: str, words: Iterable[str]) -> bool:
    """True when the text contains any of the words or phrases (whole words, case and accents ignored)."""
    padded = f" {_words(text)} "
    return any(f" {_words(w)} " in padded for w in words)


def choice_of(cls: Classification) -> int | None:
    """The numbered option a reply picks: the classifier's ``choice``, else a leading single digit."""
    value = cls.values.get("choice")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _LEADING_DIGIT.match(cls.text)
    return int(match.group(1)) if match else None


def number_of(cls: Classification, key: str) -> int | None:
    """A count the reply states: the classifier's ``values[key]``, else a number or number word in the text."""
    value = cls.values.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return int(value)
    match = _ANY_NUMBER.search(cls.text)
    if match:
        return int(match.group(1))
    for word in re.sub(r"[^a-z ]", " ", normalize(cls.text)).split():
        if word in _NUMBER_WORDS:
            return _NUMBER_WORDS[word]
    return None


# -- business time in the site's zone ------------------------------------------------------------------


def _zone(site: SiteFacts) -> tzinfo:
    try:
        return ZoneInfo(site.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        _LOGGER.warning("site %s has an unknown time zone; using UTC", site.site_id)
        return UTC


def _hours(site: SiteFacts) -> tuple[time, time] | None:
    try:
        start, end = (time.fromisoformat(value) for value in site.business_hours)
    except ValueError:
        _LOGGER.warning("site %s has malformed business hours", site.site_id)
        return None
    return (start, end) if start < end and site.business_days else None


def is_open(site: SiteFacts, now: datetime) -> bool:
    """True when ``now`` falls inside the site's business hours on a business day (site time zone)."""
    hours = _hours(site)
    local = as_utc(now).astimezone(_zone(site))
    return hours is not None and local.weekday() in site.business_days and hours[0] <= local.time() < hours[1]


def next_opening(site: SiteFacts, now: datetime) -> datetime | None:
    """When the site next opens (aware, site zone); ``now`` itself when open; None if it never opens."""
    hours = _hours(site)
    if hours is None:
        return None
    local = as_utc(now).astimezone(_zone(site))
    if is_open(site, now):
        return local
    for offset in range(8):
        day = local.date() + timedelta(days=offset)
        opening = datetime.combine(day, hours[0], tzinfo=local.tzinfo)
        if day.weekday() in site.business_days and opening > local:
            return opening
    return None


def add_business_hours(site: SiteFacts, now: datetime, hours: float) -> datetime | None:
    """The moment ``hours`` of business time after ``now`` (site zone), or None if the site never opens."""
    window = _hours(site)
    remaining = timedelta(hours=hours)
    cursor = next_opening(site, now)
    for _ in range(60):
        if cursor is None or window is None:
            return None
        closing = datetime.combine(cursor.date(), window[1], tzinfo=cursor.tzinfo)
        if closing - cursor >= remaining:
            return cursor + remaining
        remaining -= closing - cursor
        cursor = next_opening(site, closing)
    return None


def local_today(site: SiteFacts, now: datetime) -> date:
    """Today's date in the site's time zone."""
    return as_utc(now).astimezone(_zone(site)).date()


def when_text(site: SiteFacts, target: datetime | None, now: datetime, language: str) -> str:
    """ "today", "tomorrow" or "on Monday" for ``target`` seen from ``now`` in the site's zone."""
    if target is None:
        return render("when_soon", language)
    zone = _zone(site)
    today = as_utc(now).astimezone(zone).date()
    day = target.astimezone(zone).date()
    if day == today:
        return render("when_today", language)
    if day == today + timedelta(days=1):
        return render("when_tomorrow", language)
    return render("when_weekday", language, day=WEEKDAYS[language_of(language)][day.weekday()])


def ack_sentence(facts: PatientFacts, now: datetime) -> str:
    """When a person will answer: "today" in business hours, else the next business day plus 911 advice."""
    language = lang(facts)
    if is_open(facts.site, now):
        return render("ack_today", language)
    when = when_text(facts.site, next_opening(facts.site, now), now, language)
    return render("ack_later", language, when=when)
