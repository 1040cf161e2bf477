"""Side-effect check-in flow: what do you feel, how bad (0-4), how many doses missed."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from typing import Any

from conversations.flows.common import Step, choice_of, lang, new_state, number_of, therapy_for
from conversations.flows.triage import missed_doses, severity_answer, triage
from conversations.symptoms import examples, symptoms_for
from conversations.templates import render
from conversations.types import Classification, ConversationState, FlowStart, PatientFacts, SignalSpec

__all__ = ["FLOW", "STATES", "begin", "question", "step", "timeout"]

_LOGGER = logging.getLogger(__name__)

FLOW = "side_effect_checkin"
# Every step this flow can open (ConversationState.state): the dialog crawl enumerates these.
STATES: tuple[str, ...] = ("awaiting_symptoms", "awaiting_severity", "awaiting_missed")
OPEN_HOURS = 24
STEP_HOURS = 12
SOURCE = "checkin"


def begin(start: FlowStart, facts: PatientFacts, now: datetime) -> Step:
    """ "Any side effects since your last fill?" naming the symptoms that matter for the drug."""
    therapy = therapy_for(facts, start.prescription_id)
    symptoms = list(symptoms_for(therapy.drug if therapy else None))
    state = new_state(
        FLOW, "awaiting_symptoms", "checkin_open", now, OPEN_HOURS, start.prescription_id, asked=symptoms
    )
    return Step(texts=(_opening(facts, start.prescription_id, symptoms),), next_state=state)


def _opening(facts: PatientFacts, prescription_id: str | None, symptoms: list[str]) -> str:
    language = lang(facts)
    therapy = therapy_for(facts, prescription_id)
    listed = examples(symptoms, language)
    if facts.detailed_consent and therapy is not None and therapy.drug:
        return render("checkin_ask_drug", language, drug=therapy.drug, examples=listed)
    return render("checkin_ask", language, examples=listed)


def question(state: ConversationState, facts: PatientFacts) -> str:
    """The current step's question, for a re-ask."""
    language = lang(facts)
    if state.state == "awaiting_severity":
        return render("checkin_severity", language)
    if state.state == "awaiting_missed":
        return render("checkin_missed", language)
    asked = state.context.get("asked") or list(symptoms_for(None))
    return _opening(facts, state.prescription_id, list(asked))


def _missed_value(cls: Classification) -> int | None:
    value = cls.values.get("missed_doses")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _ask_missed(state: ConversationState, now: datetime, **data: Any) -> Step:
    missed_state = new_state(
        FLOW, "awaiting_missed", "missed_doses", now, STEP_HOURS, state.prescription_id, **data
    )
    return Step(next_state=missed_state)


def _graded(
    state: ConversationState,
    symptoms: list[str],
    severity: str,
    cls: Classification,
    facts: PatientFacts,
    now: datetime,
    missed: int | None,
) -> Step:
    """Triage the symptoms, then ask about missed doses unless the patient must call now."""
    triaged = triage(symptoms, severity, cls, facts, now, state.prescription_id, SOURCE)
    if any(task.priority == 1 for task in triaged.tasks):
        return triaged  # the patient is calling the clinic; no more questions now
    if missed is not None:
        return triaged.plus(missed_doses(missed, facts, now, state.prescription_id, SOURCE))
    asked = _ask_missed(state, now, symptoms=symptoms)
    return triaged.plus(Step(texts=(render("checkin_missed", lang(facts)),))).plus(asked)


def _symptoms_step(
    state: ConversationState, cls: Classification, facts: PatientFacts, now: datetime
) -> Step | None:
    labels = set(cls.labels)
    missed = _missed_value(cls)
    language = lang(facts)
    vague = not cls.symptoms and not cls.severity and not state.context.get("asked_what")
    if vague and labels & {"confirm", "side_effect"}:
        # "yes" / "I feel bad" without saying what: ask once what they feel, in the same step.
        next_state = replace(state, context={**state.context, "asked_what": True})
        used = frozenset({"confirm", "side_effect"})
        return Step(texts=(render("checkin_what", language),), next_state=next_state, used=used)
    if "side_effect" in labels or cls.symptoms:
        symptoms = list(cls.symptoms)
        if cls.severity:
            return _graded(state, symptoms, cls.severity, cls, facts, now, missed)
        data = {"symptoms": symptoms, "missed": missed, "text": cls.text}
        next_state = new_state(
            FLOW, "awaiting_severity", "checkin_severity", now, STEP_HOURS, state.prescription_id, **data
        )
        return Step(
            texts=(render("checkin_severity", language),),
            next_state=next_state,
            used=frozenset({"side_effect"}),
        )
    if "decline" in labels or choice_of(cls) == 0:
        good = Step(texts=(render("checkin_good", language),), used=frozenset({"decline"}))
        if missed is not None:
            return good.plus(missed_doses(missed, facts, now, state.prescription_id, SOURCE))
        return good.plus(Step(texts=(render("checkin_missed", language),))).plus(_ask_missed(state, now))
    if "missed_dose" in labels:
        return missed_doses(missed, facts, now, state.prescription_id, SOURCE)
    return None


def step(state: ConversationState, cls: Classification, facts: PatientFacts, now: datetime) -> Step | None:
    """One answer; None when the answer does not fit the step (the engine re-asks)."""
    if state.state == "awaiting_severity":
        severity = severity_answer(cls)
        if severity is None:
            return None
        symptoms = list(dict.fromkeys([*state.context.get("symptoms", []), *cls.symptoms]))
        graded = _graded(state, symptoms, severity, cls, facts, now, state.context.get("missed"))
        return replace(graded, used=graded.used | {"side_effect"})
    if state.state == "awaiting_missed":
        count = _missed_value(cls)
        if count is None and "decline" in cls.labels:
            count = 0  # "no" / "none"
        if count is None:
            count = number_of(cls, "missed_doses")
        if count is None:
            return None
        return missed_doses(count, facts, now, state.prescription_id, SOURCE)
    return _symptoms_step(state, cls, facts, now)


def timeout(state: ConversationState, facts: PatientFacts, now: datetime) -> Step:
    """No answer: a reported but ungraded symptom still reaches a pharmacist; otherwise close quietly."""
    if state.state == "awaiting_severity":
        symptoms = list(state.context.get("symptoms", []))
        triaged = triage(symptoms, None, None, facts, now, state.prescription_id, SOURCE)
        return replace(triaged, texts=())
    if state.state == "awaiting_symptoms":
        return Step(signals=(SignalSpec("checkin_unanswered", {}, state.prescription_id),))
    return Step()
