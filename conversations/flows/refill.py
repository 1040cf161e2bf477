"""Refill reminder flow: 1 refill (delivery or pickup), 2 still have enough (pill count), 3 talk to us."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta

from conversations.flows.common import (
    Step,
    ack_sentence,
    as_utc,
    choice_of,
    has_any,
    lang,
    local_today,
    med_values,
    new_state,
    next_opening,
    number_of,
    site_values,
    therapy_for,
    when_text,
)
from conversations.templates import render
from conversations.types import (
    Classification,
    ConversationState,
    FlowStart,
    PatientFacts,
    SignalSpec,
    TaskSpec,
)

__all__ = [
    "FLOW",
    "STATES",
    "begin",
    "days_left_until_run_out",
    "question",
    "queue_refill",
    "request_path",
    "step",
    "timeout",
]

_LOGGER = logging.getLogger(__name__)

FLOW = "refill_reminder"
# Every step this flow can open (ConversationState.state): the dialog crawl enumerates these.
STATES: tuple[str, ...] = ("awaiting_choice", "awaiting_method", "awaiting_days")
FOLLOWUP_AFTER_HOURS = 24  # one follow-up when the reminder is not answered
UNREACHABLE_AFTER_HOURS = 72  # total, then a refill-queue task
STEP_HOURS = 24
SURPLUS_DAYS = 3  # more medicine left than the fill history predicts, by more than this many days...
SURPLUS_SHARE = 0.2  # ...and by more than this share of the prediction, means missed doses

_DELIVERY_WORDS = ("delivery", "deliver", "ship", "mail", "send", "envio", "enviar", "domicilio", "correo")
_PICKUP_WORDS = ("pickup", "pick up", "pick it up", "recoger", "recogerlo", "paso", "pasar", "farmacia")


def days_left_until_run_out(start: FlowStart, facts: PatientFacts, now: datetime) -> int | None:
    """Days until the patient runs out: the start's ``days`` param, else what the fill history says."""
    days = start.params.get("days")
    if isinstance(days, int) and not isinstance(days, bool):
        return days
    therapy = therapy_for(facts, start.prescription_id)
    if therapy is None:
        return None
    if therapy.run_out_on is not None:
        return (therapy.run_out_on - local_today(facts.site, now)).days
    return therapy.expected_days_left


def begin(start: FlowStart, facts: PatientFacts, now: datetime) -> Step:
    """The reminder with numbered choices (context refill_reminder)."""
    days = days_left_until_run_out(start, facts, now)
    state = new_state(
        FLOW, "awaiting_choice", "refill_reminder", now, FOLLOWUP_AFTER_HOURS, start.prescription_id
    )
    if days is not None:
        state.context["days"] = days
    return Step(texts=(_reminder(facts, start.prescription_id, days),), next_state=state)


def _reminder(facts: PatientFacts, prescription_id: str | None, days: int | None) -> str:
    language = lang(facts)
    med = med_values(facts, therapy_for(facts, prescription_id))
    if days is None or days <= 0:
        return render("refill_ask_now", language, **med)
    days_text = render("day_one", language) if days == 1 else render("day_many", language, days=days)
    return render("refill_ask", language, days_text=days_text, **med)


def question(state: ConversationState, facts: PatientFacts) -> str:
    """The current step's question, for a re-ask or a follow-up."""
    language = lang(facts)
    if state.state == "awaiting_method":
        return render("refill_method_reask", language)
    if state.state == "awaiting_days":
        return render("refill_ask_days", language)
    return _reminder(facts, state.prescription_id, state.context.get("days"))


def request_path(facts: PatientFacts, now: datetime, prescription_id: str | None, source: str) -> Step:
    """The patient wants a refill: ask delivery or pickup where the site offers both, else queue it."""
    site = facts.site
    if site.offers_delivery and site.offers_pickup:
        state = new_state(FLOW, "awaiting_method", None, now, STEP_HOURS, prescription_id, source=source)
        text = render("refill_method", lang(facts))
        return Step(texts=(text,), next_state=state, used=frozenset({"confirm", "refill_request"}))
    method = "delivery" if site.offers_delivery else "pickup" if site.offers_pickup else "unknown"
    return queue_refill(method, facts, prescription_id, source)


def queue_refill(
    method: str, facts: PatientFacts, prescription_id: str | None, source: str, quiet: bool = False
) -> Step:
    """Open the refill task (method: delivery, pickup or unknown) and record the confirmation."""
    task = TaskSpec(
        queue="refill",
        kind="refill",
        title=f"Refill requested ({method})",
        priority=3,
        detail={"method": method, "source": source},
        prescription_id=prescription_id,
    )
    signal = SignalSpec("refill_confirmed", {"method": method, "source": source}, prescription_id)
    key = {"delivery": "refill_queued_delivery", "pickup": "refill_queued_pickup"}.get(
        method, "refill_queued"
    )
    texts = () if quiet else (render(key, lang(facts)),)
    return Step(texts=texts, tasks=(task,), signals=(signal,), used=frozenset({"confirm", "refill_request"}))


def _days_left(days_left: int, facts: PatientFacts, now: datetime, prescription_id: str | None) -> Step:
    """The patient still has enough: compare the count with the fill history for missed doses."""
    language = lang(facts)
    therapy = therapy_for(facts, prescription_id)
    expected = therapy.expected_days_left if therapy else None
    deferred = SignalSpec("refill_deferred", {"days_left": days_left}, prescription_id)
    surplus = days_left - expected if expected is not None else 0
    if expected is None or surplus <= SURPLUS_DAYS or surplus <= SURPLUS_SHARE * max(expected, 0):
        return Step(
            texts=(render("refill_deferred", language),), signals=(deferred,), used=frozenset({"decline"})
        )
    missed = SignalSpec(
        "missed_dose",
        {
            "surplus_days": surplus,
            "source": "pill_count",
            "days_left": days_left,
            "expected_days_left": expected,
        },
        prescription_id,
    )
    task = TaskSpec(
        queue="clinical",
        kind="missed_dose",
        title=f"Possible missed doses: {surplus} more days of medicine left than expected",
        priority=3,
        detail={"surplus_days": surplus, "days_left": days_left, "expected_days_left": expected},
        prescription_id=prescription_id,
    )
    when = when_text(facts.site, next_opening(facts.site, now), now, language)
    text = render("refill_surplus", language, when=when)
    return Step(
        texts=(text,), tasks=(task,), signals=(missed, deferred), used=frozenset({"decline", "missed_dose"})
    )


def _call(state: ConversationState, cls: Classification, facts: PatientFacts, now: datetime) -> Step:
    clinical = bool(cls.symptoms) or bool({"side_effect", "missed_dose", "question"} & set(cls.labels))
    task = TaskSpec(
        queue="clinical" if clinical else "refill",
        kind="call_request",
        title="Patient asks to talk to a pharmacist",
        priority=3,
        detail={"text": cls.text, "source": FLOW},
        prescription_id=state.prescription_id,
    )
    return Step(
        texts=(ack_sentence(facts, now),), tasks=(task,), used=frozenset({"call_request", "question"})
    )


def step(state: ConversationState, cls: Classification, facts: PatientFacts, now: datetime) -> Step | None:
    """One answer; None when the answer does not fit the step (the engine re-asks)."""
    if state.state == "awaiting_method":
        return _method(state, cls, facts)
    if state.state == "awaiting_days":
        days = number_of(cls, "days_left")
        return None if days is None else _days_left(days, facts, now, state.prescription_id)
    choice = choice_of(cls)
    labels = set(cls.labels)
    if choice == 1 or (choice is None and labels & {"confirm", "refill_request"}):
        return request_path(facts, now, state.prescription_id, FLOW)
    days = cls.values.get("days_left")
    stated = days if isinstance(days, int) and not isinstance(days, bool) else None
    if choice == 2 or (choice is None and ("decline" in labels or stated is not None)):
        if stated is not None:
            return _days_left(stated, facts, now, state.prescription_id)
        next_state = new_state(FLOW, "awaiting_days", None, now, STEP_HOURS, state.prescription_id)
        text = render("refill_ask_days", lang(facts))
        return Step(texts=(text,), next_state=next_state, used=frozenset({"decline"}))
    if choice == 3 or (choice is None and "call_request" in labels):
        return _call(state, cls, facts, now)
    return None


def _method(state: ConversationState, cls: Classification, facts: PatientFacts) -> Step | None:
    choice = choice_of(cls)
    source = str(state.context.get("source", FLOW))
    if choice == 1 or (choice is None and has_any(cls.text, _DELIVERY_WORDS)):
        return queue_refill("delivery", facts, state.prescription_id, source)
    if choice == 2 or (choice is None and has_any(cls.text, _PICKUP_WORDS)):
        return queue_refill("pickup", facts, state.prescription_id, source)
    return None


def timeout(state: ConversationState, facts: PatientFacts, now: datetime) -> Step:
    """No answer: one follow-up after 24 h, an "unreachable" refill task after 72 h in all."""
    if state.state == "awaiting_method":
        # The patient asked for the refill; fill it even without knowing how they want it.
        return queue_refill(
            "unknown", facts, state.prescription_id, str(state.context.get("source", FLOW)), quiet=True
        )
    if state.state == "awaiting_days":
        return Step(signals=(SignalSpec("refill_deferred", {"days_left": None}, state.prescription_id),))
    if not state.context.get("followed_up"):
        prefix = render("followup_prefix", lang(facts), **site_values(facts))
        later = as_utc(now) + timedelta(hours=UNREACHABLE_AFTER_HOURS - FOLLOWUP_AFTER_HOURS)
        next_state = replace(state, context={**state.context, "followed_up": True}, expires_at=later)
        return Step(texts=(prefix, question(state, facts)), next_state=next_state, kind="followup")
    task = TaskSpec(
        queue="refill",
        kind="unreachable",
        title=f"No reply to refill reminder in {UNREACHABLE_AFTER_HOURS} h",
        priority=3,
        detail={"flow": FLOW, "hours": UNREACHABLE_AFTER_HOURS},
        prescription_id=state.prescription_id,
    )
    signal = SignalSpec(
        "unreachable", {"flow": FLOW, "hours": UNREACHABLE_AFTER_HOURS}, state.prescription_id
    )
    _LOGGER.info(
        "flow %s: no reply from patient %s in %s h; refill task opened",
        FLOW,
        facts.patient_id,
        UNREACHABLE_AFTER_HOURS,
    )
    return Step(tasks=(task,), signals=(signal,))
