"""Pydantic models of the REST API: request bodies (validated) and responses (the OpenAPI document)."""

from __future__ import annotations

import logging
import re
from datetime import date, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from bot.api.params import AuditSince, Flag, NoNul, PageNumber, Since
from bot.db.models import AuditEvent, Fill, Message, Task, TaskNote
from bot.staff.records import TherapyView

__all__ = [
    "AuditOut",
    "AuditPage",
    "AuditQuery",
    "CallIn",
    "ErrorOut",
    "FhirBundleIn",
    "FhirIssueOut",
    "FhirOutcomeOut",
    "BatchResponseOut",
    "MessageQuery",
    "MetricOut",
    "MetricsOut",
    "MetricsQuery",
    "PatientSearchQuery",
    "SignalQuery",
    "TaskQuery",
    "FillOut",
    "MessageOut",
    "MessagePage",
    "MoveIn",
    "NoteOut",
    "PatientOut",
    "PrescriptionOut",
    "ReplyIn",
    "ReplyOut",
    "ResolveIn",
    "SignalOut",
    "SignalPage",
    "SnoozeIn",
    "TaskDetailOut",
    "TaskOut",
    "TaskPage",
    "fill_out",
    "message_out",
    "note_out",
    "task_out",
]

_LOGGER = logging.getLogger(__name__)
_MONTH = re.compile(r"(?!0000)[0-9]{4}-(0[1-9]|1[0-2])")

QueueName = Literal["urgent_clinical", "clinical", "refill", "financial", "general"]
Outcome = Literal[
    "refill_processed",
    "advice_given",
    "referred_to_clinician",
    "patient_unreachable",
    "copay_assistance_started",
    "no_action_needed",
    "duplicate",
    "wrong_number",
    "other",
]


class _In(BaseModel):
    # Lengths are checked on the text as sent, as the OpenAPI document's maxLength reads; the services strip it.
    model_config = ConfigDict(extra="forbid")


# -- query strings (bot.api.params reads them, and documents them from these models) --


class _Query(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)  # parameters of no use here are let be


class TaskQuery(_Query):
    """``GET /tasks``: filters and one page."""

    queue: QueueName | None = None
    status: Literal["active", "open", "claimed", "snoozed", "resolved", "all"] = Field(
        "active", description="active: open, claimed and snoozed"
    )
    priority: int | None = Field(None, ge=1, le=4, description="1 (urgent) to 4 (low)")
    mine: Flag = Field(False, description="only tasks claimed by the signed-in user (not for tokens)")
    unassigned: Flag = Field(False, description="only tasks nobody has claimed")
    page: PageNumber = 1
    page_size: int = Field(50, ge=1, le=200)


class MessageQuery(_Query):
    """``GET /patients/{id}/messages``: one page of the thread."""

    page: PageNumber = 1
    page_size: int = Field(100, ge=1, le=500)


class SignalQuery(_Query):
    """``GET /signals``: what was recorded since a time or after an id, one page."""

    since: Since | None = None
    page: PageNumber = 1
    page_size: int = Field(100, ge=1, le=1000)


class AuditQuery(_Query):
    """``GET /audit``: events since a time, of one action, one page."""

    since: AuditSince | None = None
    action: NoNul | None = Field(None, max_length=100, description="e.g. patient.view")
    page: PageNumber = 1
    page_size: int = Field(100, ge=1, le=1000)


class PatientSearchQuery(_Query):
    """``GET /patients``: the search text."""

    q: NoNul = Field(min_length=1, max_length=100, description="a name, a patient id or the last 4 digits of the phone")


class MetricsQuery(_Query):
    """``GET /metrics``: the month (default: this month in the site's time zone) and the site (the caller's)."""

    month: str | None = Field(None, description="YYYY-MM", examples=["2026-11"])
    site: NoNul | None = Field(None, max_length=64, description="must be the caller's site (else 404)")

    @field_validator("month")
    @classmethod
    def _month(cls, value: str | None) -> str | None:
        if value is not None and not _MONTH.fullmatch(value):
            raise ValueError("expected YYYY-MM")
        return value


class ReplyIn(_In):
    """Text the task's patient."""

    body: str = Field(min_length=1, max_length=1600, description="the SMS text (GSM-7 or Unicode)")


class ResolveIn(_In):
    """Close a task with an outcome code; ``note`` is required when the outcome is ``other``."""

    outcome: Outcome
    note: str = Field("", max_length=2000)


class SnoozeIn(_In):
    """Hide a task until a time (at most 30 days ahead; not for urgent clinical tasks)."""

    until: AwareDatetime = Field(description="ISO 8601 with a time zone, e.g. 2026-11-25T15:00:00Z")


class MoveIn(_In):
    """Hand a task to another queue."""

    queue: QueueName


class CallIn(_In):
    """Log a phone call with the patient."""

    note: str = Field(min_length=1, max_length=2000)


class ErrorOut(BaseModel):
    """Every 4xx answer: a readable message and the input field at fault (if one is)."""

    error: str
    field: str | None = None


class TaskOut(BaseModel):
    """A task as the queues see it."""

    id: int
    site_id: str
    patient_id: str | None
    prescription_id: str | None
    queue: str
    kind: str
    priority: int = Field(description="1 (urgent) to 4 (low)")
    status: Literal["open", "claimed", "snoozed", "resolved"]
    title: str
    detail: dict[str, Any]
    due_by: datetime
    overdue: bool
    assignee_id: int | None
    snoozed_until: datetime | None
    escalated_at: datetime | None
    outcome: str | None
    note: str | None
    source_message_id: int | None
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None


class NoteOut(BaseModel):
    """A timeline entry of a task."""

    id: int
    kind: str
    text: str
    staff_user_id: int | None
    created_at: datetime


class TaskDetailOut(TaskOut):
    """A task with its timeline."""

    notes: list[NoteOut]


class TaskPage(BaseModel):
    """One page of tasks; ``next`` is the relative URL of the next page, or null."""

    items: list[TaskOut]
    page: int
    page_size: int
    total: int
    next: str | None


class ReplyOut(BaseModel):
    """The stored outbound message and any warnings (e.g. a drug named without detailed consent)."""

    message_id: int
    status: str
    warnings: list[str]
    task: TaskOut


class FillOut(BaseModel):
    """One dispense."""

    id: str
    dispensed_on: date
    days_supply: int
    quantity: float
    copay: float


class PrescriptionOut(BaseModel):
    """A prescription with its fills and adherence."""

    id: str
    drug: str
    therapy_class: str
    payer_type: str
    status: str
    written_on: date | None
    fills: list[FillOut]
    run_out_on: date | None
    days_since_run_out: int | None = Field(description="negative: days of supply left")
    pdc: float | None = Field(description="proportion of days covered, 0..1, to today")


class PatientOut(BaseModel):
    """A patient's record (reading it is audited)."""

    id: str
    site_id: str
    first_name: str
    last_name: str
    birth_date: date | None
    phone: str
    phone_status: str
    language: str
    time_zone: str | None
    sms_consent: bool
    detailed_consent: bool
    opted_out_at: datetime | None
    deliverability: dict[str, Any]
    prescriptions: list[PrescriptionOut]


class MessageOut(BaseModel):
    """An SMS in or out, with its delivery status."""

    id: int
    direction: Literal["in", "out"]
    kind: str
    body: str
    status: str
    error_code: int | None
    segments: int
    encoding: str
    from_number: str
    to_number: str
    task_id: int | None
    staff_user_id: int | None
    created_at: datetime
    status_updated_at: datetime | None


class MessagePage(BaseModel):
    """One page of a patient's messages, oldest first."""

    items: list[MessageOut]
    page: int
    page_size: int
    total: int
    next: str | None


class SignalOut(BaseModel):
    """An adherence or abandonment signal (the export shape)."""

    id: int
    patient_id: str
    prescription_id: str | None
    site_id: str
    kind: str
    value: dict[str, Any]
    source: str
    source_message_id: int | None
    occurred_at: datetime
    created_at: datetime


class SignalPage(BaseModel):
    """One page of signals recorded at or after ``since``, oldest first."""

    items: list[SignalOut]
    page: int
    page_size: int
    total: int
    next: str | None


class AuditOut(BaseModel):
    """Who saw or did what, when."""

    id: int
    at: datetime
    actor: str
    site_id: str | None
    action: str
    patient_id: str | None
    target: str
    detail: dict[str, Any]


class AuditPage(BaseModel):
    """One page of audit events at or after ``since``, oldest first."""

    items: list[AuditOut]
    page: int
    page_size: int
    total: int
    next: str | None


class PatientHitOut(BaseModel):
    """A patient a search found (the number stays masked: ``POST /patients/{id}/phone`` reveals it, audited)."""

    id: str
    first_name: str
    last_name: str
    birth_date: date | None
    phone_last4: str
    language: str
    opted_out: bool


class PatientSearchOut(BaseModel):
    """Patients of the caller's site matching ``q`` (name, id or the phone's last 4 digits)."""

    items: list[PatientHitOut]


class PhoneOut(BaseModel):
    """A patient's full number (revealing it writes a ``phone_revealed`` audit event)."""

    phone: str


class MetricOut(BaseModel):
    """One program figure of a month beside its benchmark."""

    key: str
    label: str
    value: float | None = Field(description="a percentage (0-100) or days; null when nothing was measured")
    unit: str
    benchmark: float | None
    better: Literal["lower", "higher"]
    n: int = Field(description="how many items the figure is computed over")
    benchmark_label: str
    meets_benchmark: bool | None


class MetricsOut(BaseModel):
    """The program figures of a site and month."""

    site_id: str
    month: str
    metrics: list[MetricOut]


# -- FHIR (what POST /fhir takes and answers; the resources themselves are read with fhir.resources) --


class FhirEntryIn(BaseModel):
    """A Bundle entry: a Patient, MedicationRequest, MedicationDispense or Medication (others are skipped)."""

    model_config = ConfigDict(extra="allow")

    fullUrl: str | None = None  # noqa: N815 (FHIR's name)
    resource: dict[str, Any]
    request: dict[str, Any] | None = Field(None, description="method POST or PUT (others are refused)")


class FhirBundleIn(BaseModel):
    """A FHIR R4 Bundle: ``transaction`` and ``collection`` are all or nothing, ``batch`` entry by entry."""

    model_config = ConfigDict(extra="allow")

    resourceType: Literal["Bundle"]  # noqa: N815
    type: Literal["transaction", "batch", "collection"]
    entry: list[FhirEntryIn] = []


class FhirIssueOut(BaseModel):
    """An OperationOutcome issue; ``expression`` is the FHIR path, ``Bundle.entry[i].resource.FIELD``."""

    severity: Literal["fatal", "error", "warning", "information"]
    code: str
    diagnostics: str | None = None
    expression: list[str] | None = None


class FhirOutcomeOut(BaseModel):
    """A FHIR OperationOutcome: why a Bundle (or one entry of a batch) was refused."""

    resourceType: Literal["OperationOutcome"]  # noqa: N815
    issue: list[FhirIssueOut] = Field(min_length=1)


class FhirEntryResponseOut(BaseModel):
    """How one batch entry went: ``201 Created``, ``200 OK``, ``404 Not Found``, ``422 Unprocessable Entity``."""

    status: str = Field(pattern=r"^[1-5][0-9]{2}( .*)?$")
    location: str | None = Field(None, description="Type/id of the stored resource")
    outcome: FhirOutcomeOut | None = None


class FhirEntryOut(BaseModel):
    """One entry of a batch-response, in the order of the request's entries."""

    response: FhirEntryResponseOut


class BatchResponseOut(BaseModel):
    """A FHIR batch-response Bundle: one entry per entry of the batch."""

    resourceType: Literal["Bundle"]  # noqa: N815
    type: Literal["batch-response"]
    entry: list[FhirEntryOut] = []


def task_out(task: Task, now: datetime) -> TaskOut:
    """The API view of a task."""
    return TaskOut(
        id=task.id,
        site_id=task.site_id,
        patient_id=task.patient_id,
        prescription_id=task.prescription_id,
        queue=task.queue,
        kind=task.kind,
        priority=task.priority,
        status=task.status,  # type: ignore[arg-type]
        title=task.title,
        detail=dict(task.detail or {}),
        due_by=task.due_by,
        overdue=task.status != "resolved" and task.due_by < now,
        assignee_id=task.assignee_id,
        snoozed_until=task.snoozed_until,
        escalated_at=task.escalated_at,
        outcome=task.outcome,
        note=task.note,
        source_message_id=task.source_message_id,
        created_at=task.created_at,
        updated_at=task.updated_at,
        resolved_at=task.resolved_at,
    )


def note_out(note: TaskNote) -> NoteOut:
    """The API view of a task note."""
    return NoteOut(
        id=note.id,
        kind=note.kind,
        text=note.text,
        staff_user_id=note.staff_user_id,
        created_at=note.created_at,
    )


def fill_out(fill: Fill) -> FillOut:
    """The API view of a fill (copay in dollars)."""
    return FillOut(
        id=fill.id,
        dispensed_on=fill.dispensed_on,
        days_supply=fill.days_supply,
        quantity=fill.quantity,
        copay=round(fill.copay_cents / 100, 2),
    )


def prescription_out(therapy: TherapyView) -> PrescriptionOut:
    """The API view of a therapy."""
    rx = therapy.prescription
    return PrescriptionOut(
        id=rx.id,
        drug=rx.drug,
        therapy_class=rx.therapy_class,
        payer_type=rx.payer_type,
        status=rx.status,
        written_on=rx.written_on,
        fills=[fill_out(f) for f in therapy.fills],
        run_out_on=therapy.run_out_on,
        days_since_run_out=therapy.days_since_run_out,
        pdc=therapy.pdc,
    )


def message_out(message: Message) -> MessageOut:
    """The API view of a message."""
    return MessageOut(
        id=message.id,
        direction="in" if message.direction == "in" else "out",
        kind=message.kind,
        body=message.body,
        status=message.status,
        error_code=message.error_code,
        segments=message.segments,
        encoding=message.encoding,
        from_number=message.from_number,
        to_number=message.to_number,
        task_id=message.task_id,
        staff_user_id=message.staff_user_id,
        created_at=message.created_at,
        status_updated_at=message.status_updated_at,
    )


def audit_out(event: AuditEvent) -> AuditOut:
    """The API view of an audit event."""
    return AuditOut(
        id=event.id,
        at=event.at,
        actor=event.actor,
        site_id=event.site_id,
        action=event.action,
        patient_id=event.patient_id,
        target=event.target,
        detail=dict(event.detail or {}),
    )
