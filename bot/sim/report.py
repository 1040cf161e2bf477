"""The figures of a simulated period, read back from the store the simulation wrote: one dict, stable order.

Weeks run from the simulation's start (the first site's local midnight); days are that zone's calendar days.
Every count is of rows the production code wrote: texts (Message rows that went to the provider), tasks (Task
rows, with the SLA due time ``bot.db.tasks.compute_due_by`` gave them), outreach rows that never went out (their
reason), opt-outs (``Patient.opted_out_at``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Fill, Message, Outreach, Patient, Prescription, Site, Task
from bot.db.sitecfg import site_config
from bot.db.vocabulary import QUEUES
from scheduler.runout import FillRecord, run_out_date

__all__ = ["ReportInput", "sla_words", "weekly_report"]

_NOT_SIMULATED = "not_simulated"


@dataclass(frozen=True)
class ReportInput:
    """What the report is about (the simulation's own parameters are echoed in it)."""

    start: datetime
    weeks: int
    site_ids: tuple[str, ...]
    zone: str
    price_per_segment: Decimal
    parameters: dict[str, Any]


@dataclass
class _Week:
    outreach: int = 0
    other: int = 0
    segments: int = 0
    replies: int = 0
    reminders: int = 0
    before_run_out: int = 0
    opt_outs: int = 0
    patients: set[str] = field(default_factory=set)
    not_sent: Counter[str] = field(default_factory=Counter)
    days: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)


async def weekly_report(session: AsyncSession, spec: ReportInput) -> dict[str, Any]:
    """The simulation's figures per week and in total (JSON-ready; keys in a fixed order)."""
    zone = ZoneInfo(spec.zone)
    first_day = spec.start.astimezone(zone).date()
    end = spec.start + timedelta(days=7 * spec.weeks)
    weeks = [_Week() for _ in range(spec.weeks)]
    for i, week in enumerate(weeks):
        for d in range(7):
            day = (first_day + timedelta(days=7 * i + d)).isoformat()
            week.days[day] = {q: {"opened": 0, "due": 0} for q in QUEUES}

    def week_of(at: datetime) -> _Week | None:
        index = (at - spec.start) // timedelta(days=7)
        return weeks[index] if 0 <= index < spec.weeks else None

    sites = list(spec.site_ids)
    await _texts(session, spec.start, end, sites, week_of)
    await _reminders(session, spec.start, end, sites, week_of)
    await _tasks(session, spec.start, end, sites, zone, week_of)
    await _opt_outs_and_holds(session, spec.start, end, sites, week_of)
    rows = [_week_dict(i, first_day, w, spec.price_per_segment) for i, w in enumerate(weeks)]
    return {
        "simulation": spec.parameters,
        "sites": await _sites(session, sites),
        "weeks": rows,
        "totals": _totals(rows, spec.price_per_segment),
    }


async def _texts(
    session: AsyncSession, start: datetime, end: datetime, sites: list[str], week_of: Any
) -> None:
    sent = await session.execute(
        select(
            Message.created_at, Message.kind, Message.segments, Message.patient_id, Message.direction
        ).where(
            Message.site_id.in_(sites),
            Message.created_at >= start,
            Message.created_at < end,
            (Message.direction == "in") | Message.provider_sid.is_not(None),
        )
    )
    for created, kind, segments, patient_id, direction in sent:
        week = week_of(created)
        if week is None:
            continue
        if direction == "in":
            week.replies += 1
            continue
        if kind == "outreach":
            week.outreach += 1
        else:
            week.other += 1
        week.segments += int(segments or 1)
        if patient_id:
            week.patients.add(patient_id)


async def _reminders(
    session: AsyncSession, start: datetime, end: datetime, sites: list[str], week_of: Any
) -> None:
    """Refill reminders that went out, and whether the patient still had medicine on the day they got it."""
    rows = (
        await session.execute(
            select(Outreach.prescription_id, Message.created_at, Patient.time_zone, Site.time_zone)
            .join(Message, Message.id == Outreach.message_id)
            .join(Patient, Patient.id == Outreach.patient_id)
            .join(Prescription, Prescription.id == Outreach.prescription_id)
            .join(Site, Site.id == Prescription.site_id)
            .where(
                Outreach.kind == "refill_reminder",
                Outreach.state == "sent",
                Prescription.site_id.in_(sites),
                Message.created_at >= start,
                Message.created_at < end,
            )
        )
    ).all()
    fills: dict[str, list[FillRecord]] = defaultdict(list)
    rx_ids = sorted({r[0] for r in rows if r[0]})
    for start_at in range(0, len(rx_ids), 500):
        chunk = rx_ids[start_at : start_at + 500]
        found = await session.execute(
            select(Fill.prescription_id, Fill.dispensed_on, Fill.days_supply).where(
                Fill.prescription_id.in_(chunk)
            )
        )
        for rx, dispensed, supply in found:
            fills[rx].append(FillRecord(dispensed, supply))
    for rx_id, created, patient_zone, site_zone in rows:
        week = week_of(created)
        if week is None:
            continue
        week.reminders += 1
        today = created.astimezone(ZoneInfo(patient_zone or site_zone)).date()
        run_out = run_out_date(f for f in fills.get(rx_id or "", []) if f.dispensed_on <= today)
        if run_out is not None and today < run_out:
            week.before_run_out += 1


async def _tasks(
    session: AsyncSession, start: datetime, end: datetime, sites: list[str], zone: ZoneInfo, week_of: Any
) -> None:
    rows = await session.execute(
        select(Task.created_at, Task.queue, Task.due_by).where(
            Task.site_id.in_(sites), Task.created_at >= start, Task.created_at < end
        )
    )
    for created, queue, due_by in rows:
        week = week_of(created)
        if week is not None:
            week.days[created.astimezone(zone).date().isoformat()][queue]["opened"] += 1
        due_week = week_of(due_by) if due_by is not None else None
        if due_week is not None:
            due_week.days[due_by.astimezone(zone).date().isoformat()][queue]["due"] += 1


async def _opt_outs_and_holds(
    session: AsyncSession, start: datetime, end: datetime, sites: list[str], week_of: Any
) -> None:
    opted = await session.scalars(
        select(Patient.opted_out_at).where(
            Patient.site_id.in_(sites), Patient.opted_out_at >= start, Patient.opted_out_at < end
        )
    )
    for at in opted:
        week = week_of(at)
        if week is not None:
            week.opt_outs += 1
    held = await session.execute(
        select(Outreach.due_at, Outreach.reason)
        .join(Patient, Patient.id == Outreach.patient_id)
        .where(
            Patient.site_id.in_(sites),
            Outreach.state.in_(("cancelled", "expired", "failed")),
            Outreach.reason != _NOT_SIMULATED,
            Outreach.due_at >= start,
            Outreach.due_at < end,
        )
    )
    for due, reason in held:
        week = week_of(due)
        if week is not None:
            week.not_sent[reason or "unknown"] += 1


def _money(segments: int, price: Decimal) -> float:
    return float((price * segments).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


def _week_dict(index: int, first_day: date, week: _Week, price: Decimal) -> dict[str, Any]:
    days = week.days
    by_queue = {q: sum(d[q]["opened"] for d in days.values()) for q in QUEUES}
    return {
        "week": index + 1,
        "from": (first_day + timedelta(days=7 * index)).isoformat(),
        "to": (first_day + timedelta(days=7 * index + 6)).isoformat(),
        "texts": week.outreach + week.other,
        "outreach_texts": week.outreach,
        "reply_texts": week.other,
        "segments": week.segments,
        "cost": _money(week.segments, price),
        "patients_texted": len(week.patients),
        "replies_received": week.replies,
        "refill_reminders": week.reminders,
        "reminders_before_run_out": week.before_run_out,
        "tasks": by_queue,
        "tasks_per_day": days,
        "opt_outs": week.opt_outs,
        "not_sent": dict(sorted(week.not_sent.items())),
    }


def _totals(rows: list[dict[str, Any]], price: Decimal) -> dict[str, Any]:
    keys = (
        "texts",
        "outreach_texts",
        "reply_texts",
        "segments",
        "replies_received",
        "refill_reminders",
        "reminders_before_run_out",
        "opt_outs",
    )
    totals: dict[str, Any] = {k: sum(int(r[k]) for r in rows) for k in keys}
    totals["cost"] = _money(totals["segments"], price)
    totals["tasks"] = {q: sum(int(r["tasks"][q]) for r in rows) for q in QUEUES}
    days = max(1, 7 * len(rows))
    totals["tasks_per_day_average"] = {q: round(totals["tasks"][q] / days, 2) for q in QUEUES}
    not_sent: Counter[str] = Counter()
    for r in rows:
        not_sent.update(r["not_sent"])
    totals["not_sent"] = dict(sorted(not_sent.items()))
    return totals


async def _sites(session: AsyncSession, sites: list[str]) -> list[dict[str, Any]]:
    out = []
    for site in await session.scalars(select(Site).where(Site.id.in_(sites)).order_by(Site.id)):
        cfg = site_config(site)
        out.append({"id": site.id, "name": site.name, "time_zone": site.time_zone, "sla": sla_words(cfg)})
    return out


def sla_words(cfg: Any) -> dict[str, str]:
    """Each queue's SLA as ``bot.db.tasks.compute_due_by`` applies it, in words."""
    words: dict[str, str] = {}
    for queue in QUEUES:
        hours = cfg.sla_hours.get(queue)
        if queue == "clinical" and hours is None:
            words[queue] = f"by the end of the business day ({cfg.business_hours[1]})"
        elif queue == "urgent_clinical":
            words[queue] = f"{_hours(hours if hours is not None else 1.0)}, day or night"
        else:
            words[queue] = f"{_hours(hours if hours is not None else 24.0)}, business days"
    return words


def _hours(value: float) -> str:
    if value < 1:
        return f"{round(value * 60)} min"
    return f"{value:g} h"
