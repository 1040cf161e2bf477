"""The programs linter: errors a file cannot be loaded with, and warnings a clinic should read first.

Errors are ``parse_programs``'s (one per problem, with its line), including a template naming a placeholder
midbot cannot fill for every patient: that template would never go out as written. Warnings, each with the
YAML line of the template or program it is about:

* no reply choices for its kind (a refill reminder that does not say "Reply 1 ... 2 ... 3");
* no {site_name}: the engine then puts its greeting in front of the clinic's wording;
* no opt-out wording on a program that can be a patient's first text (midbot then appends one);
* a drug named in the wording, which reaches patients who have not agreed to detailed messages;
* more SMS segments than the limit, counted as sent (greeting and opt-out line included);
* a language the site's patients speak without wording of its own.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Literal

import yaml
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Patient, Prescription
from conversations.symptoms import drug_key
from conversations.templates import fill_custom, language_of, render
from integrations.twilio.segments import segment_info
from scheduler.programs import (
    ProgramError,
    ProgramFileError,
    ProgramSpec,
    compose,
    line_of,
    parse_programs,
)

__all__ = [
    "KIND_WORDS",
    "Finding",
    "LintResult",
    "first_contact",
    "lint_programs",
    "rendered_sample",
    "site_languages",
]

Severity = Literal["error", "warning"]

# Long enough stand-ins for the placeholders a template may use, so the segment count errs on the long side.
SAMPLE = {
    "first_name": "Guadalupe",
    "site_name": "Lakeside Oncology Pharmacy",
    "site_phone": "+1 (312) 555-0100",
    "drug": "su medicamento",
    "days": "10",
    "copay": "1,250.50",
}
LANGUAGE_NAMES = {"en": "English", "es": "Spanish"}
_REPLY = {
    "en": re.compile(r"\b(reply|text|respond|answer|send)\b", re.IGNORECASE),
    "es": re.compile(r"\b(responda|responde|conteste|contesta|escriba|envíe|envie|mande)\b", re.I),
}
# The answers each kind's dialog reads (DESIGN.md "Intent evaluation format" contexts), as the words a
# patient must be told; a template of that kind should offer them.
_NUMBERED = {
    "refill_reminder": ("1", "2", "3"),
    "copay_assistance": ("1", "2"),
    "abandonment_recovery": ("1", "2", "3"),
}
_WORDS: dict[str, dict[str, tuple[tuple[str, ...], ...]]] = {
    "side_effect_checkin": {"en": (("NO",),), "es": (("NO",),)},
    "new_start": {"en": (("YES",), ("NO",)), "es": (("SI", "SÍ"), ("NO",))},
}
_WHAT_FOR = {
    "refill_reminder": "1 to refill, 2 if they still have enough, 3 to talk to a pharmacist",
    "copay_assistance": "1 for help with the cost, 2 for no thanks",
    "abandonment_recovery": "1 to schedule pickup or delivery, 2 if cost is a problem, 3 if no longer needed",
    "side_effect_checkin": "NO, or what they feel",
    "new_start": "YES or NO to naming their medicine in texts (patients who have not agreed are never asked)",
}
_FIRST_EVENTS = frozenset({"received", "pa_approved"})
KIND_WORDS = {
    "refill_reminder": "refill reminder",
    "side_effect_checkin": "side-effect check-in",
    "copay_assistance": "copay assistance",
    "new_start": "new start",
    "abandonment_recovery": "abandonment recovery",
}


@dataclass(frozen=True)
class Finding:
    """One problem (error) or one thing to check (warning), with the YAML line it is about."""

    severity: Severity
    line: int
    field: str
    message: str
    program_id: str = ""

    def render(self, source: str) -> str:
        """``FILE:LINE: field: reason``, or ``FILE:LINE: warning: PROGRAM: field: reason``."""
        if self.severity == "error":
            return f"{source}:{self.line}: {self.field}: {self.message}"
        where = f"{self.program_id}: " if self.program_id else ""
        return f"{source}:{self.line}: warning: {where}{self.field}: {self.message}"


@dataclass
class LintResult:
    """The specs (None when the file has errors) and every finding in line order."""

    specs: list[ProgramSpec] | None
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        """The findings that stop a load."""
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        """The findings a load goes ahead with."""
        return [f for f in self.findings if f.severity == "warning"]


def lint_programs(
    text: str, *, segment_limit: int, site_languages: Collection[str] | None = None
) -> LintResult:
    """Check a programs YAML document.

    Args:
        text: the document.
        segment_limit: the most SMS segments a text should take (MIDBOT_MAX_TEMPLATE_SEGMENTS).
        site_languages: the languages the site's patients speak (patients' language tags), when known.

    Returns:
        The specs and the findings; the specs are None when there is an error.
    """
    try:
        specs = parse_programs(text)
    except ProgramFileError as exc:
        return LintResult(None, [_error(e) for e in exc.errors])
    root = compose(text)
    findings: list[Finding] = []
    if root is not None:
        for i, spec in enumerate(specs):
            findings += _program_warnings(root, i, spec, segment_limit, site_languages)
    return LintResult(specs, sorted(findings, key=lambda f: f.line))


def _error(error: ProgramError) -> Finding:
    return Finding("error", error.line, error.field, error.reason)


def _program_warnings(
    root: yaml.Node, i: int, spec: ProgramSpec, limit: int, site_languages: Collection[str] | None
) -> list[Finding]:
    out: list[Finding] = []
    texts = spec.templates.model_dump(exclude_none=True) if spec.templates else {}
    for language, wording in texts.items():
        line = line_of(root, ("programs", i, "templates", language))
        for message in template_warnings(spec, language, wording, limit):
            out.append(Finding("warning", line, f"templates.{language}", message, spec.id))
    if texts and site_languages is not None:
        wanted = {language_of(tag) for tag in site_languages}
        if spec.when.languages:
            wanted &= set(spec.when.languages)
        for language in sorted(wanted - set(texts)):
            out.append(
                Finding(
                    "warning",
                    line_of(root, ("programs", i, "templates")),
                    "templates",
                    f"no {language} wording, and the site's patients include {LANGUAGE_NAMES[language]} "
                    "speakers: they get midbot's built-in text for this program instead",
                    spec.id,
                )
            )
    return out


def template_warnings(spec: ProgramSpec, language: str, wording: str, limit: int) -> list[str]:
    """What to check in one template: reply choices, opt-out wording, drug names, segments."""
    out = [
        message
        for message in (
            _reply_choices(spec.kind, language, wording),
            _greeting(language, wording),
            _opt_out(spec, wording),
            _drug_names(spec, wording),
            _segments(spec, language, wording, limit),
        )
        if message
    ]
    return out


def first_contact(spec: ProgramSpec) -> bool:
    """A program whose text can be the first a patient gets from midbot (a new therapy's start)."""
    trigger = spec.trigger
    return (
        spec.kind == "new_start"
        or trigger.first_fill is not None
        or (trigger.event is not None and trigger.event.name in _FIRST_EVENTS)
    )


def _has_word(wording: str, word: str) -> bool:
    return re.search(rf"(?<![\w$.,]){re.escape(word)}(?![\w])", wording, re.IGNORECASE) is not None


def _reply_choices(kind: str, language: str, wording: str) -> str | None:
    """The kind's dialog waits for an answer: the text must say what to reply."""
    missing: list[str] = []
    if kind in _NUMBERED:
        missing = [n for n in _NUMBERED[kind] if not _has_word(wording, n)]
    elif kind in _WORDS:
        missing = [
            " / ".join(options)
            for options in _WORDS[kind][language]
            if not any(_has_word(wording, option) for option in options)
        ]
    replies = _REPLY[language].search(wording) is not None
    if not missing and replies:
        return None
    what = f"missing {', '.join(missing)}" if missing else "it does not say to reply"
    return f"no reply choices ({what}): the {KIND_WORDS[kind]} dialog expects {_WHAT_FOR[kind]}"


def _greeting(language: str, wording: str) -> str | None:
    """Every outreach names the pharmacy: wording that does not gets the greeting put in front of it."""
    if "{site_name}" in wording:
        return None
    greeting = render("greet", language, first_name="{first_name}", site_name="{site_name}")
    return (
        f'does not name the pharmacy with {{site_name}}: midbot puts "{greeting}" in front of it '
        "(unless the text spells the site's name exactly)"
    )


def _opt_out(spec: ProgramSpec, wording: str) -> str | None:
    if not first_contact(spec) or "STOP" in wording:  # the engine's own test before it appends its line
        return None
    return (
        'no opt-out wording on what can be a patient\'s first text (e.g. "Reply STOP to opt out." / '
        '"Para cancelar, responda STOP."): midbot appends its own line, which makes the text longer'
    )


def _drug_names(spec: ProgramSpec, wording: str) -> str | None:
    named: set[str] = set()
    for word in re.findall(r"[\w-]+", wording):
        key = drug_key(word)
        if key is not None:
            named.add(word if word.lower() == key else f"{word} ({key})")
    named |= {d for d in spec.when.drugs if _has_word(wording, d) and drug_key(d) is None}
    if not named:
        return None
    return (
        f"names a drug: {', '.join(sorted(named))}; patients who have not agreed to detailed messages "
        "would read it: write {drug}, which names the medicine only with their consent"
    )


def rendered_sample(spec: ProgramSpec, language: str, wording: str) -> str:
    """The template as it would go out to a long-named patient: greeting and opt-out line as the engine adds."""
    body = fill_custom(wording, SAMPLE) or wording
    if SAMPLE["site_name"] not in body:
        greeting = render("greet", language, first_name=SAMPLE["first_name"], site_name=SAMPLE["site_name"])
        body = f"{greeting} {body}"
    if first_contact(spec) and "STOP" not in body:
        body = f"{body} {render('stop_line', language)}"
    return body


def _segments(spec: ProgramSpec, language: str, wording: str, limit: int) -> str | None:
    info = segment_info(rendered_sample(spec, language, wording))
    if info.segments <= limit:
        return None
    return (
        f"{info.segments} {info.encoding} segments as sent, more than {limit} (MIDBOT_MAX_TEMPLATE_SEGMENTS)"
    )


async def site_languages(session: AsyncSession, site_id: str | None) -> set[str]:
    """The language tags of a site's patients (their own site's, or with a prescription there); every
    patient's when ``site_id`` is None."""
    query = select(Patient.language).distinct()
    if site_id is not None:
        filled_here = select(Prescription.patient_id).where(Prescription.site_id == site_id)
        query = query.where(or_(Patient.site_id == site_id, Patient.id.in_(filled_here)))
    return {str(tag) for tag in await session.scalars(query) if tag}
