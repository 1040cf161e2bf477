"""Copay assistance flow: offer help when the coming fill costs at least the site threshold."""

from __future__ import annotations

import logging
from datetime import datetime

from conversations.flows.common import (
    Step,
    add_business_hours,
    choice_of,
    lang,
    med_values,
    new_state,
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

__all__ = ["FLOW", "STATES", "ROUTES", "begin", "open_financial", "question", "routes_for", "step", "timeout"]

_LOGGER = logging.getLogger(__name__)

FLOW = "copay_assistance"
# Every step this flow can open (ConversationState.state): the dialog crawl enumerates these.
STATES: tuple[str, ...] = ("awaiting_choice",)
OFFER_HOURS = 48
CONTACT_BUSINESS_HOURS = 8  # "next business day": one business day of the navigator's time

# Routes the financial navigator should try, by payer. Manufacturer coupons are never offered to federal
# program beneficiaries (Anti-Kickback Statute; OIG bulletin 2014).
ROUTES: dict[str, tuple[str, ...]] = {
    "commercial": ("manufacturer_copay_program",),
    "medicare_d": (
        "pan_foundation",
        "healthwell_foundation",
        "cancercare_copay_foundation",
        "lls_copay_assistance",
        "medicare_prescription_payment_plan",
    ),
    "medicaid": ("coverage_check",),
    "cash": ("manufacturer_patient_assistance_program", "independent_foundations", "coverage_check"),
    "other": ("benefits_review",),
}
_FEDERAL = frozenset({"medicare_d", "medicaid"})


def routes_for(payer_type: str) -> tuple[str, ...]:
    """The assistance routes that apply to a payer type."""
    return ROUTES.get(payer_type, ROUTES["other"])


def _copay(start_params: dict[str, object], facts: PatientFacts, prescription_id: str | None) -> float | None:
    value = start_params.get("copay")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    therapy = therapy_for(facts, prescription_id)
    return therapy.next_copay if therapy else None


def open_financial(
    facts: PatientFacts, now: datetime, prescription_id: str | None, source: str, copay: float | None = None
) -> Step:
    """Open the financial task with the payer's routes, record a copay barrier, and tell the patient when.

    Args:
        facts: the patient.
        now: the current time.
        prescription_id: the prescription the cost is about, if known.
        source: which flow or path raised it ("copay_assistance", "free_text", "abandonment_recovery"...).
        copay: the coming fill's copay in dollars, if known.
    """
    therapy = therapy_for(facts, prescription_id)
    payer = therapy.payer_type if therapy else "other"
    if copay is None and therapy is not None:
        copay = therapy.next_copay
    rx = prescription_id or (therapy.prescription_id if therapy else None)
    task = TaskSpec(
        queue="financial",
        kind="copay_assistance",
        title="Help with medication cost" + (f" (${copay:,.2f})" if copay is not None else ""),
        priority=3,
        detail={
            "payer_type": payer,
            "routes": list(routes_for(payer)),
            "manufacturer_coupons_allowed": payer not in _FEDERAL,
            "copay": copay,
            "source": source,
        },
        prescription_id=rx,
    )
    signal = SignalSpec("copay_barrier", {"copay": copay, "source": source}, rx)
    language = lang(facts)
    when = when_text(facts.site, add_business_hours(facts.site, now, CONTACT_BUSINESS_HOURS), now, language)
    text = render("copay_opened", language, when=when)
    return Step(texts=(text,), tasks=(task,), signals=(signal,), used=frozenset({"cost_concern"}))


def begin(start: FlowStart, facts: PatientFacts, now: datetime) -> Step:
    """The offer: "Reply 1 if you want help with the cost, 2 for no thanks"."""
    copay = _copay(start.params, facts, start.prescription_id)
    state = new_state(
        FLOW, "awaiting_choice", "copay_offer", now, OFFER_HOURS, start.prescription_id, copay=copay
    )
    return Step(texts=(_offer(facts, start.prescription_id, copay),), next_state=state)


def _offer(facts: PatientFacts, prescription_id: str | None, copay: float | None) -> str:
    language = lang(facts)
    if copay is None:
        return render(
            "copay_offer_generic", language, **med_values(facts, therapy_for(facts, prescription_id))
        )
    amount = f"{copay:,.0f}" if float(copay).is_integer() else f"{copay:,.2f}"
    return render("copay_offer", language, copay=amount)


def question(state: ConversationState, facts: PatientFacts) -> str:
    """The offer again, for a re-ask."""
    return _offer(facts, state.prescription_id, state.context.get("copay"))


def step(state: ConversationState, cls: Classification, facts: PatientFacts, now: datetime) -> Step | None:
    """1 / yes / a cost concern: open the financial task; 2 / no: record the decline; else None."""
    choice = choice_of(cls)
    labels = set(cls.labels)
    if choice == 1 or (choice is None and labels & {"confirm", "cost_concern"}):
        opened = open_financial(facts, now, state.prescription_id, FLOW, state.context.get("copay"))
        return Step(used=frozenset({"confirm", "cost_concern"})).plus(opened)
    if choice == 2 or (choice is None and "decline" in labels):
        text = render("copay_declined", lang(facts), **site_values(facts))
        signal = SignalSpec(
            "copay_help_declined", {"copay": state.context.get("copay")}, state.prescription_id
        )
        return Step(texts=(text,), signals=(signal,), used=frozenset({"decline"}))
    return None


def timeout(state: ConversationState, facts: PatientFacts, now: datetime) -> Step:
    """No answer to the offer: close quietly (the patient can still raise cost any time)."""
    _LOGGER.info("copay offer to patient %s expired unanswered", facts.patient_id)
    return Step()
