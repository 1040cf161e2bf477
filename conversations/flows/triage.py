"""Safety and symptom triage shared by every flow: emergencies, side-effect severity, missed doses."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from conversations.flows.common import (
    Step,
    ack_sentence,
    choice_of,
    has_any,
    lang,
    next_opening,
    site_values,
    when_text,
)
from conversations.symptoms import RED_FLAGS, SYMPTOM_LABELS
from conversations.symptoms import label as symptom_label
from conversations.templates import render
from conversations.types import (
    SEVERITIES,
    Classification,
    ConversationState,
    PatientFacts,
    SignalSpec,
    TaskSpec,
)

__all__ = [
    "CALL_CLINIC_SYMPTOMS",
    "GRADES",
    "emergency",
    "emergency_template",
    "is_self_harm",
    "missed_doses",
    "red_flags",
    "severity_answer",
    "triage",
]

_LOGGER = logging.getLogger(__name__)

GRADES: dict[str, int] = {name: grade for grade, name in enumerate(SEVERITIES)}
# DOMAIN.md: fever >= the site's threshold or chills means "call now" (the clinic), not 911.
CALL_CLINIC_SYMPTOMS = frozenset({"fever", "chills"})
_SELF_HARM_SYMPTOMS = frozenset({"self_harm", "suicidal_thoughts", "suicide"})
_SELF_HARM_WORDS = (
    "suicide", "suicidal", "kill myself", "end my life", "hurt myself", "harm myself", "want to die",
    "better off dead", "matarme", "suicidarme", "suicidio", "quitarme la vida", "hacerme dano",
    "no quiero vivir", "quiero morir",
)  # fmt: skip


def is_self_harm(cls: Classification) -> bool:
    """True when the text speaks of self-harm (the reply then also gives 988)."""
    return bool(_SELF_HARM_SYMPTOMS.intersection(cls.symptoms)) or has_any(cls.text, _SELF_HARM_WORDS)


def emergency_template(cls: Classification, self_harm: bool) -> str:
    """DOMAIN's two groups: fever or chills alone is "call the clinic now" (its after-hours number);
    anything else — chest pain, trouble breathing, fainting, bleeding that will not stop, self-harm — is 911."""
    if not self_harm and cls.symptoms and set(cls.symptoms) <= CALL_CLINIC_SYMPTOMS:
        return "emergency_call_clinic"
    return "emergency"


def emergency(cls: Classification, facts: PatientFacts, state: ConversationState | None) -> Step:
    """Emergency advice (911, ER; 988 for self-harm) and an urgent task; the open dialog is closed.

    The dialog closes because a person takes over; the task says which flow and step were open.
    """
    language = lang(facts)
    self_harm = is_self_harm(cls)
    texts = [render(emergency_template(cls, self_harm), language, **site_values(facts))]
    if self_harm:
        texts.append(render("emergency_988", language))
    task = TaskSpec(
        queue="urgent_clinical",
        kind="emergency",
        title="Emergency words in a patient text" + (" (self-harm)" if self_harm else ""),
        priority=1,
        detail={
            "text": cls.text,
            "symptoms": list(cls.symptoms),
            "self_harm": self_harm,
            "flow": state.flow if state else None,
            "step": state.state if state else None,
        },
        prescription_id=state.prescription_id if state else None,
    )
    _LOGGER.info("emergency reply for patient %s (self_harm=%s)", facts.patient_id, self_harm)
    return Step(texts=tuple(texts), tasks=(task,), used=frozenset(cls.labels), kind="emergency")


def severity_answer(cls: Classification) -> str | None:
    """The severity an answer to the 0-4 question gives: the classifier's, else a bare 0-4 choice."""
    if cls.severity in GRADES:
        return cls.severity
    choice = choice_of(cls)
    if choice is not None and 0 <= choice < len(SEVERITIES) and cls.text.strip().rstrip(".").isdigit():
        return SEVERITIES[choice]
    return None


def red_flags(symptoms: Sequence[str], cls: Classification | None, facts: PatientFacts) -> list[str]:
    """The reported symptoms that need the care team at once whatever the severity."""
    value = cls.values.get("temperature_f") if cls else None
    temperature = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    has_temp = temperature is not None
    hot = temperature is not None and temperature >= facts.site.fever_threshold_f
    flags: list[str] = []
    for symptom in symptoms:
        if symptom == "fever":
            if hot or (not has_temp and facts.on_chemotherapy):
                flags.append(symptom)
        elif symptom in RED_FLAGS:
            flags.append(symptom)
    if hot and "fever" not in flags:
        flags.append("fever")
    return flags


def triage(
    symptoms: Sequence[str],
    severity: str | None,
    cls: Classification | None,
    facts: PatientFacts,
    now: datetime,
    prescription_id: str | None,
    source: str,
) -> Step:
    """Route reported symptoms by severity.

    Severe, very severe or any red flag: urgent_clinical task (priority 1) and "call us now". Moderate or
    not stated: clinical task (priority 2, same business day). Mild: a self-care note. Every reported
    symptom also becomes a ``side_effect`` signal.

    Args:
        symptoms: canonical symptom names (empty: the patient did not say which).
        severity: one of SEVERITIES, or None when not stated.
        cls: the classification the symptoms came from (for the text and a temperature), if any.
        facts: the patient.
        now: the current time.
        prescription_id: the therapy the dialog is about.
        source: where the report came from ("checkin", "free_text", "refill_reminder"...).
    """
    language = lang(facts)
    grade = GRADES.get(severity) if severity else None
    names = list(dict.fromkeys(symptoms)) or ["unspecified"]
    flags = red_flags(names, cls, facts)
    signals = tuple(
        SignalSpec(
            "side_effect",
            {"symptom": s, "severity": severity, "grade": grade, "source": source},
            prescription_id,
        )
        for s in names
    )
    detail = {
        "symptoms": names,
        "severity": severity,
        "grade": grade,
        "red_flags": flags,
        "source": source,
        "text": cls.text if cls else None,
    }
    what = _in_words(names, severity)
    if flags or (grade is not None and grade >= 3):
        task = TaskSpec(
            "urgent_clinical", "side_effect", f"Urgent side effect: {what}", 1, detail, prescription_id
        )
        text = render("triage_urgent", language, **site_values(facts))
        return Step(texts=(text,), tasks=(task,), signals=signals, used=frozenset({"side_effect"}))
    if grade is None or grade == 2:
        task = TaskSpec("clinical", "side_effect", f"Side effect: {what}", 2, detail, prescription_id)
        when = when_text(facts.site, next_opening(facts.site, now), now, language)
        text = render("triage_moderate", language, when=when)
        return Step(texts=(text,), tasks=(task,), signals=signals, used=frozenset({"side_effect"}))
    if grade == 1:
        return Step(texts=(_self_care(names, facts),), signals=signals, used=frozenset({"side_effect"}))
    return Step(texts=(render("thanks", language),), signals=signals, used=frozenset({"side_effect"}))


def _in_words(symptoms: Sequence[str], severity: str | None) -> str:
    """A task title's words for staff: "tiredness, very severe (4 of 4)", never "fatigue (very_severe)"."""
    words = ", ".join(
        symptom_label(s, "en") if s in SYMPTOM_LABELS else s.replace("_", " ") for s in symptoms
    )
    if severity in GRADES:
        words += f", {severity.replace('_', ' ')} ({GRADES[severity]} of 4)"
    return words


def _self_care(symptoms: Sequence[str], facts: PatientFacts) -> str:
    language = lang(facts)
    for symptom in symptoms:
        note = facts.site.self_care.get(symptom, {}).get(language)
        if note:
            return note
    return render("triage_mild", language, **site_values(facts))


def missed_doses(
    count: int | None, facts: PatientFacts, now: datetime, prescription_id: str | None, source: str
) -> Step:
    """Record missed doses: a signal when any, a clinical task when two or more (or the count is unknown)."""
    language = lang(facts)
    signals: tuple[SignalSpec, ...] = ()
    if count:
        signals = (SignalSpec("missed_dose", {"count": count, "source": source}, prescription_id),)
    if count is not None and count < 2:
        return Step(
            texts=(render("checkin_done", language),), signals=signals, used=frozenset({"missed_dose"})
        )
    title = f"Missed doses: {count} in 7 days" if count is not None else "Patient reports missed doses"
    task = TaskSpec(
        "clinical",
        "missed_dose",
        title,
        3,
        {"count": count, "source": source},
        prescription_id=prescription_id,
    )
    if count is None:
        text = ack_sentence(facts, now)
    else:
        when = when_text(facts.site, next_opening(facts.site, now), now, language)
        text = render("checkin_missed_task", language, when=when)
    return Step(texts=(text,), tasks=(task,), signals=signals, used=frozenset({"missed_dose"}))
