"""Dialog flows as small explicit state machines: refill, check-in, copay, new start, abandonment, free text."""

from conversations.flows.common import Step
from conversations.flows.dispatch import FLOWS, STARTABLE, FlowSpec, get

__all__ = ["FLOWS", "STARTABLE", "FlowSpec", "Step", "get"]
