"""What staff see of a patient: the record (therapies with run-out and PDC, signals) and the SMS thread.

Every read writes an audit row (invariant 5), in the same transaction as the read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import audit
from bot.db.models import Fill, Message, Patient, Prescription, Signal, Site
from bot.db.unit import in_session
from bot.staff.auth import Principal, get_scoped
from bot.staff.errors import TaskInvalid, TaskNotFound

__all__ = ["PatientRecord", "TherapyView", "list_messages", "load_patient_record"]


@dataclass(frozen=True, slots=True)
class TherapyView:
    """A prescription with its fills, when the supply runs out and its PDC (when computable)."""

    prescription: Prescription
    fills: tuple[Fill, ...]
    run_out_on: date | None
    days_since_run_out: int | None  # negative: days of supply left
    pdc: float | None


@dataclass(frozen=True, slots=True)
class PatientRecord:
    """What staff see of a patient: the row, the site, therapies and recorded signals."""

    patient: Patient
    site: Site
    therapies: tuple[TherapyView, ...] = ()
    signals: tuple[Signal, ...] = field(default_factory=tuple)


def _adherence(fills: Sequence[Fill], today: date) -> tuple[date | None, float | None]:
    if not fills:
        return None, None
    try:
        from integrations.dispensary.adherence import FillRecord, pdc, run_out_date
    except ImportError:  # pragma: no cover - the adherence module ships with midbot
        end = None
        for fill in sorted(fills, key=lambda f: f.dispensed_on):
            start = max(fill.dispensed_on, end) if end else fill.dispensed_on
            end = start + timedelta(days=fill.days_supply)
        return end, None
    records = [FillRecord(f.dispensed_on, f.days_supply) for f in fills if f.days_supply >= 1]
    run_out = run_out_date(records)
    try:
        ratio: float | None = pdc(records, period_end=today).pdc
    except ValueError:
        ratio = None
    return run_out, ratio


async def load_patient_record(
    session: AsyncSession, principal: Principal, patient_id: str, *, now: datetime, via: str
) -> PatientRecord:
    """Read a patient's record for staff, leaving an audit row (``patient.view``, target ``via``).

    Raises:
        TaskNotFound: no such patient at the caller's site.
    """
    patient = await get_scoped(session, Patient, patient_id, principal.site_id)
    if patient is None:
        raise TaskNotFound(f"no patient {patient_id}")
    site = await session.get(Site, patient.site_id)
    assert site is not None
    today = now.astimezone(ZoneInfo(patient.time_zone or site.time_zone)).date()
    prescriptions = await session.scalars(
        select(Prescription)
        .where(Prescription.patient_id == patient.id, Prescription.site_id == principal.site_id)
        .order_by(Prescription.written_on.desc(), Prescription.id)
    )
    therapies = []
    for rx in prescriptions:
        fills = tuple(
            await session.scalars(
                select(Fill).where(Fill.prescription_id == rx.id).order_by(Fill.dispensed_on)
            )
        )
        run_out, ratio = _adherence(fills, today)
        since = (today - run_out).days if run_out else None
        therapies.append(TherapyView(rx, fills, run_out, since, ratio))
    signals = await session.scalars(
        select(Signal)
        .where(Signal.patient_id == patient.id, Signal.site_id == principal.site_id)
        .order_by(Signal.occurred_at.desc(), Signal.id.desc())
        .limit(100)
    )
    await in_session(
        session,
        audit.record,
        actor=principal.actor,
        action="patient.view",
        site_id=principal.site_id,
        patient_id=patient.id,
        target=via,
        at=now,
    )
    return PatientRecord(patient, site, tuple(therapies), tuple(signals))


async def list_messages(
    session: AsyncSession,
    principal: Principal,
    patient_id: str,
    *,
    now: datetime,
    via: str,
    page: int = 1,
    page_size: int = 100,
    newest_first: bool = False,
) -> tuple[list[Message], int]:
    """A patient's SMS thread (in and out), audited as ``patient.messages``.

    Raises:
        TaskNotFound: no such patient at the caller's site.
        TaskInvalid: a bad page.
    """
    if page < 1:
        raise TaskInvalid("page must be 1 or more", "page")
    patient = await get_scoped(session, Patient, patient_id, principal.site_id)
    if patient is None:
        raise TaskNotFound(f"no patient {patient_id}")
    filters = [Message.patient_id == patient.id]
    total = await session.scalar(select(func.count(Message.id)).where(*filters)) or 0
    order = (
        (Message.created_at.desc(), Message.id.desc()) if newest_first else (Message.created_at, Message.id)
    )
    rows = await session.scalars(
        select(Message).where(*filters).order_by(*order).limit(page_size).offset((page - 1) * page_size)
    )
    await in_session(
        session,
        audit.record,
        actor=principal.actor,
        action="patient.messages",
        site_id=principal.site_id,
        patient_id=patient.id,
        target=via,
        at=now,
    )
    return list(rows), total
