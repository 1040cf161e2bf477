"""The core data model: sites, patients, therapy, outreach, messages, conversations, tasks, signals, staff."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from bot.db.base import Base, UTCDateTime, utcnow

__all__ = [
    "ApiToken",
    "AuditEvent",
    "ConsentEvent",
    "Conversation",
    "DeadLetter",
    "Fill",
    "LoginAttempt",
    "Message",
    "Outreach",
    "Patient",
    "Prescription",
    "PrescriptionEvent",
    "ProviderStatus",
    "Program",
    "SavedView",
    "ProgramOptOut",
    "Signal",
    "SourceId",
    "SinkCursor",
    "Site",
    "StaffSession",
    "StaffUser",
    "Task",
    "TaskNote",
]

Json = dict[str, Any]


def _created() -> Mapped[datetime]:
    return mapped_column(UTCDateTime, default=utcnow, nullable=False)


class Site(Base):
    """A dispensing site (tenant): its sender, time zone, hours and outreach settings."""

    __tablename__ = "site"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(20))
    messaging_service_sid: Mapped[str | None] = mapped_column(String(64))
    time_zone: Mapped[str] = mapped_column(String(64))
    quiet_start: Mapped[str] = mapped_column(String(5), default="09:00")
    quiet_end: Mapped[str] = mapped_column(String(5), default="20:00")
    send_rate: Mapped[float] = mapped_column(Float, default=1.0)
    settings: Mapped[Json] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = _created()


class Patient(Base):
    """A patient of a site, identified by the dispensary system's id."""

    __tablename__ = "patient"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("site.id"), index=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    birth_date: Mapped[date | None] = mapped_column(Date)
    phone: Mapped[str] = mapped_column(String(20), index=True)
    phone_status: Mapped[str] = mapped_column(String(20), default="ok")
    language: Mapped[str] = mapped_column(String(5), default="en")
    time_zone: Mapped[str | None] = mapped_column(String(64))
    sms_consent: Mapped[bool] = mapped_column(Boolean, default=True)
    detailed_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    opted_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deliverability: Mapped[Json] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Prescription(Base):
    """A prescription for one drug; its status drives outreach eligibility."""

    __tablename__ = "prescription"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patient.id"), index=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("site.id"), index=True)
    drug: Mapped[str] = mapped_column(String(200))
    therapy_class: Mapped[str] = mapped_column(String(100), default="")
    payer_type: Mapped[str] = mapped_column(String(20), default="other")
    status: Mapped[str] = mapped_column(String(20), default="active")
    written_on: Mapped[date | None] = mapped_column(Date)
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = _created()


class PrescriptionEvent(Base):
    """A dated event from the dispensary record: received, pa_approved, ready, shipped, picked_up, declined."""

    __tablename__ = "prescription_event"
    __table_args__ = (UniqueConstraint("prescription_id", "name", "occurred_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    prescription_id: Mapped[str] = mapped_column(ForeignKey("prescription.id"), index=True)
    name: Mapped[str] = mapped_column(String(30))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    detail: Mapped[Json] = mapped_column(JSON, default=dict)


class Fill(Base):
    """One dispense of a prescription."""

    __tablename__ = "fill"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    prescription_id: Mapped[str] = mapped_column(ForeignKey("prescription.id"), index=True)
    dispensed_on: Mapped[date] = mapped_column(Date)
    days_supply: Mapped[int] = mapped_column(Integer)
    quantity: Mapped[float] = mapped_column(Float, default=0)
    copay_cents: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = _created()


class SourceId(Base):
    """An id a source system gave a patient, prescription or fill at one site, and the record it names.

    Identity is (kind, site, system, value): the same value under two systems, or at two sites, names two
    records. A site's REST/CSV ids are its own system (``urn:midbot:site:{site_id}``); FHIR identifiers keep
    theirs. ``target_id`` is the store's id, equal to the value unless another record already had it.
    """

    __tablename__ = "source_id"
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)  # patient | prescription | fill
    site_id: Mapped[str] = mapped_column(ForeignKey("site.id"), primary_key=True)
    system: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(String(64), primary_key=True)
    target_id: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = _created()


class Program(Base):
    """A clinic-configured outreach program (its validated YAML kept as JSON)."""

    __tablename__ = "program"
    __table_args__ = (UniqueConstraint("site_id", "program_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("site.id"), index=True)
    program_id: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(40))
    spec: Mapped[Json] = mapped_column(JSON)
    digest: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Outreach(Base):
    """One planned outreach occurrence: planned -> claimed -> sending -> sent/failed/expired/cancelled."""

    __tablename__ = "outreach"
    __table_args__ = (
        Index("ix_outreach_due", "state", "due_at"),
        Index("ix_outreach_patient_state", "patient_id", "state"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patient.id"))
    prescription_id: Mapped[str | None] = mapped_column(ForeignKey("prescription.id"), index=True)
    program_pk: Mapped[int | None] = mapped_column(ForeignKey("program.id"), index=True)
    program_id: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(40))
    step: Mapped[str] = mapped_column(String(60))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deadline_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(20), default="planned")
    reason: Mapped[str] = mapped_column(String(60), default="")
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"))
    bundled_into: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Message(Base):
    """An SMS in or out. Outbound rows are written before the provider is called."""

    __tablename__ = "message"
    __table_args__ = (Index("ix_message_patient_created", "patient_id", "created_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    direction: Mapped[str] = mapped_column(String(3))  # in | out
    kind: Mapped[str] = mapped_column(String(30), default="reply")
    patient_id: Mapped[str | None] = mapped_column(ForeignKey("patient.id"))
    site_id: Mapped[str | None] = mapped_column(ForeignKey("site.id"), index=True)
    from_number: Mapped[str] = mapped_column(String(40))
    to_number: Mapped[str] = mapped_column(String(40), index=True)
    body: Mapped[str] = mapped_column(Text, default="")
    num_media: Mapped[int] = mapped_column(Integer, default=0)
    media: Mapped[list[str]] = mapped_column(JSON, default=list)
    segments: Mapped[int] = mapped_column(Integer, default=1)
    encoding: Mapped[str] = mapped_column(String(10), default="GSM-7")
    provider_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    client_ref: Mapped[str | None] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_message: Mapped[str | None] = mapped_column(String(300))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversation.id"))
    task_id: Mapped[int | None] = mapped_column(Integer, index=True)
    staff_user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # An inbound webhook whose values could not be stored as given (NUL bytes, over-long or out-of-range
    # fields) is stored cleaned, with this flag.
    cleaned: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    created_at: Mapped[datetime] = _created()
    status_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Conversation(Base):
    """A dialog flow's state for one patient; at most one is open per patient."""

    __tablename__ = "conversation"
    __table_args__ = (Index("ix_conversation_patient_status", "patient_id", "status"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patient.id"))
    prescription_id: Mapped[str | None] = mapped_column(ForeignKey("prescription.id"))
    flow: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(40))
    context: Mapped[Json] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(10), default="open")  # open | closed
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Task(Base):
    """A work item in a pharmacist queue."""

    __tablename__ = "task"
    __table_args__ = (Index("ix_task_open_queue", "site_id", "status", "queue", "priority"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("site.id"))
    patient_id: Mapped[str | None] = mapped_column(ForeignKey("patient.id"), index=True)
    prescription_id: Mapped[str | None] = mapped_column(ForeignKey("prescription.id"))
    queue: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(40), default="")
    priority: Mapped[int] = mapped_column(Integer, default=3)  # 1 highest
    status: Mapped[str] = mapped_column(String(12), default="open")  # open | claimed | snoozed | resolved
    title: Mapped[str] = mapped_column(String(200))
    detail: Mapped[Json] = mapped_column(JSON, default=dict)
    due_by: Mapped[datetime] = mapped_column(UTCDateTime)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    snoozed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(40))
    note: Mapped[str | None] = mapped_column(Text)
    source_message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TaskNote(Base):
    """A timeline entry on a task: call logged, moved, snoozed, replied, escalated."""

    __tablename__ = "task_note"
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("task.id"), index=True)
    staff_user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    kind: Mapped[str] = mapped_column(String(30))
    text: Mapped[str] = mapped_column(Text, default="")
    # The patient's text a ``patient_message`` note carries (a staff hand-off), or a staff reply's message.
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"))
    created_at: Mapped[datetime] = _created()


class Signal(Base):
    """An adherence or abandonment signal, with provenance, for the dispensary record."""

    __tablename__ = "signal"
    __table_args__ = (UniqueConstraint("dedupe_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patient.id"), index=True)
    prescription_id: Mapped[str | None] = mapped_column(ForeignKey("prescription.id"))
    site_id: Mapped[str] = mapped_column(ForeignKey("site.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    value: Mapped[Json] = mapped_column(JSON, default=dict)
    source: Mapped[str] = mapped_column(String(20))  # patient | computed | staff | provider
    source_message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"))
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = _created()


class SinkCursor(Base):
    """How far each signal sink has exported (the since-watermark)."""

    __tablename__ = "sink_cursor"
    sink: Mapped[str] = mapped_column(String(40), primary_key=True)
    last_signal_id: Mapped[int] = mapped_column(Integer, default=0)
    # A short lease so only one replica pushes a sink at a time (no duplicate sends across processes).
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class DeadLetter(Base):
    """A signal a sink could not take after its retries; staff can replay it."""

    __tablename__ = "dead_letter"
    __table_args__ = (UniqueConstraint("sink", "signal_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    sink: Mapped[str] = mapped_column(String(40))
    signal_id: Mapped[int] = mapped_column(ForeignKey("signal.id"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[str] = mapped_column(String(12), default="dead")  # dead | replayed
    created_at: Mapped[datetime] = _created()


class PhoneSuppression(Base):
    """A phone number that opted out, kept per number: it holds for any patient imported later with it,
    and for a number not on file, until that number opts in again."""

    __tablename__ = "phone_suppression"
    phone: Mapped[str] = mapped_column(String(20), primary_key=True)
    opted_out_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(30))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"))


class ProgramOptOut(Base):
    """A patient who asked to stop one kind of text ("stop sending me the copay stuff"): the dispatcher skips
    that program kind's outreach for them until they opt in again; everything else still goes out."""

    __tablename__ = "program_opt_out"
    patient_id: Mapped[str] = mapped_column(ForeignKey("patient.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    opted_out_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(30))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"))


class ConsentEvent(Base):
    """A change of a patient's SMS consent, with the message that caused it."""

    __tablename__ = "consent_event"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patient.id"), index=True)
    change: Mapped[str] = mapped_column(String(30))  # opt_out | opt_in | detailed_yes | detailed_no
    source: Mapped[str] = mapped_column(
        String(30)
    )  # sms_keyword | sms_text | provider_21610 | staff | import
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"))
    created_at: Mapped[datetime] = _created()


class StaffUser(Base):
    """A pharmacist, technician, financial navigator or clinic admin of one site."""

    __tablename__ = "staff_user"
    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("site.id"), index=True)
    email: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(30))
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = _created()
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SavedView(Base):
    """A staff user's named set of queue filters (the query string of /queues), shown as a link there."""

    __tablename__ = "saved_view"
    __table_args__ = (UniqueConstraint("user_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"), index=True)
    name: Mapped[str] = mapped_column(String(60))
    query: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = _created()


class StaffSession(Base):
    """A signed-in browser session (the cookie carries a random id; we store its hash)."""

    __tablename__ = "staff_session"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = _created()


class LoginAttempt(Base):
    """A failed sign-in, for throttling by email and address."""

    __tablename__ = "login_attempt"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(200), index=True)
    remote: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = _created()


class ApiToken(Base):
    """An API token scoped to one site; only its hash is stored."""

    __tablename__ = "api_token"
    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("site.id"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = _created()
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditEvent(Base):
    """Who did or saw what, when: every staff read of a patient record and every action."""

    __tablename__ = "audit_event"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200))  # user:ID | token:ID | system
    site_id: Mapped[str | None] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(60))
    patient_id: Mapped[str | None] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(100), default="")
    detail: Mapped[Json] = mapped_column(JSON, default=dict)


class ProviderStatus(Base):
    """A status callback that arrived before we knew the message's provider sid (applied when we learn it)."""

    __tablename__ = "provider_status"
    id: Mapped[int] = mapped_column(primary_key=True)
    provider_sid: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(20))
    error_code: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = _created()
