"""Understanding patient texts and running the dialog behind every outreach. Pure: no I/O."""

from conversations.types import (
    Classification,
    ConversationState,
    Decision,
    FlowStart,
    PatientFacts,
    Reply,
    SignalSpec,
    SiteFacts,
    TaskSpec,
    Therapy,
)

__all__ = [
    "Classification",
    "ConversationState",
    "Decision",
    "FlowStart",
    "PatientFacts",
    "Reply",
    "SignalSpec",
    "SiteFacts",
    "TaskSpec",
    "Therapy",
]
