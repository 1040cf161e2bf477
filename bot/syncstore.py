"""Synchronous twins of the store's shared writes, for units of work run on a ``Connection`` (bot.dbthread).

Each function writes exactly the rows its async counterpart writes — ``bot.tasks.open_task``,
``bot.audit.record``, ``bot.signals.record_signal``, ``bot.channel.opt_out_phone`` — with SQLAlchemy Core on the
caller's connection and transaction. Keep them in step with those when either changes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bot.audit import SYSTEM
from bot.auth import QUEUES
from bot.db.models import AuditEvent, ConsentEvent, Conversation, Outreach, Patient, Signal, Site, Task
from bot.signals import signal_row
from bot.tasks import compute_due_by
from scheduler.sitecfg import SiteConfig, site_config

__all__ = [
    "SiteCache",
    "add_consent_event",
    "load_patients",
    "lock_for_write",
    "open_task",
    "opt_out_phone",
    "record_signal",
]

_LOGGER = logging.getLogger(__name__)
_PATIENT = Patient.__table__
_SITE = Site.__table__
# Statements built once: building one per call (``insert(T).values(**row)``) costs five times its execution.
_SITE_BY_ID = select(_SITE).where(_SITE.c.id == bindparam("site_id"))
_PATIENTS_BY = {
    column: select(_PATIENT)
    .where(_PATIENT.c[column].in_(bindparam("values", expanding=True)))
    .order_by(_PATIENT.c.id)
    for column in ("id", "phone")
}
_INSERT_TASK = insert(Task).returning(Task.id)
_INSERT_AUDIT = insert(AuditEvent)
_INSERT_CONSENT = insert(ConsentEvent)
_OPT_OUT = update(Patient).where(Patient.id == bindparam("b_id")).values(opted_out_at=bindparam("b_at"))
_INSERT_SIGNAL = {
    name: dialect.insert(Signal).on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(Signal.id)
    for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))
}


def lock_for_write(conn: Connection) -> None:
    """Make this transaction a writer from its first statement, so what it reads stays true until it commits.

    On the SQLite thread (pysqlite begins a transaction only at the first write) this is ``BEGIN IMMEDIATE``:
    the write lock, taken now. PostgreSQL callers lock the rows they read instead (``FOR UPDATE``); an
    in-memory SQLite database has a single connection, so nothing else can write meanwhile.
    """
    if conn.dialect.driver == "pysqlite" and not conn.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class SiteCache:
    """Sites (as detached ORM objects) and their SiteConfig, read at most once per unit of work."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._sites: dict[str, Site | None] = {}
        self._configs: dict[str, SiteConfig] = {}

    def get(self, site_id: str) -> Site | None:
        """The site, or None."""
        if site_id not in self._sites:
            row = self._conn.execute(_SITE_BY_ID, {"site_id": site_id}).mappings().first()
            self._sites[site_id] = Site(**row) if row is not None else None
        return self._sites[site_id]

    def config(self, site: Site) -> SiteConfig:
        """The site's typed settings."""
        if site.id not in self._configs:
            self._configs[site.id] = site_config(site)
        return self._configs[site.id]


def load_patients(conn: Connection, column: str, values: Iterable[str], lock: bool = False) -> list[Patient]:
    """Patients whose ``column`` ("id" or "phone") is one of ``values``, as detached ORM objects.

    Their changes are written with Core statements; ``lock`` reads them ``FOR UPDATE`` (PostgreSQL).
    """
    query = _PATIENTS_BY[column]
    if lock:
        query = query.with_for_update()
    rows = conn.execute(query, {"values": list(values)}).mappings()
    return [Patient(**row) for row in rows]


def _audit(
    conn: Connection,
    *,
    action: str,
    site_id: str,
    patient_id: str | None,
    target: str,
    detail: dict[str, Any],
    at: datetime,
) -> None:
    conn.execute(
        insert(AuditEvent).values(
            at=at,
            actor=SYSTEM,
            site_id=site_id,
            action=action[:60],
            patient_id=patient_id,
            target=target[:100],
            detail=detail,
        )
    )


def open_task(
    conn: Connection,
    sites: SiteCache,
    *,
    site_id: str,
    queue: str,
    kind: str,
    title: str,
    now: datetime,
    patient_id: str | None = None,
    priority: int = 3,
    detail: dict[str, Any] | None = None,
    prescription_id: str | None = None,
    source_message_id: int | None = None,
) -> int:
    """As ``bot.tasks.open_task``: the task with its SLA due time and its audit row; returns the task id.

    Raises:
        ValueError: unknown queue or site.
    """
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}")
    site = sites.get(site_id)
    if site is None:
        raise ValueError(f"unknown site {site_id!r}")
    priority = 1 if queue == "urgent_clinical" else min(max(int(priority), 1), 4)
    row = {
        "site_id": site_id,
        "patient_id": patient_id,
        "prescription_id": prescription_id,
        "queue": queue,
        "kind": kind[:40],
        "priority": priority,
        "status": "open",
        "title": title[:200],
        "detail": dict(detail or {}),
        "due_by": compute_due_by(sites.config(site), queue, now),
        "source_message_id": source_message_id,
        "created_at": now,
        "updated_at": now,
    }
    task_id: int = conn.execute(_INSERT_TASK, row).scalar_one()
    _audit(
        conn,
        action="task.open",
        site_id=site_id,
        patient_id=patient_id,
        target=f"task:{task_id}",
        detail={"queue": queue, "kind": kind[:40], "priority": priority},
        at=now,
    )
    _LOGGER.info("task %s opened in %s (site %s, priority %s)", task_id, queue, site_id, priority)
    return task_id


def record_signal(
    conn: Connection,
    *,
    patient_id: str,
    site_id: str,
    kind: str,
    source: str,
    occurred_at: datetime,
    value: dict[str, Any] | None = None,
    prescription_id: str | None = None,
    source_message_id: int | None = None,
    dedupe_key: str | None = None,
) -> int | None:
    """As ``bot.signals.record_signal``: one signal unless ``dedupe_key`` was recorded; its id or None.

    Raises:
        ValueError: an unknown kind or source, or a naive ``occurred_at``.
    """
    row = signal_row(
        patient_id=patient_id,
        site_id=site_id,
        kind=kind,
        source=source,
        occurred_at=occurred_at,
        value=value,
        prescription_id=prescription_id,
        source_message_id=source_message_id,
        dedupe_key=dedupe_key,
    )
    signal_id: int | None = conn.execute(_INSERT_SIGNAL[conn.dialect.name], row).scalar_one_or_none()
    if signal_id is None:
        _LOGGER.debug("signal %s for patient %s already recorded", kind, patient_id)
    else:
        _LOGGER.info("signal %s id=%s recorded for patient %s", kind, signal_id, patient_id)
    return signal_id


def add_consent_event(
    conn: Connection, *, patient_id: str, change: str, source: str, message_id: int | None, now: datetime
) -> None:
    """One consent_event row."""
    conn.execute(
        insert(ConsentEvent).values(
            patient_id=patient_id, change=change, source=source, message_id=message_id, created_at=now
        )
    )


def opt_out_phone(
    conn: Connection, phone: str, *, source: str, message_id: int | None, now: datetime
) -> list[Patient]:
    """As ``bot.channel.opt_out_phone``: opt out every patient with this phone, cancel their pending outreach,
    close their open dialogs, record the consent change. Returns the patients newly opted out."""
    patients = load_patients(conn, "phone", [phone], lock=conn.dialect.name == "postgresql")
    changed = [p for p in patients if p.opted_out_at is None]
    for patient in changed:
        patient.opted_out_at = now
        conn.execute(_OPT_OUT, {"b_id": patient.id, "b_at": now})
        add_consent_event(
            conn, patient_id=patient.id, change="opt_out", source=source, message_id=message_id, now=now
        )
    ids: Sequence[str] = [p.id for p in patients]
    if ids:
        conn.execute(
            update(Outreach)
            .where(Outreach.patient_id.in_(ids), Outreach.state.in_(("planned", "deferred", "claimed")))
            .values(state="cancelled", reason="opted_out", updated_at=now)
        )
        conn.execute(
            update(Conversation)
            .where(Conversation.patient_id.in_(ids), Conversation.status == "open")
            .values(status="closed", updated_at=now)
        )
    return changed
