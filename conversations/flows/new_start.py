"""New-start flow: welcome, how to reach the pharmacy, and the one question about detailed messages."""

from __future__ import annotations

import logging
from datetime import datetime

from conversations.flows.common import Step, choice_of, lang, new_state, site_values
from conversations.templates import render
from conversations.types import Classification, ConversationState, FlowStart, PatientFacts

__all__ = ["FLOW", "STATES", "begin", "question", "step", "timeout"]

_LOGGER = logging.getLogger(__name__)

FLOW = "new_start"
# Every step this flow can open (ConversationState.state): the dialog crawl enumerates these.
STATES: tuple[str, ...] = ("awaiting_consent", "welcomed")
CONSENT_HOURS = 72
LISTEN_HOURS = 24


def _welcome(facts: PatientFacts) -> str:
    values = site_values(facts)
    language = lang(facts)
    if not facts.first_name:
        values["first_name"] = ""
        return render("newstart_welcome", language, **values).replace(", !", "!")
    return render("newstart_welcome", language, **values)


def begin(start: FlowStart, facts: PatientFacts, now: datetime) -> Step:
    """Welcome; ask for detailed-message consent unless the patient already gave it."""
    welcome = _welcome(facts)
    if facts.detailed_consent:
        # Nothing to ask: the step only keeps the door open for a reply to the welcome.
        state = new_state(FLOW, "welcomed", None, now, LISTEN_HOURS, start.prescription_id)
        return Step(texts=(welcome,), next_state=state)
    state = new_state(FLOW, "awaiting_consent", "yes_no", now, CONSENT_HOURS, start.prescription_id)
    return Step(texts=(welcome, render("newstart_consent", lang(facts))), next_state=state)


def question(state: ConversationState, facts: PatientFacts) -> str | None:
    """The consent question, for a re-ask; None after a plain welcome (there is nothing to re-ask)."""
    if state.state != "awaiting_consent":
        return None
    return render("newstart_consent", lang(facts))


def step(state: ConversationState, cls: Classification, facts: PatientFacts, now: datetime) -> Step | None:
    """YES / NO to naming the medicine in texts; anything else after a plain welcome is free text (None)."""
    if state.state != "awaiting_consent":
        return None
    labels = set(cls.labels)
    choice = choice_of(cls)
    language = lang(facts)
    if "confirm" in labels and "decline" not in labels and choice is None:
        _LOGGER.info("patient %s consented to detailed messages", facts.patient_id)
        return Step(
            texts=(render("newstart_yes", language),), consent="detailed_yes", used=frozenset({"confirm"})
        )
    if "decline" in labels and "confirm" not in labels and choice is None:
        return Step(
            texts=(render("newstart_no", language),), consent="detailed_no", used=frozenset({"decline"})
        )
    return None


def timeout(state: ConversationState, facts: PatientFacts, now: datetime) -> Step:
    """No answer: texts stay general; the question is not asked again."""
    return Step()
