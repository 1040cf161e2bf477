"""The dispatcher: claims due outreach, applies consent, quiet hours, caps, bundling and rate, then sends.

Row states: planned -> claimed (lease owner + expiry) -> sending -> sent | failed, or expired / cancelled /
deferred (a planned row pushed to a later due_at with a reason). A claim whose lease expired returns the row
to whoever claims next; a row left ``sending`` by a crash is handed to ``sender.reconcile`` before any resend,
so each row goes out exactly once even with several dispatchers and a SIGKILL mid-batch.

Claims take ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (several dispatchers at once). SQLite has one writer at
a time and the claim is a conditional UPDATE; run one dispatcher against a SQLite file.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time as _time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from prometheus_client import CollectorRegistry
from sqlalchemy import (
    Connection,
    Integer,
    Select,
    String,
    Table,
    and_,
    bindparam,
    case,
    exists,
    func,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock, utcnow
from bot.db.consent import opted_out_programs
from bot.db.models import Conversation, Message, Outreach, Patient, Prescription, Program, Site
from bot.db.sitecfg import PAUSED_PROGRAMS, SiteConfig, site_config
from bot.db.worker import DbWorker, Priority
from scheduler.metrics import SchedulerMetrics, scheduler_metrics
from scheduler.rules import (
    RateLimiter,
    TokenBucket,
    Verdict,
    cap_verdict,
    day_bounds,
    patient_verdict,
    row_verdict,
)
from scheduler.sender import OutreachSender, SendOutcome
from scheduler.timeutil import pick_zone

__all__ = ["DispatchSummary", "Dispatcher"]

_LOGGER = logging.getLogger(__name__)
# Declarative types __table__ as FromClause; a mapped class's is a Table, which update() needs.
_T = cast(Table, Outreach.__table__)
PENDING = ("planned", "deferred")
MAX_BATCHES = 100_000


@dataclass
class DispatchSummary:
    """What one run did, in rows (``messages`` counts texts: a bundle is one)."""

    claimed: int = 0
    sent: int = 0
    messages: int = 0
    deferred: int = 0
    expired: int = 0
    cancelled: int = 0
    failed: int = 0
    reconciled: int = 0
    unknown: int = 0

    def as_dict(self) -> dict[str, int]:
        """A JSON-ready dict."""
        return asdict(self)


@dataclass
class _Row:
    id: int
    patient_id: str
    prescription_id: str | None
    step: str
    state: str
    due_at: datetime
    deadline_at: datetime
    bundled_into: int | None = None
    kind: str = ""
    program_pk: int | None = None

    @property
    def event_step(self) -> bool:
        return self.step.startswith("event-")


_ROW_COLS = (
    _T.c.id,
    _T.c.patient_id,
    _T.c.prescription_id,
    _T.c.step,
    _T.c.state,
    _T.c.due_at,
    _T.c.deadline_at,
    _T.c.bundled_into,
    _T.c.kind,
    _T.c.program_pk,
)


def _rows(result: Iterable[Any]) -> list[_Row]:
    return [_Row(*r) for r in result]


@dataclass
class _Patient:
    """What the rules need to know about the patient at decision time."""

    opted_out: bool
    sms_consent: bool
    site_id: str
    time_zone: str | None
    wrong_number: bool = False  # the person at the number said it is not the patient's
    stopped_kinds: frozenset[str] = frozenset()  # program kinds the patient asked to stop
    paused_pks: frozenset[int] = frozenset()  # Program rows loaded paused (the whole store's, this run)


# A decision that leads to a text: its rows (lead first), zone, site, rate bucket, and whether it is marked.
_Plan = tuple[list[_Row], Any, SiteConfig, TokenBucket, bool]


class Dispatcher:
    """Sends due outreach through an OutreachSender, exactly once per row.

    Args:
        sessionmaker: the store; every step is its own short transaction.
        sender: writes and sends the text (scheduler.sender.OutreachSender).
        clock: the time source when ``run_once`` is not given ``now``.
        owner: this dispatcher's lease owner name, unique per process (scheduler.jobs.default_owner).
        batch_size: rows claimed per round trip.
        lease_seconds: how long a claim holds before another dispatcher may take the rows over.
        registry: where the metrics live (a private registry when None).
        rate_limiter: per-sender token buckets (shared by dispatchers of one process, if several).
        concurrency: patients of a batch whose texts are in flight at once (each patient's texts stay in order;
            the database work is serialised by the worker, the provider calls overlap).
        db: runs the per-patient decision and the outcome bookkeeping, each one synchronous transaction;
            when None, each ``run_once`` starts one on the sessionmaker's engine and stops it at the end.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        sender: OutreachSender,
        clock: Clock,
        *,
        owner: str,
        batch_size: int = 100,
        lease_seconds: int = 120,
        registry: CollectorRegistry | None = None,
        rate_limiter: RateLimiter | None = None,
        concurrency: int = 16,
        db: DbWorker,
    ) -> None:
        self._sm = sessionmaker
        self._db = db
        self._sender = sender
        self._clock = clock
        self.owner = owner
        self._batch = batch_size
        self._lease = timedelta(seconds=lease_seconds)
        self.metrics: SchedulerMetrics = scheduler_metrics(registry)
        self._rates = rate_limiter or RateLimiter()
        self._concurrency = max(1, concurrency)
        self._site_of: dict[str, str] = {}
        self._all_sites: list[str] | None = None
        self._sites: dict[str, SiteConfig] = {}
        self._paused: frozenset[int] | None = None
        self._dialect = ""
        self._stopping = False
        self._idle = asyncio.Event()
        self._idle.set()

    # ---- the loop -------------------------------------------------------------------------------------------

    async def run_once(self, now: datetime | None = None) -> DispatchSummary:
        """Claim and process due rows in batches until none is due (``now``: act as if the clock read it)."""
        summary = DispatchSummary()
        self._idle.clear()
        started, self._sites, self._all_sites = _time.monotonic(), {}, None
        self._paused = None  # read again each run: a pause from the CLI or the page holds from the next run
        try:
            await self._run_batches(now, summary)
        finally:
            self._idle.set()
        elapsed = max(_time.monotonic() - started, 1e-3)
        self.metrics.send_rate.set(summary.messages / elapsed if summary.messages else 0.0)
        if summary.claimed:
            _LOGGER.info("dispatch: %s", summary.as_dict())
        return summary

    async def _run_batches(self, now: datetime | None, summary: DispatchSummary) -> None:
        self.metrics.due.set(await self.due_count(now or self._clock.now()))
        for _ in range(MAX_BATCHES):
            at = now or self._clock.now()
            rows = [] if self._stopping else await self._claim(at)
            if not rows:
                break
            summary.claimed += len(rows)
            self.metrics.claimed.inc(len(rows))
            await self._process_batch(rows, at, summary)

    def _worker(self) -> DbWorker:
        return self._db

    async def drain(self, timeout: float = 30.0) -> None:
        """Stop claiming and wait (bounded) for the current run to finish its in-flight rows."""
        self._stopping = True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            _LOGGER.warning(
                "dispatcher %s still busy after %.0fs; leases will return its rows", self.owner, timeout
            )

    async def due_count(self, now: datetime) -> int:
        """Rows a run at ``now`` would claim (due pending rows, expired leases)."""
        async with self._sm() as session:
            due = await session.scalar(
                select(func.count()).select_from(_T).where(_T.c.state.in_(PENDING), _T.c.due_at <= now)
            )
            stale = await session.scalar(
                select(func.count())
                .select_from(_T)
                .where(_T.c.state.in_(("claimed", "sending")), _T.c.lease_expires_at <= now)
            )
        return int(due or 0) + int(stale or 0)

    async def _process_batch(self, rows: list[_Row], at: datetime, summary: DispatchSummary) -> None:
        by_patient: dict[str, list[_Row]] = defaultdict(list)
        for row in rows:
            by_patient[row.patient_id].append(row)
        slots = asyncio.Semaphore(self._concurrency)

        async def one(patient_id: str, group: list[_Row]) -> None:
            async with slots:
                try:
                    await self._process_patient(patient_id, group, at, summary)
                except Exception:
                    # Rows stay claimed/sending under our lease; when it expires they are retried or reconciled.
                    _LOGGER.exception(
                        "dispatch failed for patient %s (rows %s)", patient_id, [r.id for r in group]
                    )

        async with asyncio.TaskGroup() as group:
            for patient_id in interleave_sites(list(by_patient), self._site_of):
                group.create_task(one(patient_id, by_patient[patient_id]))

    async def _process_patient(
        self, patient_id: str, rows: list[_Row], at: datetime, summary: DispatchSummary
    ) -> None:
        fresh = [r for r in rows if r.state == "claimed"]
        stuck = [r for r in rows if r.state == "sending"]
        try:
            if stuck:
                fresh += await self._reconcile(patient_id, stuck, at, summary)
            if fresh:
                await self._dispatch(patient_id, fresh, at, summary)
        except _LostLease:
            _LOGGER.warning("dispatcher %s lost the lease on rows of patient %s", self.owner, patient_id)

    # ---- claiming --------------------------------------------------------------------------------------------

    async def _claim(self, at: datetime) -> list[_Row]:
        async with self._sm.begin() as session:
            pg = self._is_pg(session)
            found: list[tuple[int, str]] = []

            async def take(query: Select[Any], limit: int) -> None:
                if limit > 0:
                    found.extend((r[0], r[1]) for r in await session.execute(_locked(query.limit(limit), pg)))

            await take(
                select(_T.c.id, _T.c.patient_id).where(
                    _T.c.state.in_(("claimed", "sending")), _T.c.lease_expires_at <= at
                ),
                self._batch,
            )
            sites = await self._site_ids(session)
            for state in ("planned", "deferred"):
                due = (
                    select(_T.c.id, _T.c.patient_id)
                    .where(_T.c.state == state, _T.c.due_at <= at)
                    .order_by(_T.c.due_at, _T.c.patient_id)
                )
                if len(sites) > 1:
                    # Fair shares first, so one site's backlog does not hold another site's texts back.
                    share = max(1, (self._batch - len(found)) // len(sites))
                    for site_id in sites:
                        patients = select(Patient.id).where(Patient.site_id == site_id)
                        await take(
                            due.where(_T.c.patient_id.in_(patients)), min(share, self._batch - len(found))
                        )
                if found:
                    due = due.where(_T.c.id.not_in([i for i, _ in found]))
                await take(due, self._batch - len(found))
            if not found:
                return []
            ids = [i for i, _ in found]
            # The same patients' other due rows come along, so a batch edge does not split a bundle.
            ids += await session.scalars(
                _locked(
                    select(_T.c.id).where(
                        _T.c.patient_id.in_({p for _, p in found}),
                        _T.c.state.in_(PENDING),
                        _T.c.due_at <= at,
                        _T.c.id.not_in(ids),
                    ),
                    pg,
                )
            )
            await session.execute(
                update(_T)
                .where(_T.c.id.in_(ids), _claimable(at))
                .values(
                    state=case((_T.c.state == "sending", "sending"), else_="claimed"),
                    lease_owner=self.owner,
                    lease_expires_at=at + self._lease,
                    updated_at=utcnow(),
                )
            )
            pids = {p for _, p in found}
            sited = await session.execute(select(Patient.id, Patient.site_id).where(Patient.id.in_(pids)))
            self._site_of = {row[0]: row[1] for row in sited}
            # The conditional UPDATE is the claim on SQLite: keep only what it actually gave us.
            got = await session.execute(
                select(*_ROW_COLS).where(
                    _T.c.id.in_(ids), _T.c.lease_owner == self.owner, _T.c.state.in_(("claimed", "sending"))
                )
            )
            return _rows(got)

    async def _site_ids(self, session: AsyncSession) -> list[str]:
        """The sites, read once per run (fair claiming takes a share of each)."""
        if self._all_sites is None:
            self._all_sites = list(await session.scalars(select(Site.id).order_by(Site.id)))
        return self._all_sites

    def _is_pg(self, session: AsyncSession) -> bool:
        if not self._dialect:
            self._dialect = session.get_bind().dialect.name
        return self._dialect == "postgresql"

    def _lock_patient(self, conn: Connection, patient_id: str) -> None:
        """Serialise decisions per patient across dispatchers (caps, bundles); SQLite has one writer anyway."""
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:p))"), {"p": f"outreach:{patient_id}"})

    # ---- deciding: synchronous units of work, each one transaction through the DbWorker ---------------------

    def _site(self, conn: Connection, site_id: str) -> SiteConfig | None:
        if site_id not in self._sites:
            row = conn.execute(select(Site.__table__).where(Site.id == site_id)).first()
            if row is None:
                return None
            self._sites[site_id] = site_config(Site(**row._mapping))
        return self._sites[site_id]

    def _paused_pks(self, conn: Connection) -> frozenset[int]:
        """The Program rows loaded paused, read once per run (two small reads; usually none is paused)."""
        if self._paused is None:
            by_site = {
                site_id: set(settings.get(PAUSED_PROGRAMS) or ())
                for site_id, settings in conn.execute(select(Site.id, Site.settings))
                if settings and settings.get(PAUSED_PROGRAMS)
            }
            pks: set[int] = set()
            if by_site:
                programs = select(Program.id, Program.site_id, Program.program_id).where(
                    Program.site_id.in_(list(by_site))
                )
                pks = {pk for pk, site_id, pid in conn.execute(programs) if pid in by_site[site_id]}
            self._paused = frozenset(pks)
        return self._paused

    def _mine(self, conn: Connection, ids: list[int], state: str = "claimed") -> list[_Row]:
        query = select(*_ROW_COLS).where(
            _T.c.id.in_(ids), _T.c.state == state, _T.c.lease_owner == self.owner
        )
        return _rows(conn.execute(query.order_by(_T.c.due_at, _T.c.id)))

    async def _dispatch(
        self, patient_id: str, rows: list[_Row], at: datetime, summary: DispatchSummary
    ) -> None:
        db = self._worker()
        plan = await db.run_at(
            Priority.DELIVERY, lambda conn: self._decide(conn, patient_id, rows, at, summary)
        )
        if plan is None:
            return
        rows, tz, cfg, bucket, ready = plan
        if not ready:
            await bucket.acquire()
            ready = await db.run_at(
                Priority.DELIVERY,
                lambda conn: self._recheck_and_mark(conn, patient_id, rows, tz, cfg, at, summary),
            )
        if ready:
            outcome = await self._send(patient_id, rows, at, summary)
            if outcome.status == "sent":
                bucket.debit(outcome.segments - 1)

    def _decide(
        self, conn: Connection, patient_id: str, rows: list[_Row], at: datetime, summary: DispatchSummary
    ) -> _Plan | None:
        """The per-patient decision, up to and including claimed -> sending, as one transaction."""
        self._lock_patient(conn, patient_id)
        # No re-read: every write below is conditional on our lease, and a lost lease aborts the send.
        found = self._context(conn, patient_id, rows)
        if found is None:
            self._apply(conn, rows, Verdict("cancel", "no_patient"), summary)
            return None
        patient, statuses, cfg = found
        rows = self._row_checks(conn, rows, patient, statuses, at, summary)
        if not rows:
            return None
        tz = pick_zone(patient.time_zone, cfg.time_zone)
        verdict = self._patient_checks(conn, patient_id, tz, cfg, at)
        if verdict is not None:
            self._apply(conn, rows, verdict, summary)
            return None
        rows += self._bundle_extras(conn, patient_id, patient, rows, tz, at)
        bucket = self._rates.bucket(RateLimiter.key(cfg), cfg.send_rate)
        ready = bucket.try_acquire() and self._mark_sending(conn, rows, at)
        return rows, tz, cfg, bucket, ready

    def _context(
        self, conn: Connection, patient_id: str, rows: list[_Row]
    ) -> tuple[_Patient, dict[str, str], SiteConfig] | None:
        row = conn.execute(_PATIENT, {"pid": patient_id}).first()
        if row is None or not rows:
            return None
        wrong = bool(row.phone) and (row.deliverability or {}).get("wrong_number") == row.phone
        patient = _Patient(
            row.opted_out_at is not None,
            bool(row.sms_consent),
            row.site_id,
            row.time_zone,
            wrong,
            opted_out_programs(conn, patient_id),
            self._paused_pks(conn),
        )
        rx_ids = {r.prescription_id for r in rows if r.prescription_id}
        statuses: dict[str, str] = {}
        sites: dict[str, str] = {}
        if rx_ids:
            for rx in conn.execute(_RX, {"ids": list(rx_ids)}):
                statuses[rx.id], sites[rx.id] = rx.status, rx.site_id
        lead_rx = rows[0].prescription_id
        cfg = self._site(conn, sites.get(lead_rx or "", patient.site_id))
        cfg = cfg or self._site(conn, patient.site_id)
        return None if cfg is None else (patient, statuses, cfg)

    def _row_checks(
        self,
        conn: Connection,
        rows: list[_Row],
        patient: _Patient,
        statuses: dict[str, str],
        at: datetime,
        summary: DispatchSummary,
    ) -> list[_Row]:
        keep: list[_Row] = []
        for row in rows:
            verdict = row_verdict(
                opted_out=patient.opted_out,
                wrong_number=patient.wrong_number,
                program_stopped=row.kind in patient.stopped_kinds,
                program_paused=row.program_pk in patient.paused_pks,
                sms_consent=patient.sms_consent,
                rx_status=_rx_status(statuses, row),
                event_step=row.event_step,
                deadline_at=row.deadline_at,
                now=at,
            )
            if verdict is None:
                keep.append(row)
            else:
                self._apply(conn, [row], verdict, summary)
        return keep

    def _patient_checks(
        self, conn: Connection, patient_id: str, tz: Any, cfg: SiteConfig, at: datetime
    ) -> Verdict | None:
        """Open dialog, quiet hours, caps, in that order; one statement reads the dialog and the counts."""
        row = conn.execute(_CHECKS, self._count_params(patient_id, tz, at)).one()
        extra = 1 if row[3] else 0
        return patient_verdict(
            open_dialog=bool(row[0]),
            now=at,
            tz=tz,
            cfg=cfg,
            today=int(row[1]) + extra,
            week=int(row[2]) + extra,
        )

    def _counts(self, conn: Connection, patient_id: str, tz: Any, at: datetime) -> tuple[int, int]:
        """Outreach texts to the patient in their local day and the rolling 7 days (+ one being sent elsewhere).

        One statement, so one snapshot: a text another dispatcher is sending is counted either as its
        stored Message or, before the sender committed that, as its in-flight outreach row; never neither.
        """
        row = conn.execute(_COUNTS, self._count_params(patient_id, tz, at)).one()
        extra = 1 if row[2] else 0
        return int(row[0]) + extra, int(row[1]) + extra

    def _count_params(self, patient_id: str, tz: Any, at: datetime) -> dict[str, Any]:
        day_start, day_end = day_bounds(at, tz)
        return {
            "pid": patient_id,
            "at": at,
            "day_start": day_start,
            "day_end": day_end,
            "week_start": at - timedelta(days=7),
            "owner": self.owner,
        }

    def _bundle_extras(
        self,
        conn: Connection,
        patient_id: str,
        patient: _Patient,
        rows: list[_Row],
        tz: Any,
        at: datetime,
    ) -> list[_Row]:
        """The patient's other pending rows due later the same local day join this text (one message a day)."""
        _start, day_end = day_bounds(at, tz)
        query = _EXTRAS_PG if conn.dialect.name == "postgresql" else _EXTRAS
        params = {"pid": patient_id, "day_end": day_end, "at": at, "ids": [r.id for r in rows]}
        ids = list(conn.scalars(query, params))
        if not ids:
            return []
        conn.execute(
            update(_T)
            .where(_T.c.id.in_(ids), _T.c.state.in_(PENDING))
            .values(
                state="claimed",
                lease_owner=self.owner,
                lease_expires_at=at + self._lease,
                updated_at=utcnow(),
            )
        )
        extras = self._mine(conn, ids)
        rx_ids = {r.prescription_id for r in extras if r.prescription_id}
        statuses = (
            {
                r.id: r.status
                for r in conn.execute(
                    select(Prescription.id, Prescription.status).where(Prescription.id.in_(rx_ids))
                )
            }
            if rx_ids
            else {}
        )
        ok = [
            r
            for r in extras
            if row_verdict(
                opted_out=patient.opted_out,
                wrong_number=patient.wrong_number,
                program_stopped=r.kind in patient.stopped_kinds,
                program_paused=r.program_pk in patient.paused_pks,
                sms_consent=patient.sms_consent,
                rx_status=_rx_status(statuses, r),
                event_step=r.event_step,
                deadline_at=r.deadline_at,
                now=at,
            )
            is None
        ]
        # Extras that fail a row check go back to pending; their own turn will record why.
        back = [r.id for r in extras if r not in ok]
        if back:
            conn.execute(
                update(_T)
                .where(_T.c.id.in_(back))
                .values(state="planned", lease_owner=None, lease_expires_at=None)
            )
        return ok

    def _apply(self, conn: Connection, rows: list[_Row], verdict: Verdict, summary: DispatchSummary) -> None:
        if not rows:
            return
        values: dict[str, Any] = {
            "reason": verdict.reason,
            "lease_owner": None,
            "lease_expires_at": None,
            "updated_at": utcnow(),
        }
        if verdict.action == "defer":
            values.update(state="deferred", due_at=verdict.until)
            summary.deferred += len(rows)
            self.metrics.deferred.labels(reason=verdict.reason).inc(len(rows))
        elif verdict.action == "expire":
            values["state"] = "expired"
            summary.expired += len(rows)
            self.metrics.expired.labels(reason=verdict.reason).inc(len(rows))
            self._expire_retries(conn, [r.id for r in rows])
        else:
            values["state"] = "cancelled"
            summary.cancelled += len(rows)
            self.metrics.cancelled.labels(reason=verdict.reason).inc(len(rows))
        conn.execute(
            update(_T)
            .where(_T.c.id.in_([r.id for r in rows]), _T.c.lease_owner == self.owner)
            .values(**values)
        )

    def _expire_retries(self, conn: Connection, ids: list[int]) -> None:
        """Rows that waited for the provider until their deadline: ``provider_unavailable``, and their stored
        text is expired too, so nothing sends it late."""
        waiting = and_(_T.c.id.in_(ids), _T.c.reason == "provider_retry", _T.c.lease_owner == self.owner)
        texts = [m for m in conn.execute(select(_T.c.message_id).where(waiting)).scalars() if m is not None]
        conn.execute(
            update(_T)
            .where(waiting)
            .values(
                state="expired",
                reason="provider_unavailable",
                lease_owner=None,
                lease_expires_at=None,
                updated_at=utcnow(),
            )
        )
        if texts:
            conn.execute(
                update(Message)
                .where(Message.id.in_(texts), Message.status.in_(("pending", "unknown")))
                .values(status="expired", error_message="provider_unavailable")
            )

    # ---- sending ---------------------------------------------------------------------------------------------

    def _mark_sending(self, conn: Connection, rows: list[_Row], at: datetime) -> bool:
        """claimed -> sending, committed before the sender is called; the lead is the earliest row."""
        rows.sort(key=lambda r: (r.due_at, r.id))
        lead, ids = rows[0], [r.id for r in rows]
        params = {
            "ids": ids,
            "owner": self.owner,
            "until": at + self._lease,
            "lead": lead.id,
            "now": utcnow(),
        }
        result = conn.execute(_MARK_SENDING, params)
        if result.rowcount != len(ids):
            raise _LostLease
        return True

    def _recheck_and_mark(
        self,
        conn: Connection,
        patient_id: str,
        rows: list[_Row],
        tz: Any,
        cfg: SiteConfig,
        at: datetime,
        summary: DispatchSummary,
    ) -> bool:
        """After waiting for the rate limit: still ours, still under the caps? Then mark sending."""
        self._lock_patient(conn, patient_id)
        mine = self._mine(conn, [r.id for r in rows])
        if len(mine) != len(rows):
            return False
        verdict = cap_verdict(at, tz, cfg, *self._counts(conn, patient_id, tz, at))
        if verdict is not None:
            self._apply(conn, mine, verdict, summary)
            return False
        rows[:] = mine
        return self._mark_sending(conn, rows, at)

    async def _send(
        self, patient_id: str, rows: list[_Row], at: datetime, summary: DispatchSummary
    ) -> SendOutcome:
        ids = [r.id for r in rows]
        try:
            outcome = await self._sender.send(patient_id, ids, at)
        except Exception:
            _LOGGER.exception(
                "sender raised for patient %s; rows %s stay sending and are reconciled", patient_id, ids
            )
            outcome = SendOutcome("unknown", reason="sender_error")
        await self._finish(patient_id, rows, outcome, at, summary)
        return outcome

    async def _finish(
        self, patient_id: str, rows: list[_Row], outcome: SendOutcome, at: datetime, summary: DispatchSummary
    ) -> None:
        if outcome.status == "unknown":
            summary.unknown += len(rows)
            _LOGGER.warning(
                "send outcome unknown for patient %s rows %s (%s)",
                patient_id,
                [r.id for r in rows],
                outcome.reason,
            )
            return
        await self._worker().run_at(
            Priority.DELIVERY, lambda conn: self._record_outcome(conn, rows, outcome, at, summary)
        )

    def _record_outcome(
        self, conn: Connection, rows: list[_Row], outcome: SendOutcome, at: datetime, summary: DispatchSummary
    ) -> None:
        """sending -> sent | failed for the rows still ours, as one transaction."""
        lead = min(rows, key=lambda r: (r.bundled_into is not None, r.due_at, r.id))
        params: dict[str, Any] = {
            "ids": [r.id for r in rows],
            "owner": self.owner,
            "mid": outcome.message_id,  # None keeps the row's message_id
            "now": utcnow(),
        }
        if outcome.status == "retry":
            # The provider is unavailable: wait, then the stored text goes out (reconciled first) on a later
            # run, until the rows' deadline.
            attempts = conn.execute(
                select(func.max(_T.c.attempts)).where(_T.c.id.in_(params["ids"]))
            ).scalar()
            delay = min(RETRY_BASE_SECONDS * 2 ** max(int(attempts or 1) - 1, 0), RETRY_MAX_SECONDS)
            delay *= 0.5 + random.random()  # jitter: replicas and patients do not retry in step
            conn.execute(_RETRY, {**params, "until": at + timedelta(seconds=delay)})
            summary.deferred += len(rows)
            self.metrics.deferred.labels(reason="provider_retry").inc(len(rows))
            return
        if outcome.status == "sent":
            conn.execute(_SENT, {**params, "lead": lead.id})
            summary.sent += len(rows)
            summary.messages += 1
            self.metrics.sent.inc(len(rows))
            self.metrics.messages.inc()
            self.metrics.lag.observe(max(0.0, (at - lead.due_at).total_seconds()))
        else:
            reason = (outcome.reason or "send_failed")[:60]
            conn.execute(_FAILED, {**params, "reason": reason})
            summary.failed += len(rows)
            self.metrics.failed.labels(reason=reason).inc(len(rows))

    async def _reconcile(
        self, patient_id: str, rows: list[_Row], at: datetime, summary: DispatchSummary
    ) -> list[_Row]:
        """Rows left ``sending`` by a crash: ask the sender first; resend only what never went out."""
        rows.sort(key=lambda r: (r.bundled_into is not None, r.due_at, r.id))
        ids = [r.id for r in rows]
        try:
            outcome = await self._sender.reconcile(patient_id, ids, at)
        except Exception:
            _LOGGER.exception("reconcile raised for patient %s rows %s", patient_id, ids)
            outcome = SendOutcome("unknown", reason="reconcile_error")
        if outcome is not None and outcome.status != "unknown":
            summary.reconciled += len(rows)
            await self._finish(patient_id, rows, outcome, at, summary)
            return []
        async with self._sm.begin() as session:
            mine = and_(_T.c.id.in_(ids), _T.c.state == "sending", _T.c.lease_owner == self.owner)
            if outcome is None:  # never went out: back to claimed, through every check again
                await session.execute(update(_T).where(mine).values(state="claimed", bundled_into=None))
                conn = await session.connection()
                return await conn.run_sync(self._mine, ids)
            await session.execute(update(_T).where(mine).values(lease_expires_at=at + self._lease))
        summary.unknown += len(rows)
        return []


class _LostLease(Exception):
    """Another dispatcher took over some rows (our lease had expired); leave them to it."""


def _count_columns() -> list[Any]:
    """Outreach texts in the local day, in the rolling 7 days, and the patient's texts in flight elsewhere."""
    sent = (
        select(func.count())
        .select_from(Message)
        .where(
            Message.patient_id == bindparam("pid"),
            Message.direction == "out",
            Message.kind == "outreach",
            Message.created_at < bindparam("day_end"),
            # A text waiting for the provider (or expired unsent) is not one the patient got: the same text
            # goes out when the provider is back, and must not be held by its own cap.
            Message.status != "expired",
            or_(Message.error_message.is_(None), ~Message.error_message.startswith("provider_retry")),
        )
    )
    in_flight = (
        select(func.count())
        .select_from(_T)
        .where(
            _T.c.patient_id == bindparam("pid"),
            _T.c.state == "sending",
            _T.c.message_id.is_(None),
            or_(_T.c.lease_owner.is_(None), _T.c.lease_owner != bindparam("owner")),
        )
    )
    return [
        sent.where(Message.created_at >= bindparam("day_start")).scalar_subquery(),
        sent.where(Message.created_at > bindparam("week_start")).scalar_subquery(),
        in_flight.scalar_subquery(),
    ]


_PATIENT = select(
    Patient.opted_out_at,
    Patient.sms_consent,
    Patient.site_id,
    Patient.time_zone,
    Patient.phone,
    Patient.deliverability,
).where(Patient.id == bindparam("pid"))
_RX = select(Prescription.id, Prescription.status, Prescription.site_id).where(
    Prescription.id.in_(bindparam("ids", expanding=True))
)
def _extras(due_at: Any) -> Select[int]:
    return select(_T.c.id).where(
        _T.c.patient_id == bindparam("pid"),
        _T.c.state.in_(PENDING),
        due_at < bindparam("day_end", type_=_T.c.due_at.type),
        _T.c.deadline_at > bindparam("at"),
        _T.c.id.not_in(bindparam("ids", expanding=True)),
    )


# SQLite's planner, without statistics, picks (state, due_at) for this query and scans every pending row due
# today for each text sent (quadratic in a big dispatch). A unary + on due_at takes that index off the table,
# leaving one patient's rows (patient_id, state) as the way in.
_EXTRAS = _extras(literal_column("+outreach.due_at", _T.c.due_at.type))
_EXTRAS_PG = _extras(_T.c.due_at).with_for_update(skip_locked=True)
_MARK_SENDING = (
    update(_T)
    .where(
        _T.c.id.in_(bindparam("ids", expanding=True)),
        _T.c.state == "claimed",
        _T.c.lease_owner == bindparam("owner"),
    )
    .values(
        state="sending",
        reason="",
        attempts=_T.c.attempts + 1,
        lease_expires_at=bindparam("until", type_=_T.c.lease_expires_at.type),
        bundled_into=case(
            (_T.c.id == bindparam("lead", type_=Integer), None), else_=bindparam("lead", type_=Integer)
        ),
        updated_at=bindparam("now", type_=_T.c.updated_at.type),
    )
)
_OURS_SENDING = and_(
    _T.c.id.in_(bindparam("ids", expanding=True)),
    _T.c.state == "sending",
    _T.c.lease_owner == bindparam("owner"),
)
_DONE = {
    "lease_owner": None,
    "lease_expires_at": None,
    "updated_at": bindparam("now", type_=_T.c.updated_at.type),
    "message_id": func.coalesce(bindparam("mid", type_=_T.c.message_id.type), _T.c.message_id),
}
_SENT = (
    update(_T)
    .where(_OURS_SENDING)
    .values(
        state="sent", reason=case((_T.c.id == bindparam("lead", type_=Integer), ""), else_="bundled"), **_DONE
    )
)
_FAILED = (
    update(_T).where(_OURS_SENDING).values(state="failed", reason=bindparam("reason", type_=String), **_DONE)
)
_RETRY = (
    update(_T)
    .where(_OURS_SENDING)
    .values(
        state="deferred", reason="provider_retry", due_at=bindparam("until", type_=_T.c.due_at.type), **_DONE
    )
)
RETRY_BASE_SECONDS = 30.0  # the first wait after a provider failure; it doubles each try
RETRY_MAX_SECONDS = 15 * 60.0
# Built once: statement construction and cache-key generation are most of a short statement's CPU.
_COUNTS = select(*_count_columns())
_WAITING_TEXT = (
    select(Message.id)
    .where(
        Message.conversation_id == Conversation.id,
        Message.status == "pending",
        Message.error_message.startswith("provider_retry"),
    )
    .correlate(Conversation)
)
_CHECKS = select(
    exists().where(
        Conversation.patient_id == bindparam("pid"),
        Conversation.status == "open",
        or_(Conversation.expires_at.is_(None), Conversation.expires_at > bindparam("at")),
        # the dialog a text waiting for the provider opened is that text's own, not one to wait for
        ~exists(_WAITING_TEXT),
    ),
    *_count_columns(),
)


def interleave_sites(patient_ids: list[str], site_of: dict[str, str]) -> list[str]:
    """Patients in round-robin order over their sites, each site's own order kept."""
    by_site: dict[str, list[str]] = defaultdict(list)
    for patient_id in patient_ids:
        by_site[site_of.get(patient_id, "")].append(patient_id)
    queues = list(by_site.values())
    out: list[str] = []
    for i in range(max((len(q) for q in queues), default=0)):
        out.extend(q[i] for q in queues if i < len(q))
    return out


def _rx_status(statuses: dict[str, str], row: _Row) -> str | None:
    """The prescription's status; a row not tied to a prescription passes the check."""
    return "active" if row.prescription_id is None else statuses.get(row.prescription_id)


def _claimable(at: datetime) -> Any:
    return or_(
        and_(_T.c.state.in_(PENDING), _T.c.due_at <= at),
        and_(_T.c.state.in_(("claimed", "sending")), _T.c.lease_expires_at <= at),
    )


def _locked(query: Select[Any], pg: bool) -> Select[Any]:
    return query.with_for_update(skip_locked=True) if pg else query
