"""Abandonment recovery flow: a ready prescription not picked up or shipped after some days."""

from __future__ import annotations

import logging
import re
from datetime import datetime

from conversations.flows.common import (
    Step,
    choice_of,
    has_any,
    lang,
    med_values,
    new_state,
    next_opening,
    therapy_for,
    when_text,
)
from conversations.flows.copay import open_financial
from conversations.templates import render
from conversations.types import (
    Classification,
    ConversationState,
    FlowStart,
    PatientFacts,
    SignalSpec,
    TaskSpec,
)

__all__ = ["FLOW", "STATES", "begin", "question", "reason_category", "step", "timeout"]

_LOGGER = logging.getLogger(__name__)

FLOW = "abandonment_recovery"
# Every step this flow can open (ConversationState.state): the dialog crawl enumerates these.
STATES: tuple[str, ...] = ("awaiting_choice", "awaiting_reason")
CHOICE_HOURS = 48
REASON_HOURS = 24

# Reason categories for "no longer need it", checked in order (English and Spanish keywords).
_REASONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cost", ("afford", "expensive", "cost", "price", "money", "caro", "costo", "dinero", "pagar")),
    ("side_effects", ("side effect", "side effects", "made me sick", "efecto", "efectos", "me cae mal")),
    (
        "prescriber_stopped",
        (
            "doctor",
            "oncologist",
            "stopped",
            "discontinued",
            "changed",
            "medico",
            "doctora",
            "suspendio",
            "cambio",
        ),
    ),
    ("other_pharmacy", ("other pharmacy", "another pharmacy", "elsewhere", "mail order", "otra farmacia")),
    ("hospitalized", ("hospital", "hospice", "hospitalizado", "hospitalizada")),
    ("feels_better", ("better", "feel fine", "mejor")),
    ("patient_choice", ("don't want", "do not want", "no quiero", "decided", "decidi")),
)
_NO_LONGER = ("no longer", "don't need", "do not need", "not needed", "ya no", "no lo necesito")


def reason_category(cls: Classification) -> str:
    """A short category for why the patient no longer needs the prescription."""
    if "cost_concern" in cls.labels:
        return "cost"
    if "side_effect" in cls.labels:
        return "side_effects"
    for category, words in _REASONS:
        if has_any(cls.text, words):
            return category
    return "other"


def _primary(start: FlowStart, facts: PatientFacts) -> bool:
    flag = start.params.get("primary")
    if isinstance(flag, bool):
        return flag
    therapy = therapy_for(facts, start.prescription_id)
    return therapy is None or therapy.last_fill_on is None


def begin(start: FlowStart, facts: PatientFacts, now: datetime) -> Step:
    """ "Reply 1 to schedule pickup or delivery, 2 if cost is a problem, 3 if you no longer need it"."""
    days = start.params.get("days", start.params.get("after_days"))
    days = days if isinstance(days, int) and not isinstance(days, bool) and days > 0 else None
    state = new_state(
        FLOW,
        "awaiting_choice",
        None,
        now,
        CHOICE_HOURS,
        start.prescription_id,
        days=days,
        primary=_primary(start, facts),
    )
    return Step(texts=(_ask(facts, start.prescription_id, days),), next_state=state)


def _ask(facts: PatientFacts, prescription_id: str | None, days: int | None) -> str:
    language = lang(facts)
    med = med_values(facts, therapy_for(facts, prescription_id))
    if days is None:
        return render("abandon_ask_nodays", language, **med)
    days_text = render("day_one", language) if days == 1 else render("day_many", language, days=days)
    return render("abandon_ask", language, days_text=days_text, **med)


def question(state: ConversationState, facts: PatientFacts) -> str:
    """The current step's question, for a re-ask."""
    if state.state == "awaiting_reason":
        return render("abandon_why", lang(facts))
    return _ask(facts, state.prescription_id, state.context.get("days"))


def _scheduled(state: ConversationState, facts: PatientFacts, now: datetime) -> Step:
    task = TaskSpec(
        queue="refill",
        kind="schedule_pickup",
        title="Schedule pickup or delivery of a ready prescription",
        priority=3,
        detail={"source": FLOW, "days_ready": state.context.get("days")},
        prescription_id=state.prescription_id,
    )
    signal = SignalSpec("pickup_scheduled", {"source": FLOW}, state.prescription_id)
    language = lang(facts)
    when = when_text(facts.site, next_opening(facts.site, now), now, language)
    text = render("abandon_scheduled", language, when=when)
    return Step(
        texts=(text,), tasks=(task,), signals=(signal,), used=frozenset({"confirm", "refill_request"})
    )


def _declined(
    state: ConversationState, cls: Classification | None, facts: PatientFacts, now: datetime
) -> Step:
    """Record why the patient does not want it; a pharmacist should know."""
    reason = reason_category(cls) if cls else "not_given"
    kind = "primary_abandonment" if state.context.get("primary", True) else "patient_declined"
    signal = SignalSpec(kind, {"reason": reason}, state.prescription_id)
    task = TaskSpec(
        queue="clinical",
        kind=kind,
        title=f"Patient no longer wants a ready prescription ({reason})",
        priority=2 if reason == "side_effects" else 3,
        detail={"reason": reason, "text": cls.text if cls else None, "days_ready": state.context.get("days")},
        prescription_id=state.prescription_id,
    )
    # The reason text goes to the pharmacist whole: its other labels need no separate task.
    used = frozenset({"decline", *(cls.labels if cls else ())})
    result = Step(tasks=(task,), signals=(signal,), used=used)
    if cls is None:
        return result
    result = result.plus(Step(texts=(render("abandon_noted", lang(facts)),)))
    if reason == "cost":
        result = result.plus(open_financial(facts, now, state.prescription_id, FLOW))
    return result


def step(state: ConversationState, cls: Classification, facts: PatientFacts, now: datetime) -> Step | None:
    """One answer; None when the answer does not fit the step (the engine re-asks)."""
    if state.state == "awaiting_reason":
        return _declined(state, cls, facts, now) if cls.text.strip() else None
    choice = choice_of(cls)
    labels = set(cls.labels)
    if choice == 1 or (choice is None and labels & {"confirm", "refill_request"} and "decline" not in labels):
        return _scheduled(state, facts, now)
    if choice == 2 or (choice is None and "cost_concern" in labels):
        opened = open_financial(facts, now, state.prescription_id, FLOW)
        return Step(used=frozenset({"cost_concern"})).plus(opened)
    if choice == 3 or (choice is None and ("decline" in labels or has_any(cls.text, _NO_LONGER))):
        rest = re.sub(r"^\s*#?\s*3\b[\s.,:;-]*", "", cls.text)
        if reason_category(cls) != "other" or (choice == 3 and len(rest.split()) >= 2):
            return _declined(state, cls, facts, now)  # the reason came with the choice
        next_state = new_state(
            FLOW, "awaiting_reason", None, now, REASON_HOURS, state.prescription_id, **_keep(state)
        )
        return Step(
            texts=(render("abandon_why", lang(facts)),), next_state=next_state, used=frozenset({"decline"})
        )
    return None


def _keep(state: ConversationState) -> dict[str, object]:
    return {"days": state.context.get("days"), "primary": state.context.get("primary", True)}


def timeout(state: ConversationState, facts: PatientFacts, now: datetime) -> Step:
    """No answer: the refill queue follows up the ready prescription; no reason: recorded as not given."""
    if state.state == "awaiting_reason":
        return _declined(state, None, facts, now)
    task = TaskSpec(
        queue="refill",
        kind="not_picked_up",
        title="No reply about a ready prescription not picked up",
        priority=3,
        detail={"flow": FLOW, "days_ready": state.context.get("days"), "hours": CHOICE_HOURS},
        prescription_id=state.prescription_id,
    )
    signal = SignalSpec("unreachable", {"flow": FLOW, "hours": CHOICE_HOURS}, state.prescription_id)
    return Step(tasks=(task,), signals=(signal,))
