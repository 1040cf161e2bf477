"""The consent store: opt-out and opt-in of a phone number (for every patient and site sharing it), and
detailed-message consent. Every consent change writes a ``consent_event`` row.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bot.db.models import ConsentEvent, Conversation, Outreach, Patient, PhoneSuppression, ProgramOptOut
from bot.db.unit import load_patients
from bot.db.vocabulary import CONSENT_CHANGES

__all__ = [
    "add_consent_event",
    "apply_number_suppression",
    "is_suppressed",
    "opt_out_program",
    "opted_out_programs",
    "opt_in_phone",
    "opt_out_phone",
    "set_detailed_consent",
    "suppress_number",
]

_INSERT_CONSENT = insert(ConsentEvent)
_SET_OPTED_OUT = update(Patient).where(Patient.id == bindparam("b_id")).values(opted_out_at=bindparam("b_at"))
_PENDING_OUTREACH = ("planned", "deferred", "claimed")


def add_consent_event(
    conn: Connection, *, patient_id: str, change: str, source: str, message_id: int | None, now: datetime
) -> None:
    """One consent_event row.

    Raises:
        ValueError: an unknown change.
    """
    if change not in CONSENT_CHANGES:
        raise ValueError(f"change: unknown consent change {change!r}")
    conn.execute(
        _INSERT_CONSENT,
        {
            "patient_id": patient_id,
            "change": change,
            "source": source,
            "message_id": message_id,
            "created_at": now,
        },
    )


_PROGRAM_OPT_OUT = {
    name: dialect.insert(ProgramOptOut).on_conflict_do_nothing(index_elements=["patient_id", "kind"])
    for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))
}
_SUPPRESSION = {
    name: dialect.insert(PhoneSuppression).on_conflict_do_nothing(index_elements=["phone"])
    for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))
}


def suppress_number(
    conn: Connection, phone: str, *, source: str, message_id: int | None, now: datetime
) -> bool:
    """Keep the number's opt-out as a number (for patients imported later, and senders not on file);
    True when the number was not suppressed before."""
    row = {"phone": phone, "opted_out_at": now, "source": source[:30], "message_id": message_id}
    return bool(conn.execute(_SUPPRESSION[conn.dialect.name], row).rowcount)


def is_suppressed(conn: Connection, phone: str) -> bool:
    """True while the number is opted out."""
    return (
        conn.execute(select(PhoneSuppression.phone).where(PhoneSuppression.phone == phone)).first()
        is not None
    )


def apply_number_suppression(conn: Connection, patient_ids: list[str], now: datetime) -> list[str]:
    """Opt out the given patients whose phone number opted out before they were imported (or given that
    number); returns their ids."""
    if not patient_ids:
        return []
    rows = conn.execute(
        select(Patient.id, PhoneSuppression.opted_out_at)
        .join(PhoneSuppression, PhoneSuppression.phone == Patient.phone)
        .where(Patient.id.in_(patient_ids), Patient.opted_out_at.is_(None))
    ).all()
    for patient_id, at in rows:
        conn.execute(_SET_OPTED_OUT, {"b_id": patient_id, "b_at": at})
        add_consent_event(
            conn, patient_id=patient_id, change="opt_out", source="number", message_id=None, now=now
        )
    return [patient_id for patient_id, _at in rows]


def opt_out_phone(
    conn: Connection, phone: str, *, source: str, message_id: int | None, now: datetime
) -> list[Patient]:
    """Opt out every patient with this phone (all sites share the decision): cancel their pending outreach,
    close their open dialogs, record the consent change, and keep the opt-out for the number itself (it
    holds for patients imported later). Returns the patients newly opted out.

    On PostgreSQL the patient rows are locked first, so two opt-outs of one number cannot interleave.
    """
    suppress_number(conn, phone, source=source, message_id=message_id, now=now)
    patients = load_patients(conn, "phone", [phone], lock=conn.dialect.name == "postgresql")
    changed = [p for p in patients if p.opted_out_at is None]
    for patient in changed:
        patient.opted_out_at = now
        conn.execute(_SET_OPTED_OUT, {"b_id": patient.id, "b_at": now})
        add_consent_event(
            conn, patient_id=patient.id, change="opt_out", source=source, message_id=message_id, now=now
        )
    ids = [p.id for p in patients]
    if ids:
        conn.execute(
            update(Outreach)
            .where(Outreach.patient_id.in_(ids), Outreach.state.in_(_PENDING_OUTREACH))
            .values(state="cancelled", reason="opted_out", updated_at=now)
        )
        conn.execute(
            update(Conversation)
            .where(Conversation.patient_id.in_(ids), Conversation.status == "open")
            .values(status="closed", updated_at=now)
        )
    return changed


def opt_out_program(
    conn: Connection, patient: Patient, kind: str, *, source: str, message_id: int | None, now: datetime
) -> bool:
    """Stop one program kind's texts to this patient ("stop sending me the copay stuff"): the pending outreach
    of that kind is cancelled and the dispatcher skips it from now on; the patient stays subscribed to the rest.
    Records the consent change (``opt_out`` with the kind in its source). True when it was not stopped before."""
    row = {
        "patient_id": patient.id,
        "kind": kind,
        "opted_out_at": now,
        "source": source[:30],
        "message_id": message_id,
    }
    changed = bool(conn.execute(_PROGRAM_OPT_OUT[conn.dialect.name], row).rowcount)
    conn.execute(
        update(Outreach)
        .where(
            Outreach.patient_id == patient.id,
            Outreach.kind == kind,
            Outreach.state.in_(_PENDING_OUTREACH),
        )
        .values(state="cancelled", reason="opted_out_program", updated_at=now)
    )
    if changed:
        add_consent_event(
            conn,
            patient_id=patient.id,
            change="opt_out",
            source=f"program:{kind}"[:30],
            message_id=message_id,
            now=now,
        )
    return changed


def opted_out_programs(conn: Connection, patient_id: str) -> frozenset[str]:
    """The program kinds this patient asked to stop."""
    rows = conn.execute(select(ProgramOptOut.kind).where(ProgramOptOut.patient_id == patient_id))
    return frozenset(rows.scalars())


def opt_in_phone(
    conn: Connection, phone: str, *, source: str, message_id: int | None, now: datetime
) -> list[Patient]:
    """Opt the number back in (only its owner does this, by text): every opted-out patient with this phone
    and the number's suppression; returns the patients whose consent changed."""
    conn.execute(delete(PhoneSuppression).where(PhoneSuppression.phone == phone))
    patients = load_patients(conn, "phone", [phone], lock=conn.dialect.name == "postgresql")
    if patients:  # opting in undoes the program-scoped opt-outs as well
        conn.execute(delete(ProgramOptOut).where(ProgramOptOut.patient_id.in_([p.id for p in patients])))
    changed = [p for p in patients if p.opted_out_at is not None]
    for patient in changed:
        patient.opted_out_at = None
        conn.execute(_SET_OPTED_OUT, {"b_id": patient.id, "b_at": None})
        add_consent_event(
            conn, patient_id=patient.id, change="opt_in", source=source, message_id=message_id, now=now
        )
    return changed


def set_detailed_consent(
    conn: Connection, patient: Patient, agreed: bool, *, source: str, message_id: int | None, now: datetime
) -> None:
    """Record whether the patient agrees to texts that name their medicine."""
    patient.detailed_consent = agreed
    conn.execute(update(Patient).where(Patient.id == patient.id).values(detailed_consent=agreed))
    add_consent_event(
        conn,
        patient_id=patient.id,
        change="detailed_yes" if agreed else "detailed_no",
        source=source,
        message_id=message_id,
        now=now,
    )
