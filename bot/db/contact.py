"""Whether a patient's phone takes texts: provider errors and delivery outcomes, the deliverability record,
and the contact-details task staff get when a number stops working (opened once).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from bot.db.consent import opt_out_phone
from bot.db.models import Message, Outreach, Patient
from bot.db.tasks import open_task
from bot.db.unit import SiteCache, load_patients

__all__ = [
    "BAD_NUMBER_CODES",
    "BAD_PHONE_STATUSES",
    "OPTED_OUT_CODE",
    "cancel_outreach",
    "delivery_outcome",
    "expire_unsent_replies",
    "is_wrong_number",
    "mark_wrong_number",
    "on_permanent_error",
    "record_deliveries",
]

OPTED_OUT_CODE = 21610  # the handset replied STOP to the provider (or opted out at the carrier)
BAD_NUMBER_CODES = frozenset({21211, 21614})  # invalid number; not a mobile number
BAD_PHONE_STATUSES = ("invalid", "not_mobile")
_CARRIER_CODES = frozenset({30003, 30004, 30005, 30006, 30007, 30008})
_SET_PHONE_STATUS = (
    update(Patient).where(Patient.id == bindparam("b_id")).values(phone_status=bindparam("b_status"))
)
_SET_DELIVERABILITY = (
    update(Patient).where(Patient.id == bindparam("b_id")).values(deliverability=bindparam("b_record"))
)


def _contact_task(
    conn: Connection,
    sites: SiteCache,
    patient: Patient,
    title: str,
    detail: dict[str, Any],
    message_id: int,
    now: datetime,
    kind: str = "fix_contact",
) -> None:
    open_task(
        conn,
        site_id=patient.site_id,
        queue="general",
        kind=kind,
        title=title,
        now=now,
        patient_id=patient.id,
        priority=3,
        detail=detail,
        source_message_id=message_id,
        sites=sites,
    )


def _opted_out_again(conn: Connection, sites: SiteCache, patient: Patient, message_id: int, now: datetime) -> None:
    """21610 on the confirmation of an opt-in made in words: the patient had sent a STOP keyword, which Twilio
    honours until the handset itself texts START; midbot cannot reach them, so a person is told to."""
    if conn.scalar(select(Message.kind).where(Message.id == message_id)) != "opt_in_confirm":
        return
    title = "Asked to get texts again, but the carrier blocks the number until the patient texts START"
    _contact_task(
        conn, sites, patient, title, {"error_code": OPTED_OUT_CODE}, message_id, now, kind="resume_needs_start"
    )


_PENDING_OUTREACH = ("planned", "deferred", "claimed")


def cancel_outreach(
    conn: Connection,
    *,
    patient_ids: Sequence[str],
    reason: str,
    now: datetime,
    kind: str | None = None,
    prescription_id: str | None = None,
    due_before: datetime | None = None,
) -> int:
    """Cancel pending outreach rows of these patients (optionally one kind, therapy, or due before a time)."""
    if not patient_ids:
        return 0
    stmt = update(Outreach).where(
        Outreach.patient_id.in_(list(patient_ids)), Outreach.state.in_(_PENDING_OUTREACH)
    )
    if kind is not None:
        stmt = stmt.where(Outreach.kind == kind)
    if prescription_id is not None:
        stmt = stmt.where(Outreach.prescription_id == prescription_id)
    if due_before is not None:
        stmt = stmt.where(Outreach.due_at < due_before)
    result = conn.execute(stmt.values(state="cancelled", reason=reason, updated_at=now))
    return int(result.rowcount or 0)


def mark_wrong_number(conn: Connection, phone: str, now: datetime) -> list[str]:
    """The person at this number is not the patient: no more outreach to it (until staff give the patient
    another number); returns the patients concerned."""
    patients = load_patients(conn, "phone", [phone])
    for patient in patients:
        record = {**(patient.deliverability or {}), "wrong_number": phone, "wrong_number_at": now.isoformat()}
        conn.execute(_SET_DELIVERABILITY, [{"b_id": patient.id, "b_record": record}])
    cancel_outreach(conn, patient_ids=[p.id for p in patients], reason="wrong_number", now=now)
    return [p.id for p in patients]


def expire_unsent_replies(conn: Connection, message_ids: Sequence[int], now: datetime) -> int:
    """Replies the provider never took before their deadline: ``expired``/``provider_unavailable``, and a
    task so a person reaches the patient another way. Returns how many expired."""
    rows = conn.execute(
        select(Message.id, Message.patient_id, Message.site_id, Message.task_id).where(
            Message.id.in_(list(message_ids)), Message.status.in_(("pending", "unknown"))
        )
    ).all()
    if not rows:
        return 0
    conn.execute(
        update(Message)
        .where(Message.id.in_([r.id for r in rows]))
        .values(status="expired", error_message="provider_unavailable", status_updated_at=now)
    )
    sites = SiteCache(conn)
    for row in rows:
        if row.site_id is None:
            continue
        open_task(
            conn,
            site_id=row.site_id,
            queue="general",
            kind="reply_not_sent",
            title="A reply could not be sent (text provider unavailable): contact the patient",
            now=now,
            patient_id=row.patient_id,
            priority=2,
            detail={"message_id": row.id, "task_id": row.task_id},
            sites=sites,
        )
    return len(rows)


def is_wrong_number(patient: Patient) -> bool:
    """True when the patient's current phone was reported as someone else's."""
    return bool(patient.phone) and (patient.deliverability or {}).get("wrong_number") == patient.phone


def on_permanent_error(conn: Connection, patient_id: str, code: int, message_id: int, now: datetime) -> None:
    """Act on a provider's permanent error for a text to this patient: 21610 opts the phone out; a bad number
    (21211, 21614) is flagged on the patient and a contact-details task is opened, once."""
    patients = load_patients(conn, "id", [patient_id])
    if not patients:
        return
    patient = patients[0]
    if code == OPTED_OUT_CODE:
        opt_out_phone(conn, patient.phone, source="provider_21610", message_id=message_id, now=now)
        _opted_out_again(conn, SiteCache(conn), patient, message_id, now)
    elif code in BAD_NUMBER_CODES and patient.phone_status not in BAD_PHONE_STATUSES:
        status = "invalid" if code == 21211 else "not_mobile"
        conn.execute(_SET_PHONE_STATUS, {"b_id": patient.id, "b_status": status})
        title = "Phone number cannot receive texts: update contact details"
        _contact_task(conn, SiteCache(conn), patient, title, {"error_code": code}, message_id, now)


def delivery_outcome(
    record: dict[str, Any], status: str, code: int | None, now: datetime
) -> tuple[dict[str, Any], bool, bool]:
    """A patient's deliverability record after one outcome: (new record, opt the phone out, open a task).

    ``delivered`` resets the failure streak; a failure with a code counts it; 21610 (the handset opted out
    at the carrier) opts the phone out; a carrier code marks the number landline or unreachable, and the
    first time (30006) or after three failures in a row a fix-contact task is due.
    """
    record = dict(record)
    opt_out = contact = False
    if status == "delivered":
        record.update(consecutive_failures=0, last_delivered_at=now.isoformat())
    elif status in ("undelivered", "failed") and code is not None:
        opt_out = code == OPTED_OUT_CODE
        record["consecutive_failures"] = int(record.get("consecutive_failures", 0)) + 1
        record["failures"] = int(record.get("failures", 0)) + 1
        record.update(last_error_code=code, last_error_at=now.isoformat())
        if code in _CARRIER_CODES:
            record["status"] = "landline" if code == 30006 else "unreachable"
            failures = int(record["consecutive_failures"])
            if not record.get("task_opened") and (code == 30006 or failures >= 3):
                record["task_opened"] = contact = True
    return record, opt_out, contact


def record_deliveries(
    conn: Connection, outcomes: Sequence[tuple[int, str, str, int | None, datetime]]
) -> None:
    """Feed final delivery outcomes — (message id, patient id, status, code, time), in order — into each
    patient's deliverability record, acting on 21610 and dead numbers."""
    lock = conn.dialect.name == "postgresql"
    patients = {p.id: p for p in load_patients(conn, "id", {o[1] for o in outcomes}, lock=lock)}
    sites = SiteCache(conn)
    changed: dict[str, Patient] = {}
    for message_id, patient_id, status, code, at in outcomes:
        patient = patients.get(patient_id)
        if patient is None:
            continue
        record, opt_out, contact = delivery_outcome(dict(patient.deliverability or {}), status, code, at)
        if opt_out:
            opt_out_phone(conn, patient.phone, source="provider_21610", message_id=message_id, now=at)
            _opted_out_again(conn, sites, patient, message_id, at)
        if contact and code is not None:
            failures = int(record.get("consecutive_failures", 0))
            title = "Texts are not reaching this patient: check the phone number"
            _contact_task(
                conn, sites, patient, title, {"error_code": code, "failures": failures}, message_id, at
            )
        patient.deliverability = record
        changed[patient.id] = patient
    if changed:
        conn.execute(
            _SET_DELIVERABILITY, [{"b_id": p.id, "b_record": p.deliverability} for p in changed.values()]
        )
