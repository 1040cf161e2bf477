"""The value types conversations/ hands to bot/: classifications, patient facts and decisions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from conversations.vocabulary import QUEUES, SIGNAL_KINDS, Queue

__all__ = [
    "CONTEXTS",
    "INTENTS",
    "PRIMARY_ORDER",
    "SEVERITIES",
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

# The closed label set of DESIGN.md, in the order that picks the primary label of a message.
PRIMARY_ORDER: tuple[str, ...] = (
    "emergency",
    "opt_out",
    "side_effect",
    "missed_dose",
    "cost_concern",
    "call_request",
    "refill_request",
    "question",
    "reschedule",
    "wrong_number",
    "confirm",
    "decline",
    "help",
    "opt_in",
    "ack",
    "unknown",
)
INTENTS = frozenset(PRIMARY_ORDER)
SEVERITIES: tuple[str, ...] = ("none", "mild", "moderate", "severe", "very_severe")
CONTEXTS = frozenset(
    {"refill_reminder", "yes_no", "checkin_open", "checkin_severity", "missed_doses", "copay_offer"}
)


@dataclass(frozen=True, slots=True)
class Classification:
    """What a patient's text means.

    Attributes:
        intent: the primary label (first of PRIMARY_ORDER among the labels found).
        also: further labels, in PRIMARY_ORDER.
        severity: for side effects, one of SEVERITIES when the text states it, else None.
        language: "en" or "es".
        confidence: 0..1.
        values: extracted values: ``missed_doses`` (int), ``days_left`` (int), ``amount`` (float dollars),
            ``date`` (ISO date str), ``temperature_f`` (float), ``choice`` (int, a numbered option).
        symptoms: canonical symptom names found (e.g. "diarrhea", "nausea", "rash").
    """

    text: str
    intent: str
    also: tuple[str, ...] = ()
    severity: str | None = None
    language: str = "en"
    confidence: float = 0.0
    values: dict[str, Any] = field(default_factory=dict)
    symptoms: tuple[str, ...] = ()

    @property
    def labels(self) -> tuple[str, ...]:
        """The primary label followed by the others."""
        return (self.intent, *self.also)


@dataclass(frozen=True, slots=True)
class Therapy:
    """One active prescription of the patient, with what the fill history says."""

    prescription_id: str
    drug: str
    therapy_class: str = ""
    payer_type: str = "other"
    status: str = "active"
    last_fill_on: date | None = None
    days_supply: int | None = None
    run_out_on: date | None = None
    expected_days_left: int | None = None
    next_copay: float | None = None
    first_fill_on: date | None = None


@dataclass(frozen=True, slots=True)
class SiteFacts:
    """What the dialog needs to know about the site."""

    site_id: str
    name: str
    phone: str
    time_zone: str = "America/New_York"
    offers_delivery: bool = True
    offers_pickup: bool = True
    business_hours: tuple[str, str] = ("09:00", "17:00")
    business_days: tuple[int, ...] = (0, 1, 2, 3, 4)  # Monday = 0
    copay_threshold: float = 100.0
    fever_threshold_f: float = 100.4
    self_care: dict[str, dict[str, str]] = field(default_factory=dict)  # symptom -> language -> text
    after_hours_phone: str = ""  # the clinic's number answered out of hours ("call now" advice); else phone


@dataclass(frozen=True, slots=True)
class PatientFacts:
    """What the dialog needs to know about the patient (no more PHI than that)."""

    patient_id: str
    first_name: str
    language: str
    detailed_consent: bool
    site: SiteFacts
    therapies: tuple[Therapy, ...] = ()
    on_chemotherapy: bool = True


@dataclass(frozen=True, slots=True)
class ConversationState:
    """A dialog's position, stored in the conversation table between messages.

    Attributes:
        flow: refill_reminder | side_effect_checkin | copay_assistance | new_start | abandonment_recovery
            | free_text.
        state: the step within the flow (e.g. "awaiting_choice").
        context: JSON-safe data the flow keeps (prescription id, symptoms asked, retries, queued flows...).
        expires_at: when the step times out (the runner then calls ``on_timeout``).
        prescription_id: the therapy the dialog is about, if any.
    """

    flow: str
    state: str
    context: dict[str, Any] = field(default_factory=dict)
    expires_at: datetime | None = None
    prescription_id: str | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """A text to send the patient now."""

    body: str
    kind: str = "reply"  # reply | emergency | help | ack | outreach | followup


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """A task to open in a pharmacist queue."""

    queue: Queue
    kind: str
    title: str
    priority: int = 3  # 1 highest (urgent), 2 high, 3 normal, 4 low
    detail: dict[str, Any] = field(default_factory=dict)
    prescription_id: str | None = None

    def __post_init__(self) -> None:
        if self.queue not in QUEUES:
            raise ValueError(f"queue: unknown queue {self.queue!r} (see conversations.vocabulary)")


@dataclass(frozen=True, slots=True)
class SignalSpec:
    """An adherence or abandonment signal to record (and export)."""

    kind: str  # one of conversations.vocabulary.SIGNAL_KINDS
    value: dict[str, Any] = field(default_factory=dict)
    prescription_id: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in SIGNAL_KINDS:
            raise ValueError(f"kind: unknown signal kind {self.kind!r} (see conversations.vocabulary)")


@dataclass(frozen=True, slots=True)
class FlowStart:
    """A request to start a flow (one outreach occurrence, or several bundled)."""

    flow: str
    prescription_id: str | None = None
    params: dict[str, Any] = field(default_factory=dict)  # e.g. {"copay": 250.0}, {"event": "ready"}
    template: dict[str, str] | None = None  # per-language wording a clinic configured, if any


@dataclass(frozen=True, slots=True)
class Decision:
    """Everything a step of the dialog decided; bot/ carries it out.

    Attributes:
        replies: texts to send, in order.
        tasks: tasks to open.
        signals: signals to record.
        next_state: the dialog's new state, or None when the dialog is over.
        classification: what the inbound text was understood as (None for starts and timeouts).
        consent: "detailed_yes" / "detailed_no" when the patient answered the detailed-messages question.
    """

    replies: tuple[Reply, ...] = ()
    tasks: tuple[TaskSpec, ...] = ()
    signals: tuple[SignalSpec, ...] = ()
    next_state: ConversationState | None = None
    classification: Classification | None = None
    consent: str | None = None
