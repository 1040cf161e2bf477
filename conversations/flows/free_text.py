"""The "anything else" path: texts outside a dialog, answers a flow cannot use, and second intents."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from conversations.flows import refill
from conversations.flows.common import Step, ack_sentence, has_any, lang, new_state, site_values
from conversations.flows.copay import open_financial
from conversations.flows.triage import missed_doses, red_flags, severity_answer, triage
from conversations.templates import render
from conversations.types import (
    PRIMARY_ORDER,
    Classification,
    ConversationState,
    FlowStart,
    PatientFacts,
    TaskSpec,
)

__all__ = ["FLOW", "STATES", "SECONDARY", "begin", "question", "respond", "secondary", "step", "timeout"]

_LOGGER = logging.getLogger(__name__)

FLOW = "free_text"
# Every step this flow can open (ConversationState.state): the dialog crawl enumerates these.
STATES: tuple[str, ...] = ("awaiting_severity",)
SOURCE = "free_text"
SEVERITY_HOURS = 12
# Labels honoured as a second intent next to whatever the message's main answer was.
SECONDARY: tuple[str, ...] = (
    "side_effect",
    "missed_dose",
    "cost_concern",
    "call_request",
    "refill_request",
    "question",
)
_MED_WORDS = (
    "medicine", "medication", "meds", "pill", "pills", "dose", "doses", "dosage", "tablet", "tablets",
    "capsule", "capsules", "take it", "taking", "side effect", "side effects", "food", "interaction",
    "medicina", "medicamento", "pastilla", "pastillas", "dosis", "tomar", "tomarla", "tableta", "tabletas",
)  # fmt: skip

Handler = Callable[[Classification, PatientFacts, datetime, str | None, bool], Step]


def _only_rx(facts: PatientFacts) -> str | None:
    return facts.therapies[0].prescription_id if len(facts.therapies) == 1 else None


def _side_effect(
    cls: Classification, facts: PatientFacts, now: datetime, rx: str | None, may_ask: bool
) -> Step:
    symptoms = list(cls.symptoms)
    if cls.severity or red_flags(symptoms, cls, facts) or not may_ask:
        return triage(symptoms, cls.severity, cls, facts, now, rx, SOURCE)
    state = new_state(
        FLOW,
        "awaiting_severity",
        "checkin_severity",
        now,
        SEVERITY_HOURS,
        rx,
        symptoms=symptoms,
        text=cls.text,
    )
    return Step(
        texts=(render("checkin_severity", lang(facts)),), next_state=state, used=frozenset({"side_effect"})
    )


def _is_clinical(cls: Classification, facts: PatientFacts) -> bool:
    drugs = [t.drug for t in facts.therapies if t.drug]
    return bool(cls.symptoms) or has_any(cls.text, _MED_WORDS) or has_any(cls.text, drugs)


def _question(cls: Classification, facts: PatientFacts, now: datetime, rx: str | None, may_ask: bool) -> Step:
    clinical = _is_clinical(cls, facts)
    call = "call_request" in cls.labels
    task = TaskSpec(
        queue="clinical" if clinical else "general",
        kind="call_request" if call else "question",
        title="Patient asks for a call" if call else "Patient question",
        priority=3,
        detail={"text": cls.text, "source": SOURCE},
        prescription_id=rx,
    )
    texts = (render("thanks_message", lang(facts)), ack_sentence(facts, now))
    return Step(texts=texts, tasks=(task,), used=frozenset({"call_request", "question"}))


def _general(kind: str, title: str, priority: int = 3) -> Handler:
    def handler(
        cls: Classification, facts: PatientFacts, now: datetime, rx: str | None, may_ask: bool
    ) -> Step:
        task = TaskSpec("general", kind, title, priority, {"text": cls.text, "source": SOURCE}, rx)
        if kind == "wrong_number":
            texts: tuple[str, ...] = (render("wrong_number", lang(facts)),)
        elif kind == "possible_opt_out":
            texts = (render("optout_how", lang(facts), **site_values(facts)),)
        else:
            texts = (render("thanks_message", lang(facts)), ack_sentence(facts, now))
        return Step(texts=texts, tasks=(task,), used=frozenset({cls.intent}))

    return handler


def _missed(cls: Classification, facts: PatientFacts, now: datetime, rx: str | None, may_ask: bool) -> Step:
    count = cls.values.get("missed_doses")
    count = count if isinstance(count, int) and not isinstance(count, bool) else None
    return missed_doses(count, facts, now, rx, SOURCE)


def _cost(cls: Classification, facts: PatientFacts, now: datetime, rx: str | None, may_ask: bool) -> Step:
    amount = cls.values.get("amount")
    copay = float(amount) if isinstance(amount, int | float) and not isinstance(amount, bool) else None
    return open_financial(facts, now, rx, SOURCE, copay)


def _refill(cls: Classification, facts: PatientFacts, now: datetime, rx: str | None, may_ask: bool) -> Step:
    if may_ask:
        return refill.request_path(facts, now, rx, SOURCE)
    return refill.queue_refill("unknown", facts, rx, SOURCE)


def _help(cls: Classification, facts: PatientFacts, now: datetime, rx: str | None, may_ask: bool) -> Step:
    return Step(texts=(render("help", lang(facts), **site_values(facts)),), used=frozenset({"help"}))


def _ack(cls: Classification, facts: PatientFacts, now: datetime, rx: str | None, may_ask: bool) -> Step:
    # "thanks" after a closed dialog: nothing to do, and no reply (a reply would invite another "ok").
    return Step(used=frozenset({"ack"}))


_HANDLERS: dict[str, Handler] = {
    "side_effect": _side_effect,
    "missed_dose": _missed,
    "cost_concern": _cost,
    "call_request": _question,
    "question": _question,
    "refill_request": _refill,
    "help": _help,
    "ack": _ack,
    "wrong_number": _general("wrong_number", "Patient says this is the wrong number"),
    "opt_out": _general("possible_opt_out", "Patient may want to stop texts", 2),
    "reschedule": _general("reschedule", "Patient asks to reschedule"),
}
_UNKNOWN = _general("unrecognized", "Patient message needs a person")


def respond(
    cls: Classification, facts: PatientFacts, now: datetime, prescription_id: str | None = None
) -> Step:
    """Handle a message outside any dialog step: the main intent, then any second intents.

    Every message ends in a reply, a dialog step or a task, except a bare "thanks" (no reply needed).
    """
    rx = prescription_id or _only_rx(facts)
    handler = _HANDLERS.get(cls.intent, _UNKNOWN)
    result = handler(cls, facts, now, rx, True)
    used = result.used | {cls.intent}
    return result.plus(secondary(cls, used, facts, now, rx, may_ask=result.next_state is None))


def secondary(
    cls: Classification,
    used: frozenset[str],
    facts: PatientFacts,
    now: datetime,
    prescription_id: str | None,
    may_ask: bool,
) -> Step:
    """Honour the labels of a message that the main answer did not use.

    Args:
        cls: the classification.
        used: labels already acted on.
        facts: the patient.
        now: the current time.
        prescription_id: the therapy in question.
        may_ask: True when no dialog step is open, so a follow-up question (severity, delivery) may be
            asked; otherwise the intent goes straight to a task.
    """
    labels = set(cls.labels)
    result = Step(used=used)
    for label in PRIMARY_ORDER:
        if label not in SECONDARY or label not in labels or label in result.used:
            continue
        ask = may_ask and result.next_state is None
        result = result.plus(_HANDLERS[label](cls, facts, now, prescription_id, ask))
        _LOGGER.debug("second intent %s honoured for patient %s", label, facts.patient_id)
    return result


# -- the free_text dialog: only a severity question after an ungraded symptom ------------------------


def begin(start: FlowStart, facts: PatientFacts, now: datetime) -> Step:
    """Free text is never an outreach."""
    raise ValueError("free_text is not a flow an outreach can start")


def question(state: ConversationState, facts: PatientFacts) -> str:
    """The severity question, for a re-ask."""
    return render("checkin_severity", lang(facts))


def step(state: ConversationState, cls: Classification, facts: PatientFacts, now: datetime) -> Step | None:
    """The severity answer: triage and close; None when the answer is not a severity."""
    severity = severity_answer(cls)
    if severity is None:
        return None
    symptoms = list(dict.fromkeys([*state.context.get("symptoms", []), *cls.symptoms]))
    return triage(symptoms, severity, cls, facts, now, state.prescription_id, SOURCE)


def timeout(state: ConversationState, facts: PatientFacts, now: datetime) -> Step:
    """No severity given: the symptom still reaches a pharmacist (clinical task, same business day)."""
    symptoms = list(state.context.get("symptoms", []))
    triaged = triage(symptoms, None, None, facts, now, state.prescription_id, SOURCE)
    return Step(tasks=triaged.tasks, signals=triaged.signals)
