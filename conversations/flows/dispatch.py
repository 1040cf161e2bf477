"""The flow registry: each flow's begin/step/timeout/question functions, looked up by name."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from conversations.flows import abandonment, checkin, copay, free_text, new_start, refill
from conversations.flows.common import Step
from conversations.types import Classification, ConversationState, FlowStart, PatientFacts

__all__ = ["FLOWS", "FlowSpec", "STARTABLE", "get"]

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FlowSpec:
    """One dialog flow as data: the pure functions the engine calls.

    Attributes:
        name: the flow name stored in ConversationState.flow.
        begin: the opening question of an outreach (or of a queued flow).
        step: one inbound answer; returns None when the answer does not fit the step.
        timeout: what to do when the step's ``expires_at`` passes.
        question: the current step's question, for a re-ask (None: nothing to re-ask).
        startable: whether an outreach may start it.
        states: every step the flow can open (the module's ``STATES``).
    """

    name: str
    begin: Callable[[FlowStart, PatientFacts, datetime], Step]
    step: Callable[[ConversationState, Classification, PatientFacts, datetime], Step | None]
    timeout: Callable[[ConversationState, PatientFacts, datetime], Step]
    question: Callable[[ConversationState, PatientFacts], str | None]
    startable: bool = True
    states: tuple[str, ...] = ()


FLOWS: dict[str, FlowSpec] = {
    spec.name: spec
    for spec in (
        FlowSpec(
            refill.FLOW, refill.begin, refill.step, refill.timeout, refill.question, states=refill.STATES
        ),
        FlowSpec(
            checkin.FLOW,
            checkin.begin,
            checkin.step,
            checkin.timeout,
            checkin.question,
            states=checkin.STATES,
        ),
        FlowSpec(copay.FLOW, copay.begin, copay.step, copay.timeout, copay.question, states=copay.STATES),
        FlowSpec(
            new_start.FLOW,
            new_start.begin,
            new_start.step,
            new_start.timeout,
            new_start.question,
            states=new_start.STATES,
        ),
        FlowSpec(
            abandonment.FLOW,
            abandonment.begin,
            abandonment.step,
            abandonment.timeout,
            abandonment.question,
            states=abandonment.STATES,
        ),
        FlowSpec(
            free_text.FLOW,
            free_text.begin,
            free_text.step,
            free_text.timeout,
            free_text.question,
            startable=False,
            states=free_text.STATES,
        ),
    )
}
STARTABLE: frozenset[str] = frozenset(name for name, spec in FLOWS.items() if spec.startable)


def get(name: str) -> FlowSpec | None:
    """The flow of that name, or None."""
    return FLOWS.get(name)
