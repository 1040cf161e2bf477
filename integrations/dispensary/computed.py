"""Computed signals: PDC below threshold, primary and secondary abandonment, unreachable patients.

Run by the hourly job (and ``midbot signals compute``). Each signal has a dedupe key naming its episode,
so re-running adds nothing new:

* ``pdc_below_threshold:{rx}:{YYYY-MM}`` — at most one per active prescription per month;
* ``primary_abandonment:{rx}`` — once per prescription;
* ``secondary_abandonment:{rx}:{run-out date}`` — once per lapse (a refill starts a new episode);
* ``unreachable:{patient}:{last delivery}`` — once per run of failures since the last delivered text.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Fill, Message, Patient, Prescription, PrescriptionEvent, Site
from bot.db.signals import record_signal
from bot.db.unit import in_session
from integrations.dispensary.abandonment import primary_abandonment, secondary_abandonment
from integrations.dispensary.adherence import FillRecord, NoFillInPeriod, pdc

__all__ = ["PDC_WINDOW_DAYS", "compute_signals", "local_date", "site_zone"]

_LOGGER = logging.getLogger(__name__)

PDC_WINDOW_DAYS = 180
UNREACHABLE_AFTER = 3
_FAILED = frozenset({"failed", "undelivered"})
_OPEN_STATUSES = frozenset({"received", "active", "on_hold"})


def site_zone(site: Site | None) -> ZoneInfo:
    """A site's time zone (UTC when unknown or invalid)."""
    try:
        return ZoneInfo(site.time_zone) if site is not None and site.time_zone else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_date(at: datetime, zone: ZoneInfo) -> date:
    """The calendar day of an aware datetime in a zone."""
    return at.astimezone(zone).date()


def _start_of(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=zone).astimezone(UTC)


@dataclass
class _Therapy:
    """What the rules need about one prescription."""

    rx: Prescription
    zone: ZoneInfo
    fills: list[FillRecord] = field(default_factory=list)
    received_on: date | None = None
    declined_at: datetime | None = None
    decline_reason: str | None = None


async def _therapies(session: AsyncSession, site_id: str | None) -> list[_Therapy]:
    rx_query = select(Prescription).order_by(Prescription.id)
    if site_id is not None:
        rx_query = rx_query.where(Prescription.site_id == site_id)
    prescriptions = list(await session.scalars(rx_query))
    sites = {s.id: s for s in await session.scalars(select(Site))}
    by_id = {rx.id: _Therapy(rx, site_zone(sites.get(rx.site_id))) for rx in prescriptions}
    if not by_id:
        return []
    for fill in await session.scalars(select(Fill).where(Fill.prescription_id.in_(list(by_id)))):
        if fill.days_supply >= 1:
            by_id[fill.prescription_id].fills.append(FillRecord(fill.dispensed_on, fill.days_supply))
    events = await session.scalars(
        select(PrescriptionEvent)
        .where(PrescriptionEvent.prescription_id.in_(list(by_id)))
        .where(PrescriptionEvent.name.in_(["received", "declined"]))
        .order_by(PrescriptionEvent.occurred_at)
    )
    for event in events:
        _apply_event(by_id[event.prescription_id], event)
    for therapy in by_id.values():
        if therapy.received_on is None and therapy.rx.status == "received":
            therapy.received_on = therapy.rx.written_on or local_date(therapy.rx.created_at, therapy.zone)
    return list(by_id.values())


def _apply_event(therapy: _Therapy, event: PrescriptionEvent) -> None:
    if event.name == "received" and therapy.received_on is None:
        therapy.received_on = local_date(event.occurred_at, therapy.zone)
    elif event.name == "declined" and therapy.declined_at is None:
        therapy.declined_at = event.occurred_at
        reason = (event.detail or {}).get("reason")
        therapy.decline_reason = reason if isinstance(reason, str) else None


@dataclass(frozen=True)
class _Found:
    """A signal to record."""

    kind: str
    patient_id: str
    site_id: str
    prescription_id: str | None
    occurred_at: datetime
    dedupe_key: str
    value: dict[str, Any]


def _pdc_signal(t: _Therapy, today: date, now: datetime, threshold: float) -> _Found | None:
    if t.rx.status != "active" or not t.fills:
        return None
    start = today - timedelta(days=PDC_WINDOW_DAYS - 1)
    try:
        result = pdc(t.fills, period_start=start, period_end=today, threshold=threshold)
    except NoFillInPeriod:
        return None
    if not result.eligible or result.pdc >= threshold:
        return None
    value = {
        "pdc": result.pdc,
        "threshold": threshold,
        "period_start": result.index_date.isoformat(),
        "period_end": result.period_end.isoformat(),
        "days_covered": result.days_covered,
        "days_in_period": result.days_in_period,
        "max_gap_days": result.max_gap_days,
    }
    key = f"pdc_below_threshold:{t.rx.id}:{today:%Y-%m}"
    return _Found("pdc_below_threshold", t.rx.patient_id, t.rx.site_id, t.rx.id, now, key, value)


def _primary_signal(t: _Therapy, today: date, now: datetime, window: int) -> _Found | None:
    if t.received_on is None or t.rx.status not in _OPEN_STATUSES:
        return None
    first = min((f.dispensed_on for f in t.fills), default=None)
    declined_on = local_date(t.declined_at, t.zone) if t.declined_at else None
    verdict = primary_abandonment(
        t.received_on,
        first,
        as_of=today,
        declined_on=declined_on,
        decline_reason=t.decline_reason,
        window_days=window,
    )
    if not verdict.abandoned:
        return None
    if (
        declined_on is not None
        and t.declined_at is not None
        and verdict.reason
        and "declined" in verdict.reason
    ):
        occurred = t.declined_at
    else:
        occurred = min(now, _start_of(t.received_on + timedelta(days=window + 1), t.zone))
    value = {
        "received_on": t.received_on.isoformat(),
        "reason": verdict.reason,
        "days_waiting": verdict.days_waiting,
        "window_days": window,
    }
    key = f"primary_abandonment:{t.rx.id}"
    return _Found("primary_abandonment", t.rx.patient_id, t.rx.site_id, t.rx.id, occurred, key, value)


def _secondary_signal(t: _Therapy, today: date, now: datetime, grace: int) -> _Found | None:
    if t.rx.status != "active" or not t.fills:
        return None
    verdict = secondary_abandonment(t.fills, as_of=today, status=t.rx.status, grace_days=grace)
    if not verdict.abandoned or verdict.run_out is None:
        return None
    occurred = min(now, _start_of(verdict.run_out + timedelta(days=grace + 1), t.zone))
    last_fill = max(f.dispensed_on for f in t.fills if f.dispensed_on <= today)
    value = {
        "run_out_on": verdict.run_out.isoformat(),
        "days_since_run_out": verdict.days_since_run_out,
        "last_fill_on": last_fill.isoformat(),
        "grace_days": grace,
        "reason": verdict.reason,
    }
    key = f"secondary_abandonment:{t.rx.id}:{verdict.run_out.isoformat()}"
    return _Found("secondary_abandonment", t.rx.patient_id, t.rx.site_id, t.rx.id, occurred, key, value)


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _unreachable_reason(patient: Patient, recent: Sequence[Message]) -> str | None:
    """Why a patient cannot be reached by SMS, or None when they can (as far as we know)."""
    record = patient.deliverability or {}
    if patient.phone_status in ("invalid", "not_mobile"):
        return "invalid_number" if patient.phone_status == "invalid" else "not_mobile"
    delivered_at = _parse_time(record.get("last_delivered_at"))
    failed_at = _parse_time(record.get("last_error_at"))
    stale = delivered_at is not None and (failed_at is None or delivered_at > failed_at)
    if record.get("status") in ("landline", "unreachable") and not stale:
        return "landline" if record["status"] == "landline" else "carrier_unreachable"
    if int(record.get("consecutive_failures", 0) or 0) >= UNREACHABLE_AFTER:
        return "delivery_failures"
    last = list(recent[:UNREACHABLE_AFTER])
    if len(last) == UNREACHABLE_AFTER and all(m.status in _FAILED for m in last):
        return "delivery_failures"
    return None


async def _unreachable(session: AsyncSession, site_id: str | None, now: datetime) -> list[_Found]:
    query = select(Patient).where(Patient.opted_out_at.is_(None), Patient.sms_consent.is_(True))
    if site_id is not None:
        query = query.where(Patient.site_id == site_id)
    patients = list(await session.scalars(query.order_by(Patient.id)))
    if not patients:
        return []
    recent: dict[str, list[Message]] = defaultdict(list)
    outbound = await session.scalars(
        select(Message)
        .where(Message.direction == "out", Message.patient_id.in_([p.id for p in patients]))
        .where(Message.created_at >= now - timedelta(days=90))
        .order_by(Message.id.desc())
    )
    for message in outbound:
        if message.patient_id is not None and message.status not in ("pending", "queued", "sending"):
            recent[message.patient_id].append(message)
    return [found for p in patients if (found := _unreachable_signal(p, recent[p.id], now)) is not None]


def _unreachable_signal(patient: Patient, recent: Sequence[Message], now: datetime) -> _Found | None:
    reason = _unreachable_reason(patient, recent)
    if reason is None:
        return None
    record = patient.deliverability or {}
    marker = record.get("last_delivered_at") or next(
        (str(m.id) for m in recent if m.status == "delivered"), "never"
    )
    failed = [m for m in recent if m.status in _FAILED]
    occurred = _parse_time(record.get("last_error_at")) or (failed[0].created_at if failed else now)
    value = {
        "reason": reason,
        "last_error_code": record.get("last_error_code") or (failed[0].error_code if failed else None),
        "consecutive_failures": int(record.get("consecutive_failures", 0) or 0) or len(failed),
    }
    key = f"unreachable:{patient.id}:{marker}"
    return _Found("unreachable", patient.id, patient.site_id, None, min(occurred, now), key, value)


async def _record(session: AsyncSession, found: Iterable[_Found], now: datetime) -> int:
    added = 0
    for item in found:
        signal = await in_session(
            session,
            record_signal,
            patient_id=item.patient_id,
            site_id=item.site_id,
            kind=item.kind,
            source="computed",
            occurred_at=item.occurred_at,
            value=item.value,
            prescription_id=item.prescription_id,
            dedupe_key=item.dedupe_key,
            created_at=now,
        )
        added += signal is not None
    return added


async def compute_signals(
    session: AsyncSession,
    *,
    now: datetime,
    pdc_threshold: float = 0.8,
    secondary_days: int = 30,
    primary_days: int = 30,
    site_id: str | None = None,
) -> int:
    """Find and record computed signals as of ``now``; returns how many were new.

    Args:
        session: the unit of work (the caller commits).
        now: the time to evaluate at (days are the site's local calendar days).
        pdc_threshold: PDC under which an active prescription is flagged (PQA eligible periods only:
            index date at least 91 days before today, over the last 180 days).
        secondary_days: days after run-out without a refill before secondary abandonment.
        primary_days: days after receipt without a first fill before primary abandonment.
        site_id: only this site (default: every site).
    """
    if now.tzinfo is None:
        raise ValueError("now: needs a time zone")
    found: list[_Found] = []
    for therapy in await _therapies(session, site_id):
        today = local_date(now, therapy.zone)
        for rule in (
            _pdc_signal(therapy, today, now, pdc_threshold),
            _primary_signal(therapy, today, now, primary_days),
            _secondary_signal(therapy, today, now, secondary_days),
        ):
            if rule is not None:
                found.append(rule)
    found += await _unreachable(session, site_id, now)
    added = await _record(session, found, now)
    _LOGGER.info("computed signals: %d found, %d new", len(found), added)
    return added
