"""Test helpers for the dialog flows: patient facts, the classifier, a dialog driver, segment counting."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from conversations import engine
from conversations.classify import classify
from conversations.types import (
    ConversationState,
    Decision,
    FlowStart,
    PatientFacts,
    SiteFacts,
    Therapy,
)
from integrations.twilio.segments import segment_info

MONDAY_OPEN = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)  # 10:00 Chicago
FRIDAY_NIGHT = datetime(2026, 3, 7, 3, 0, tzinfo=UTC)  # Friday 21:00 Chicago
RX = "rx-1"


def segments(body: str) -> tuple[str, int]:
    """(encoding, segments) as Twilio bills a body, by the project's own segment counter."""
    info = segment_info(body)
    return info.encoding, info.segments


def site(**overrides: Any) -> SiteFacts:
    values: dict[str, Any] = {
        "site_id": "site-1",
        "name": "Lakeside Oncology Pharmacy",
        "phone": "+13125550100",
        "time_zone": "America/Chicago",
    }
    values.update(overrides)
    return SiteFacts(**values)


def therapy(**overrides: Any) -> Therapy:
    values: dict[str, Any] = {
        "prescription_id": RX,
        "drug": "capecitabine",
        "therapy_class": "oncology",
        "payer_type": "commercial",
        "last_fill_on": date(2026, 2, 6),
        "days_supply": 28,
        "run_out_on": date(2026, 3, 6),
        "expected_days_left": 4,
        "next_copay": 250.0,
        "first_fill_on": date(2026, 1, 9),
    }
    values.update(overrides)
    return Therapy(**values)


def facts(language: str = "en", detailed: bool = False, **overrides: Any) -> PatientFacts:
    values: dict[str, Any] = {
        "patient_id": "pat-1",
        "first_name": "Ana" if language == "es" else "Margaret",
        "language": language,
        "detailed_consent": detailed,
        "site": site(),
        "therapies": (therapy(),),
    }
    values.update(overrides)
    return PatientFacts(**values)


# The real classifier: the flow tests keep to clear inputs ("1", "no", "diarrhea", "sí", "chest pain"...),
# and use a small inline classifier where they need a label the real one would not give.
CLASSIFY = classify


def body(decision: Decision) -> str:
    """The one reply's text ("" when there is none); fails if the decision holds several replies."""
    assert len(decision.replies) <= 1, decision.replies
    return decision.replies[0].body if decision.replies else ""


class Dialog:
    """Drives the engine the way bot/ does: keep the state, feed texts, fire timeouts."""

    def __init__(
        self,
        patient: PatientFacts | None = None,
        now: datetime = MONDAY_OPEN,
        classifier: engine.Classifier | None = None,
    ) -> None:
        self.facts = patient or facts()
        self.now = now
        self.classifier = classifier or CLASSIFY
        self.state: ConversationState | None = None
        self.last: Decision | None = None

    def _keep(self, decision: Decision) -> Decision:
        if decision.next_state is not None:
            assert decision.next_state.expires_at is not None, "every open step needs a timeout"
            assert decision.next_state.expires_at > self.now
        self.state = decision.next_state
        self.last = decision
        return decision

    def start(self, *flows: FlowStart) -> Decision:
        return self._keep(engine.start(flows, self.facts, self.now))

    def say(self, text: str) -> Decision:
        return self._keep(engine.handle(self.state, text, self.facts, self.now, classifier=self.classifier))

    def timeout(self) -> Decision:
        assert self.state is not None and self.state.expires_at is not None
        self.now = self.state.expires_at
        return self._keep(engine.on_timeout(self.state, self.facts, self.now))
