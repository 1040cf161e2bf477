"""The planner: programs + patients + prescriptions + fills (+ events) -> outreach rows with a due time.

Incremental and idempotent: it computes, per chunk of patients, the set of occurrences that should exist
(keyed by ``patient:prescription:program:step:due local date``), compares it in memory with the rows that do
exist, inserts what is missing, moves what changed, and cancels pending rows no longer wanted, with a reason.
Rows a dispatcher has claimed, is sending or has finished are never touched.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, bindparam, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import utcnow
from bot.db.models import Fill, Outreach, Patient, Prescription, PrescriptionEvent, Site
from scheduler.cron import cron_occurrences, parse_cron
from scheduler.metrics import SchedulerMetrics
from scheduler.programs import ActiveProgram, site_programs
from scheduler.runout import FillRecord, first_fill_date, latest_copay_cents, run_out_date
from scheduler.timeutil import local_date, local_datetime, pick_zone

__all__ = [
    "HORIZON_DAYS",
    "Occurrence",
    "PatientFacts",
    "PlanSummary",
    "RxFacts",
    "load_facts",
    "occurrences_for",
    "planning_window",
    "replan",
]

_LOGGER = logging.getLogger(__name__)

HORIZON_DAYS = 35
THERAPY_GRACE_DAYS = 14  # first_fill occurrences stop this long after the supply ran out
CHUNK_SIZE = 2000
PENDING = ("planned", "deferred")
# Cancellations the planner (or the dispatcher's consent checks) made and may undo when the cause goes away.
REVIVABLE = frozenset(
    {
        "opted_out",
        "no_consent",
        "discontinued",
        "program_removed",
        "program_paused",
        "replanned",
        "not_needed",
    }
)
EVENT_STATUSES = frozenset({"received", "active"})
_LOOKBACK = timedelta(days=15)  # longest expire_after_hours (14 days) plus a day
_AFTER_PICKUP = frozenset({"ready", "shipped", "not_picked_up"})


@dataclass
class PlanSummary:
    """Counts of one planning run: rows added or moved, pending rows cancelled, rows left as they were."""

    planned: int = 0
    cancelled: int = 0
    unchanged: int = 0
    reasons: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # cancellations by reason
    # program id -> {"planned": N, "cancelled": N}: what the run changed, per program
    programs: dict[str, dict[str, int]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, int]:
        """``{"planned": N, "cancelled": N, "unchanged": N}``."""
        return {"planned": self.planned, "cancelled": self.cancelled, "unchanged": self.unchanged}

    def count(self, program_id: str, what: str, n: int = 1) -> None:
        """Add ``n`` rows planned or cancelled (``what``) for one program."""
        counts = self.programs.setdefault(program_id, {"planned": 0, "cancelled": 0})
        counts[what] += n

    def by_program(self) -> dict[str, dict[str, int]]:
        """The per-program counts, by program id."""
        return dict(sorted(self.programs.items()))


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One outreach that should exist."""

    key: str
    patient_id: str
    prescription_id: str
    program_pk: int | None
    program_id: str
    kind: str
    step: str
    due_at: datetime
    deadline_at: datetime


@dataclass(slots=True)
class PatientFacts:
    """The patient columns planning needs."""

    id: str
    site_id: str
    language: str = "en"
    time_zone: str | None = None
    sms_consent: bool = True
    opted_out_at: datetime | None = None

    @property
    def blocked(self) -> str | None:
        """Why nothing may be planned for this patient (``opted_out`` / ``no_consent``), else None."""
        if self.opted_out_at is not None:
            return "opted_out"
        return None if self.sms_consent else "no_consent"


@dataclass(slots=True)
class RxFacts:
    """A prescription with its fills and dated events."""

    id: str
    patient_id: str
    site_id: str
    drug: str
    therapy_class: str = ""
    payer_type: str = "other"
    status: str = "active"
    fills: list[FillRecord] = field(default_factory=list)
    events: list[tuple[str, datetime]] = field(default_factory=list)


@dataclass
class _Plan:
    """What one planning run knows beyond a chunk: time, window, programs, zones and cron caches."""

    now: datetime
    horizon_days: int
    programs: dict[str, list[ActiveProgram]]
    site_zones: dict[str, str]
    program_ids: set[int] | None
    site_id: str | None
    cron_cache: dict[tuple[int, str], list[datetime]] = field(default_factory=dict)
    active_keys: set[tuple[str, int | None, str]] = field(default_factory=set)
    paused_keys: set[tuple[str, int | None, str]] = field(default_factory=set)

    def __post_init__(self) -> None:
        # (site, program pk, program id) of every active program, defaults included (pk None).
        self.active_keys = {(s, p.pk, p.spec.id) for s, progs in self.programs.items() for p in progs}


def _matches(program: ActiveProgram, patient: PatientFacts, rx: RxFacts) -> bool:
    when = program.spec.when
    if when.sites and rx.site_id not in when.sites:
        return False
    if program.drugs and rx.drug.casefold() not in program.drugs:
        return False
    if program.therapy_classes and rx.therapy_class.casefold() not in program.therapy_classes:
        return False
    if when.payer_types and rx.payer_type not in when.payer_types:
        return False
    if when.languages and patient.language not in when.languages:
        return False
    if when.copay_at_least is not None:
        copay = latest_copay_cents(rx.fills)
        return copay is not None and copay >= round(when.copay_at_least * 100)
    return True


def _plannable(rx: RxFacts, trigger_type: str) -> bool:
    return rx.status in EVENT_STATUSES if trigger_type == "event" else rx.status == "active"


def _superseded(rx: RxFacts, name: str, occurred_at: datetime, day: date) -> bool:
    """An event nudge no longer needed: filled since it was received, or picked up / declined since."""
    later = {n for n, at in rx.events if at > occurred_at}
    if "declined" in later:
        return True
    if name in ("received", "pa_approved"):
        return any(f.dispensed_on >= day for f in rx.fills)
    return name in _AFTER_PICKUP and "picked_up" in later


class _Emitter:
    """Builds the occurrences of one patient's prescription inside the planning window."""

    def __init__(self, plan: _Plan, patient: PatientFacts, rx: RxFacts, tz: ZoneInfo) -> None:
        self.plan, self.patient, self.rx, self.tz = plan, patient, rx, tz
        self.today = local_date(plan.now, tz)
        self.last_day = self.today + timedelta(days=plan.horizon_days)
        self.prefix = f"{patient.id}:{rx.id}:"
        self.run_out_on = run_out_date(rx.fills)
        self.first_on = first_fill_date(rx.fills)

    def at(
        self, program: ActiveProgram, day: date, step: str, due_at: datetime | None = None
    ) -> Occurrence | None:
        """The occurrence on local ``day`` (at send_at unless ``due_at``), or None when outside the window."""
        if day > self.last_day:
            return None
        due = due_at or local_datetime(day, program.send_time, self.tz)
        deadline = due + program.expire
        if deadline <= self.plan.now:
            return None
        spec = program.spec
        key = f"{self.prefix}{spec.id}:{step}:{day.isoformat()}"
        return Occurrence(
            key, self.patient.id, self.rx.id, program.pk, spec.id, spec.kind, step, due, deadline
        )

    def run_out(self, program: ActiveProgram, days_before: Sequence[int]) -> Iterable[Occurrence | None]:
        if self.run_out_on is None:
            return
        for days in days_before:
            yield self.at(program, self.run_out_on - timedelta(days=days), f"run_out-{days}")

    def first_fill(
        self, program: ActiveProgram, days_after: Sequence[int], every: int | None
    ) -> Iterable[Occurrence | None]:
        first, run_out = self.first_on, self.run_out_on
        if first is None or run_out is None:
            return
        until = run_out + timedelta(days=THERAPY_GRACE_DAYS)
        offsets = list(days_after)
        if every:
            base = max(days_after)
            k = max(1, ((self.today - first).days - base - _LOOKBACK.days) // every)
            while first + timedelta(days=base + k * every) <= min(until, self.last_day):
                offsets.append(base + k * every)
                k += 1
        for offset in sorted(set(offsets)):
            day = first + timedelta(days=offset)
            if day <= until:
                yield self.at(program, day, f"first_fill-{offset}")

    def cron(self, program: ActiveProgram, expr: str) -> Iterable[Occurrence | None]:
        site_zone = pick_zone(self.plan.site_zones.get(self.rx.site_id))
        cache_key = (id(program), site_zone.key)
        if cache_key not in self.plan.cron_cache:
            end_day = local_date(self.plan.now, site_zone) + timedelta(days=self.plan.horizon_days + 1)
            self.plan.cron_cache[cache_key] = cron_occurrences(
                parse_cron(expr),
                site_zone,
                self.plan.now - program.expire,
                local_datetime(end_day, time(0, 0), site_zone),
            )
        seen: set[date] = set()
        for at in self.plan.cron_cache[cache_key]:
            day = local_date(at, site_zone)
            if day not in seen:  # at most one occurrence a local day
                seen.add(day)
                yield self.at(program, day, f"cron-{day.isoformat()}", due_at=at)

    def event(self, program: ActiveProgram, name: str, after_days: int) -> Iterable[Occurrence | None]:
        for event_name, occurred_at in self.rx.events:
            if event_name != name:
                continue
            event_day = local_date(occurred_at, self.tz)
            if not _superseded(self.rx, name, occurred_at, event_day):
                yield self.at(program, event_day + timedelta(days=after_days), f"event-{name}+{after_days}")

    def emit(self, program: ActiveProgram) -> Iterable[Occurrence | None]:
        """The program's occurrences for this prescription (None where one falls outside the window)."""
        trigger = program.spec.trigger
        if trigger.run_out is not None:
            return self.run_out(program, trigger.run_out.days_before)
        if trigger.first_fill is not None:
            return self.first_fill(program, trigger.first_fill.days_after, trigger.first_fill.then_every)
        if trigger.cron is not None:
            return self.cron(program, trigger.cron)
        assert trigger.event is not None
        return self.event(program, trigger.event.name, trigger.event.after_days)


def planning_window(
    now: datetime, horizon_days: int, programs: dict[str, list[ActiveProgram]], site_zones: dict[str, str]
) -> _Plan:
    """What ``occurrences_for`` needs for a run that writes nothing (e.g. a preview of a programs file)."""
    return _Plan(now, horizon_days, programs, site_zones, None, None)


def occurrences_for(plan: _Plan, patient: PatientFacts, rxs: Sequence[RxFacts]) -> list[Occurrence]:
    """Every occurrence that should exist for one patient (pure: no I/O)."""
    if patient.blocked:
        return []
    out: list[Occurrence] = []
    for rx in rxs:
        programs = [
            p
            for p in plan.programs.get(rx.site_id, ())
            if _plannable(rx, p.trigger_type) and _matches(p, patient, rx)
        ]
        if not programs:
            continue
        tz = pick_zone(
            patient.time_zone, plan.site_zones.get(rx.site_id), plan.site_zones.get(patient.site_id)
        )
        emitter = _Emitter(plan, patient, rx, tz)
        for program in programs:
            out.extend(o for o in emitter.emit(program) if o is not None)
    return out


async def _chunks(
    session: AsyncSession, patient_ids: set[str] | None, site_id: str | None, size: int
) -> AsyncIterator[list[str]]:
    if patient_ids is not None:
        ordered = sorted(patient_ids)
        for i in range(0, len(ordered), size):
            yield ordered[i : i + size]
        return
    last = ""
    while True:
        if site_id is None:
            query = select(Patient.id).where(Patient.id > last).order_by(Patient.id)
        else:
            query = (
                select(Prescription.patient_id)
                .distinct()
                .where(Prescription.site_id == site_id, Prescription.patient_id > last)
                .order_by(Prescription.patient_id)
            )
        ids = list((await session.scalars(query.limit(size))).all())
        if not ids:
            return
        yield ids
        last = ids[-1]


_P, _RX, _F, _EV = Patient.__table__, Prescription.__table__, Fill.__table__, PrescriptionEvent.__table__


async def _load_chunk(
    session: AsyncSession, ids: list[str]
) -> tuple[dict[str, PatientFacts], dict[str, list[RxFacts]]]:
    # Core tables, not ORM entities: tuples come back without the ORM's per-row bookkeeping.
    patients = {
        r[0]: PatientFacts(r[0], r[1], r[2] or "en", r[3], bool(r[4]), r[5])
        for r in await session.execute(
            select(
                _P.c.id, _P.c.site_id, _P.c.language, _P.c.time_zone, _P.c.sms_consent, _P.c.opted_out_at
            ).where(_P.c.id.in_(ids))
        )
    }
    rx_by_id: dict[str, RxFacts] = {}
    by_patient: dict[str, list[RxFacts]] = defaultdict(list)
    rx_query = (
        select(
            _RX.c.id,
            _RX.c.patient_id,
            _RX.c.site_id,
            _RX.c.drug,
            _RX.c.therapy_class,
            _RX.c.payer_type,
            _RX.c.status,
        )
        .where(_RX.c.patient_id.in_(ids))
        .order_by(_RX.c.id)
    )
    for r in await session.execute(rx_query):
        rx = RxFacts(r[0], r[1], r[2], r[3] or "", r[4] or "", r[5] or "other", r[6])
        rx_by_id[rx.id] = rx
        by_patient[rx.patient_id].append(rx)
    fill_query = (
        select(_F.c.prescription_id, _F.c.dispensed_on, _F.c.days_supply, _F.c.copay_cents)
        .join(_RX, _RX.c.id == _F.c.prescription_id)
        .where(_RX.c.patient_id.in_(ids))
    )
    for fill in await session.execute(fill_query):
        rx_by_id[fill[0]].fills.append(FillRecord(fill[1], fill[2] or 0, fill[3] or 0))
    event_query = (
        select(_EV.c.prescription_id, _EV.c.name, _EV.c.occurred_at)
        .join(_RX, _RX.c.id == _EV.c.prescription_id)
        .where(_RX.c.patient_id.in_(ids))
    )
    for event in await session.execute(event_query):
        rx_by_id[event[0]].events.append((event[1], event[2]))
    return patients, by_patient


async def load_facts(
    session: AsyncSession, ids: list[str]
) -> tuple[dict[str, PatientFacts], dict[str, list[RxFacts]]]:
    """The planning facts of these patients: their columns, prescriptions, fills and events (read only)."""
    return await _load_chunk(session, ids)


@dataclass
class _Changes:
    inserts: list[dict[str, Any]] = field(default_factory=list)
    moves: list[dict[str, Any]] = field(default_factory=list)
    revives: list[dict[str, Any]] = field(default_factory=list)
    repoints: list[dict[str, Any]] = field(default_factory=list)
    cancels: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))


def _occurrence_row(occ: Occurrence, created: datetime) -> dict[str, Any]:
    return {
        "idempotency_key": occ.key,
        "patient_id": occ.patient_id,
        "prescription_id": occ.prescription_id,
        "program_pk": occ.program_pk,
        "program_id": occ.program_id,
        "kind": occ.kind,
        "step": occ.step,
        "due_at": occ.due_at,
        "deadline_at": occ.deadline_at,
        "state": "planned",
        "reason": "",
        "attempts": 0,
        "created_at": created,
        "updated_at": created,
    }


def _move(row_id: int, occ: Occurrence) -> dict[str, Any]:
    return {
        "b_id": row_id,
        "b_due": occ.due_at,
        "b_deadline": occ.deadline_at,
        "b_pk": occ.program_pk,
        "b_kind": occ.kind,
    }


def _why(row: Any, patients: dict[str, PatientFacts], rxs: dict[str, RxFacts], plan: _Plan) -> str:
    patient, rx = patients.get(row.patient_id), rxs.get(row.prescription_id)
    if patient is None:
        return "discontinued"
    if patient.blocked:
        return patient.blocked
    if (
        rx is None
        or rx.status not in EVENT_STATUSES
        or (rx.status != "active" and not row.step.startswith("event-"))
    ):
        return "discontinued"
    if (rx.site_id, row.program_pk, row.program_id) in plan.paused_keys:
        return "program_paused"
    if (rx.site_id, row.program_pk, row.program_id) not in plan.active_keys:
        return "program_removed"
    return "not_needed" if row.step.startswith("event-") else "replanned"


def _diff(
    plan: _Plan,
    desired: dict[str, Occurrence],
    existing: dict[str, Any],
    patients: dict[str, PatientFacts],
    rxs: dict[str, RxFacts],
    summary: PlanSummary,
) -> _Changes:
    changes, created = _Changes(), utcnow()
    for key, occ in desired.items():
        row = existing.get(key)
        if row is None:
            changes.inserts.append(_occurrence_row(occ, created))
            summary.count(occ.program_id, "planned")
        elif row.state == "planned" and (row.due_at, row.deadline_at, row.kind) != (
            occ.due_at,
            occ.deadline_at,
            occ.kind,
        ):
            changes.moves.append(_move(row.id, occ))
            summary.count(occ.program_id, "planned")
        elif row.state == "cancelled" and row.reason in REVIVABLE:
            changes.revives.append(_move(row.id, occ))
            summary.count(occ.program_id, "planned")
        elif row.state in PENDING and row.program_pk != occ.program_pk:
            # Same occurrence, now owned by another Program row (defaults -> loaded): follow it, nothing else.
            changes.repoints.append({"b_id": row.id, "b_pk": occ.program_pk})
            summary.unchanged += 1
        else:
            summary.unchanged += 1
    for key, row in existing.items():
        if key not in desired and row.state in PENDING and row.deadline_at > plan.now:
            changes.cancels[_why(row, patients, rxs, plan)].append(row.id)
            summary.count(row.program_id, "cancelled")
    summary.planned += len(changes.inserts) + len(changes.moves) + len(changes.revives)
    for reason, ids in changes.cancels.items():
        summary.cancelled += len(ids)
        summary.reasons[reason] += len(ids)
    return changes


# Declarative types __table__ as FromClause; a mapped class's is a Table, which insert()/update() need.
_T = cast(Table, Outreach.__table__)


async def _write(session: AsyncSession, changes: _Changes) -> None:
    if changes.inserts:
        if session.get_bind().dialect.name == "sqlite":
            await _sqlite_insert(session, changes.inserts)
        else:
            # Another planner may have inserted the same key meanwhile: the unique key makes that a no-op.
            insert = pg_insert(_T).on_conflict_do_nothing(index_elements=["idempotency_key"])
            await session.execute(insert, changes.inserts)
    values = {
        "due_at": bindparam("b_due", type_=_T.c.due_at.type),
        "deadline_at": bindparam("b_deadline", type_=_T.c.deadline_at.type),
        "program_pk": bindparam("b_pk"),
        "kind": bindparam("b_kind"),
        "updated_at": utcnow(),
    }
    if changes.moves:
        stmt = update(_T).where(_T.c.id == bindparam("b_id"), _T.c.state == "planned").values(**values)
        await session.execute(stmt, changes.moves)
    if changes.revives:
        stmt = (
            update(_T)
            .where(_T.c.id == bindparam("b_id"), _T.c.state == "cancelled")
            .values(state="planned", reason="", **values)
        )
        await session.execute(stmt, changes.revives)
    if changes.repoints:
        stmt = (
            update(_T)
            .where(_T.c.id == bindparam("b_id"), or_(_T.c.state == "planned", _T.c.state == "deferred"))
            .values(program_pk=bindparam("b_pk"))
        )
        await session.execute(stmt, changes.repoints)
    for reason, ids in changes.cancels.items():
        # Only still-pending rows: a dispatcher may have claimed one since we read it.
        await session.execute(
            update(_T)
            .where(_T.c.id.in_(ids), _T.c.state.in_(PENDING))
            .values(
                state="cancelled", reason=reason, lease_owner=None, lease_expires_at=None, updated_at=utcnow()
            )
        )


_INSERT_COLS = (
    "idempotency_key",
    "patient_id",
    "prescription_id",
    "program_pk",
    "program_id",
    "kind",
    "step",
    "due_at",
    "deadline_at",
    "state",
    "reason",
    "attempts",
    "created_at",
    "updated_at",
)
_SQLITE_INSERT = (
    f"INSERT INTO outreach ({', '.join(_INSERT_COLS)}) VALUES ({', '.join('?' * len(_INSERT_COLS))}) "
    "ON CONFLICT (idempotency_key) DO NOTHING"
)


def _sqlite_time(at: datetime) -> str:
    """The text SQLAlchemy's SQLite DATETIME stores for an aware UTC datetime (see bot.db.base.UTCDateTime)."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


async def _sqlite_insert(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Bulk insert at driver level: a first plan writes ~4 rows a patient, and per-value type processing
    through the ORM/Core layers was a third of the planner's time at 100,000 patients."""
    stamp = {col: _sqlite_time for col in ("due_at", "deadline_at", "created_at", "updated_at")}
    params = [tuple(stamp[c](row[c]) if c in stamp else row[c] for c in _INSERT_COLS) for row in rows]
    connection = await session.connection()
    await connection.exec_driver_sql(_SQLITE_INSERT, params)


async def _existing(session: AsyncSession, ids: list[str], plan: _Plan) -> list[Any]:
    query = select(
        _T.c.id,
        _T.c.idempotency_key,
        _T.c.patient_id,
        _T.c.prescription_id,
        _T.c.program_pk,
        _T.c.program_id,
        _T.c.kind,
        _T.c.step,
        _T.c.state,
        _T.c.reason,
        _T.c.due_at,
        _T.c.deadline_at,
    ).where(_T.c.patient_id.in_(ids), _T.c.deadline_at > plan.now - _LOOKBACK)
    if plan.program_ids is not None:
        query = query.where(_T.c.program_pk.in_(plan.program_ids))
    return list((await session.execute(query)).all())


async def _plan_chunk(session: AsyncSession, plan: _Plan, ids: list[str], summary: PlanSummary) -> None:
    patients, by_patient = await _load_chunk(session, ids)
    if plan.site_id is not None:
        by_patient = {p: [rx for rx in rxs if rx.site_id == plan.site_id] for p, rxs in by_patient.items()}
    rxs = {rx.id: rx for group in by_patient.values() for rx in group}
    desired: dict[str, Occurrence] = {}
    for patient_id, patient in patients.items():
        for occ in occurrences_for(plan, patient, by_patient.get(patient_id, [])):
            desired.setdefault(occ.key, occ)
    existing = {
        row.idempotency_key: row
        for row in await _existing(session, ids, plan)
        if row.prescription_id in rxs or (plan.site_id is None and row.prescription_id is not None)
    }
    await _write(session, _diff(plan, desired, existing, patients, rxs, summary))


async def replan(
    session: AsyncSession,
    *,
    patient_ids: set[str] | None,
    now: datetime,
    program_ids: set[int] | None = None,
    site_id: str | None = None,
    horizon_days: int = HORIZON_DAYS,
    chunk_size: int = CHUNK_SIZE,
    metrics: SchedulerMetrics | None = None,
) -> PlanSummary:
    """Bring the outreach rows of some patients (None: all) in line with their data and the programs.

    Args:
        session: the unit of work; the caller commits.
        patient_ids: the patients whose data changed, or None for everyone.
        now: the planning time (aware); occurrences past their deadline are not planned.
        program_ids: only these Program rows (e.g. the ones a load changed); None for every program.
        site_id: only prescriptions of this site.
        horizon_days: how far ahead to plan (repeating programs are planned up to here).
        chunk_size: patients per round trip.
        metrics: counters to bump, if any.

    Returns:
        PlanSummary: rows planned (added, moved or revived), cancelled, and unchanged.
    """
    sites = {r.id: r.time_zone for r in await session.execute(select(Site.id, Site.time_zone))}
    current = await site_programs(session, sorted(sites))
    programs = current.active
    if program_ids is not None:
        programs = {s: [p for p in progs if p.pk in program_ids] for s, progs in programs.items()}
    plan = _Plan(now, horizon_days, programs, sites, program_ids, site_id)
    plan.paused_keys = {(s, p.pk, p.spec.id) for s, progs in current.paused.items() for p in progs}
    summary = PlanSummary()
    async for ids in _chunks(session, patient_ids, site_id, chunk_size):
        await _plan_chunk(session, plan, ids, summary)
    if metrics is not None:
        metrics.planned.inc(summary.planned)
        for reason, count in summary.reasons.items():
            metrics.cancelled.labels(reason=reason).inc(count)
    _LOGGER.info(
        "planned %d, cancelled %d, unchanged %d", summary.planned, summary.cancelled, summary.unchanged
    )
    return summary
