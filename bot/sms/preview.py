"""Program preview: what a programs file would send a site's patients in the next days, changing nothing.

The same pieces as the real path, read-only: the planner's ``occurrences_for`` on the file's programs, the
dispatcher's rules (``row_verdict``, ``patient_verdict``, one text a local day with later rows bundled in),
the channel's ``refusal`` and the sender's ``render_outreach``. Nothing is written and no provider is called;
a patient's own history (texts of the last 7 days for the caps, an open dialog, an earlier outreach for the
first-contact line, occurrences already sent or answered) is read from the store.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Conversation, Fill, Message, Outreach, Patient, Prescription, Site, Task
from bot.db.sitecfg import SiteConfig, site_config
from bot.sms.channel import refusal
from bot.sms.dialogs import ACTIVE_STATUSES
from bot.sms.outreach import outreach_body, render_outreach
from integrations.twilio.segments import segment_info
from scheduler.planner import (
    REVIVABLE,
    Occurrence,
    PatientFacts,
    load_facts,
    occurrences_for,
    planning_window,
)
from scheduler.programs import ActiveProgram, ProgramSpec, spec_json
from scheduler.rules import day_bounds, patient_verdict, row_verdict
from scheduler.timeutil import pick_zone

__all__ = ["Preview", "PreviewText", "preview_programs"]

_PENDING = ("planned", "deferred")
HISTORY_DAYS = 90


@dataclass(frozen=True)
class PreviewText:
    """One text that would be sent: a bundle of occurrences is one text."""

    patient_id: str
    program_ids: list[str]
    due_at: datetime
    language: str
    body: str
    encoding: str
    segments: int

    def as_dict(self) -> dict[str, Any]:
        """The JSON line of DESIGN.md "Program preview"."""
        return {
            "patient_id": self.patient_id,
            "program_ids": self.program_ids,
            "due_at": iso(self.due_at),
            "language": self.language,
            "body": self.body,
            "encoding": self.encoding,
            "segments": self.segments,
        }


@dataclass
class Preview:
    """The texts in sending order, and what was held back, by reason."""

    texts: list[PreviewText] = field(default_factory=list)
    held: Counter[str] = field(default_factory=Counter)
    expected_tasks: dict[str, int] | None = None
    time_zone: str = "UTC"

    def summary(self) -> dict[str, Any]:
        """The summary line: counts that add up to the text lines."""
        zone = ZoneInfo(self.time_zone)
        by_day = Counter(t.due_at.astimezone(zone).date().isoformat() for t in self.texts)
        return {
            "summary": True,
            "texts": len(self.texts),
            "patients": len({t.patient_id for t in self.texts}),
            "segments": sum(t.segments for t in self.texts),
            "by_day": dict(sorted(by_day.items())),
            "held": dict(sorted(self.held.items())),
            "expected_tasks": self.expected_tasks,
        }


def iso(at: datetime) -> str:
    """UTC ISO 8601 with a Z, as `outreach list` prints it."""
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class _Row:
    occ: Occurrence
    due_at: datetime
    rx_status: str | None
    done: bool = False


@dataclass
class _History:
    """What the store already knows about one patient that changes what the dispatcher would do."""

    sent_at: list[datetime] = field(default_factory=list)  # outreach texts of the last 7 days
    dialog_until: datetime | None = None  # an open dialog's expiry (datetime.max: no expiry)
    contacted: bool = False  # an outreach text was sent before
    final_keys: set[str] = field(default_factory=set)  # occurrences already sent, answered, expired


@dataclass
class _Site:
    site: Site
    cfg: SiteConfig
    specs: dict[int, dict[str, Any]]
    end: datetime


async def preview_programs(
    session: AsyncSession,
    site_id: str,
    specs: Sequence[ProgramSpec],
    *,
    now: datetime,
    days: int = 14,
    patient_id: str | None = None,
) -> Preview:
    """What ``specs``, loaded for the site, would send in ``days`` days from ``now`` (nothing is written).

    Raises:
        LookupError: no such site.
    """
    site = await session.get(Site, site_id)
    if site is None:
        raise LookupError(site_id)
    actives = [ActiveProgram(-1 - i, spec) for i, spec in enumerate(specs)]
    plan = planning_window(now, days, {site_id: actives}, {site_id: site.time_zone})
    ctx = _Site(
        site,
        site_config(site),
        {a.pk: spec_json(a.spec) for a in actives if a.pk},
        now + timedelta(days=days),
    )
    ids = await _patient_ids(session, site_id, patient_id)
    preview = Preview(time_zone=site.time_zone)
    if not ids:
        return preview
    facts, rxs = await load_facts(session, ids)
    rows = await _records(session, ids)
    history = await _history(session, ids, now)
    for pid in ids:
        if pid not in facts or pid not in rows[0]:
            continue
        mine = [rx for rx in rxs.get(pid, []) if rx.site_id == site_id]
        occs = occurrences_for(plan, _unblocked(facts[pid]), [replace(rx, status="active") for rx in mine])
        statuses = {rx.id: rx.status for rx in mine}
        hist = history.get(pid, _History())
        pending = [
            _Row(o, max(o.due_at, now), statuses.get(o.prescription_id))
            for o in occs
            if o.key not in hist.final_keys
        ]
        patient, prescriptions, fills = rows[0][pid], rows[1].get(pid, []), rows[2].get(pid, [])
        _simulate(ctx, patient, prescriptions, fills, pending, hist, preview)
    preview.texts.sort(key=lambda t: (t.due_at, t.patient_id))
    preview.expected_tasks = await _expected_tasks(session, site_id, now, len(preview.texts))
    return preview


def _unblocked(patient: PatientFacts) -> PatientFacts:
    """The patient as if they could be texted: the dispatcher's consent rules then say why not (held)."""
    return replace(patient, sms_consent=True, opted_out_at=None)


def _simulate(
    ctx: _Site,
    patient: Patient,
    prescriptions: list[Prescription],
    fills: list[Fill],
    rows: list[_Row],
    hist: _History,
    out: Preview,
) -> None:
    """The dispatcher's per-patient decision, replayed on a clock that jumps to each next due row."""
    tz = pick_zone(patient.time_zone, ctx.cfg.time_zone)
    wrong = bool(patient.phone) and (patient.deliverability or {}).get("wrong_number") == patient.phone
    for _ in range(10_000):
        pending = [r for r in rows if not r.done]
        if not pending:
            return
        at = min(r.due_at for r in pending)
        if at >= ctx.end:
            return
        group = [r for r in pending if r.due_at <= at]
        group = [r for r in group if not _held(r, patient, wrong, at, out)]
        if not group:
            continue
        verdict = patient_verdict(
            open_dialog=hist.dialog_until is not None and hist.dialog_until > at,
            now=at,
            tz=tz,
            cfg=ctx.cfg,
            **_counts(hist.sent_at, at, tz),
        )
        if verdict is not None:
            for r in group:
                r.due_at = verdict.until or at
            continue
        _start, day_end = day_bounds(at, tz)
        extras = [
            r
            for r in pending
            if r not in group
            and r.due_at < day_end
            and r.occ.deadline_at > at
            and _verdict(r, patient, wrong, at) is None
        ]
        bundle = sorted(group + extras, key=lambda r: (r.due_at, r.occ.key))
        for r in bundle:
            r.done = True
        reason = refusal(patient, ctx.site, "outreach", False, at, ctx.cfg)
        if reason is not None:
            out.held[reason] += len(bundle)
            continue
        _emit(ctx, patient, prescriptions, fills, bundle, hist, at, out)


def _verdict(row: _Row, patient: Patient, wrong: bool, at: datetime) -> Any:
    return row_verdict(
        opted_out=patient.opted_out_at is not None,
        wrong_number=wrong,
        sms_consent=bool(patient.sms_consent),
        rx_status=row.rx_status,
        event_step=row.occ.step.startswith("event-"),
        deadline_at=row.occ.deadline_at,
        now=at,
    )


def _held(row: _Row, patient: Patient, wrong: bool, at: datetime, out: Preview) -> bool:
    verdict = _verdict(row, patient, wrong, at)
    if verdict is None:
        return False
    row.done = True
    out.held[verdict.reason] += 1
    return True


def _counts(sent_at: list[datetime], at: datetime, tz: ZoneInfo) -> dict[str, int]:
    day_start, day_end = day_bounds(at, tz)
    week_start = at - timedelta(days=7)
    return {
        "today": sum(1 for t in sent_at if day_start <= t < day_end),
        "week": sum(1 for t in sent_at if week_start < t < day_end),
    }


def _emit(
    ctx: _Site,
    patient: Patient,
    prescriptions: list[Prescription],
    fills: list[Fill],
    bundle: list[_Row],
    hist: _History,
    at: datetime,
    out: Preview,
) -> None:
    occs = [r.occ for r in bundle]
    decision = render_outreach(
        occs, ctx.specs, patient, ctx.site, ctx.cfg, prescriptions, fills, not hist.contacted, at
    )
    body = outreach_body(decision)
    info = segment_info(body)
    hist.contacted = True
    hist.sent_at.append(at)
    if decision.next_state is not None:
        hist.dialog_until = decision.next_state.expires_at or datetime.max.replace(tzinfo=UTC)
    out.texts.append(
        PreviewText(
            patient.id,
            [o.program_id for o in occs],
            at,
            patient.language or "en",
            body,
            info.encoding,
            info.segments,
        )
    )


async def _patient_ids(session: AsyncSession, site_id: str, patient_id: str | None) -> list[str]:
    query = select(Prescription.patient_id).where(Prescription.site_id == site_id)
    if patient_id is not None:
        query = query.where(Prescription.patient_id == patient_id)
    return sorted(set(await session.scalars(query.distinct())))


async def _records(
    session: AsyncSession, ids: list[str]
) -> tuple[dict[str, Patient], dict[str, list[Prescription]], dict[str, list[Fill]]]:
    """The rows rendering reads, as the sender reads them: patients, prescriptions the dialogs know, fills."""
    patients = {p.id: p for p in await session.scalars(select(Patient).where(Patient.id.in_(ids)))}
    prescriptions: dict[str, list[Prescription]] = defaultdict(list)
    all_rx = list(await session.scalars(select(Prescription).where(Prescription.patient_id.in_(ids))))
    owner = {rx.id: rx.patient_id for rx in all_rx}
    for rx in all_rx:
        if rx.status in ACTIVE_STATUSES:
            prescriptions[rx.patient_id].append(rx)
    fills: dict[str, list[Fill]] = defaultdict(list)
    for fill in await session.scalars(select(Fill).where(Fill.prescription_id.in_(list(owner)))):
        fills[owner[fill.prescription_id]].append(fill)
    return patients, prescriptions, fills


async def _history(session: AsyncSession, ids: list[str], now: datetime) -> dict[str, _History]:
    out: dict[str, _History] = defaultdict(_History)
    texts = select(Message.patient_id, Message.created_at).where(
        Message.patient_id.in_(ids), Message.direction == "out", Message.kind == "outreach"
    )
    for pid, created in await session.execute(texts):
        out[str(pid)].contacted = True
        if now - timedelta(days=7) < created <= now:
            out[str(pid)].sent_at.append(created)
    dialogs = select(Conversation.patient_id, Conversation.expires_at).where(
        Conversation.patient_id.in_(ids),
        Conversation.status == "open",
        or_(Conversation.expires_at.is_(None), Conversation.expires_at > now),
    )
    for pid, expires in await session.execute(dialogs):
        out[pid].dialog_until = expires or datetime.max.replace(tzinfo=UTC)
    keys = select(Outreach.patient_id, Outreach.idempotency_key, Outreach.state, Outreach.reason).where(
        Outreach.patient_id.in_(ids), Outreach.state.not_in(_PENDING)
    )
    for pid, key, state, reason in await session.execute(keys):
        if not (state == "cancelled" and reason in REVIVABLE):
            out[pid].final_keys.add(key)
    return out


async def _expected_tasks(
    session: AsyncSession, site_id: str, now: datetime, texts: int
) -> dict[str, int] | None:
    """Tasks per queue the texts would bring, at the rate the site's replies opened them in the last 90 days."""
    since = now - timedelta(days=HISTORY_DAYS)
    sent = await session.scalar(
        select(func.count())
        .select_from(Message)
        .where(
            Message.site_id == site_id,
            Message.direction == "out",
            Message.kind == "outreach",
            Message.created_at > since,
            Message.created_at <= now,
        )
    )
    if not sent:
        return None
    opened = await session.execute(
        select(Task.queue, func.count())
        .where(
            Task.site_id == site_id,
            Task.source_message_id.is_not(None),
            Task.created_at > since,
            Task.created_at <= now,
        )
        .group_by(Task.queue)
    )
    return {queue: round(count * texts / sent) for queue, count in sorted(opened.all())}
