"""Delivery status callbacks in batches: one transaction applies every callback waiting, then they are answered.

A message's status only moves forward (``bot.channel.STATUS_RANK``; a late ``sent`` never overwrites
``delivered``). A callback for a sid we do not know yet — it beat the API answer that tells us the sid — waits
in ``provider_status`` and is applied when the sid is recorded (``drain_backlog``). Final outcomes feed the
patient's deliverability record (and act on 21610 and dead numbers), in the same transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from bot.batching import GroupWriter
from bot.channel import OUTCOMES, STATUS_RANK, delivery_outcome
from bot.db.models import Message, Patient, ProviderStatus
from bot.dbthread import DbWorker, Priority
from bot.syncstore import SiteCache, load_patients, lock_for_write, open_task, opt_out_phone

__all__ = ["StatusUpdate", "StatusWriter", "apply_statuses", "drain_backlog"]

_LOGGER = logging.getLogger(__name__)
_MAX_BATCH = 300
_LINGER = 0.02  # Twilio does not wait on our answer to a status callback: a lone one waits for company


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """One status callback: the provider sid, its new status and error code, and when it arrived."""

    sid: str
    status: str
    error_code: int | None
    at: datetime


@dataclass(slots=True)
class _Tracked:
    id: int
    status: str
    patient_id: str | None


def _moves(current: str, new: str) -> bool:
    """True when ``new`` is later than ``current`` (``unknown`` always gives way)."""
    return current == "unknown" or STATUS_RANK.get(current, 0) < STATUS_RANK.get(new, 0)


_UPDATE = (
    update(Message)
    .where(Message.id == bindparam("b_id"))
    .values(status=bindparam("b_status"), status_updated_at=bindparam("b_at"))
)
_UPDATE_WITH_CODE = _UPDATE.values(error_code=bindparam("b_code"))
_BY_SID = select(Message.id, Message.provider_sid, Message.status, Message.patient_id).where(
    Message.provider_sid.in_(bindparam("sids", expanding=True))
)
_BY_SID_FOR_UPDATE = _BY_SID.with_for_update()
_INSERT_BACKLOG = insert(ProviderStatus)
_BACKLOG_OF = (
    select(ProviderStatus.id, ProviderStatus.provider_sid, ProviderStatus.status, ProviderStatus.error_code)
    .where(ProviderStatus.provider_sid.in_(bindparam("sids", expanding=True)))
    .order_by(ProviderStatus.id)
)
_KNOWN_SIDS = select(Message.provider_sid).where(Message.provider_sid.in_(bindparam("sids", expanding=True)))
_DELETE_BACKLOG = delete(ProviderStatus).where(ProviderStatus.id.in_(bindparam("ids", expanding=True)))
_SET_DELIVERABILITY = (
    update(Patient).where(Patient.id == bindparam("b_id")).values(deliverability=bindparam("b_record"))
)


def apply_statuses(conn: Connection, updates: Sequence[StatusUpdate]) -> list[str]:
    """Apply callbacks in arrival order; returns the sids not known yet (kept in the backlog)."""
    lock_for_write(conn)
    query = _BY_SID_FOR_UPDATE if conn.dialect.name == "postgresql" else _BY_SID
    rows = conn.execute(query, {"sids": sorted({u.sid for u in updates})})
    tracked = {sid: _Tracked(mid, status, patient) for mid, sid, status, patient in rows}
    changes: dict[int, dict[str, Any]] = {}
    outcomes: list[tuple[int, str, str, int | None, datetime]] = []
    backlog: list[StatusUpdate] = []
    for one in updates:
        row = tracked.get(one.sid)
        if row is None:
            backlog.append(one)
            continue
        if not _moves(row.status, one.status):
            continue  # a stale or repeated callback: nothing to change
        row.status = one.status
        change = changes.setdefault(row.id, {"b_id": row.id})
        change.update(b_status=one.status, b_at=one.at)
        if one.error_code:
            change["b_code"] = one.error_code
        if row.patient_id and one.status in OUTCOMES:
            outcomes.append((row.id, row.patient_id, one.status, one.error_code, one.at))
    _write_changes(conn, changes.values())
    if backlog:
        conn.execute(
            _INSERT_BACKLOG,
            [
                {"provider_sid": u.sid, "status": u.status, "error_code": u.error_code, "created_at": u.at}
                for u in backlog
            ],
        )
    if outcomes:
        record_deliveries(conn, outcomes)
    return sorted({u.sid for u in backlog})


def _write_changes(conn: Connection, changes: Iterable[dict[str, Any]]) -> None:
    with_code = [c for c in changes if "b_code" in c]
    without = [c for c in changes if "b_code" not in c]
    if with_code:
        conn.execute(_UPDATE_WITH_CODE, with_code)
    if without:
        conn.execute(_UPDATE, without)


def drain_backlog(conn: Connection, sids: Sequence[str], now: datetime) -> None:
    """Apply callbacks that arrived before their message's sid was known (both sides may call it)."""
    if not sids:
        return
    lock_for_write(conn)
    early = conn.execute(
        select(
            ProviderStatus.id, ProviderStatus.provider_sid, ProviderStatus.status, ProviderStatus.error_code
        )
        .where(ProviderStatus.provider_sid.in_(sids))
        .order_by(ProviderStatus.id)
    ).all()
    if not early:
        return
    known = set(conn.execute(_KNOWN_SIDS, {"sids": sorted({row[1] for row in early})}).scalars())
    ready = [row for row in early if row[1] in known]
    if ready:
        apply_statuses(conn, [StatusUpdate(sid, status, code, now) for _id, sid, status, code in ready])
        conn.execute(_DELETE_BACKLOG, {"ids": [row[0] for row in ready]})


def record_deliveries(
    conn: Connection, outcomes: Sequence[tuple[int, str, str, int | None, datetime]]
) -> None:
    """As ``bot.channel.record_delivery`` for each (message id, patient id, status, code, time), in order."""
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
        if contact and code is not None:
            open_task(
                conn,
                sites,
                site_id=patient.site_id,
                queue="general",
                kind="fix_contact",
                title="Texts are not reaching this patient: check the phone number",
                now=at,
                patient_id=patient.id,
                priority=3,
                detail={"error_code": code, "failures": int(record.get("consecutive_failures", 0))},
                source_message_id=message_id,
            )
        patient.deliverability = record
        changed[patient.id] = patient
    if changed:
        conn.execute(
            update(Patient)
            .where(Patient.id == bindparam("b_id"))
            .values(deliverability=bindparam("b_record")),
            [{"b_id": p.id, "b_record": p.deliverability} for p in changed.values()],
        )


class StatusWriter:
    """Status callbacks of concurrent requests, applied one batch (one transaction) at a time."""

    def __init__(self, db: DbWorker) -> None:
        self._db = db
        self._writer: GroupWriter[StatusUpdate, None] = GroupWriter(
            self._write, name="status callbacks", max_batch=_MAX_BATCH, linger=_LINGER
        )

    async def apply(self, update: StatusUpdate) -> None:
        """Apply one callback; returns once it is committed (or kept in the backlog)."""
        await self._writer.submit(update)

    async def close(self) -> None:
        """Write what is queued, then stop the writer."""
        await self._writer.close()

    async def _write(self, updates: list[StatusUpdate]) -> list[None]:
        backlog = await self._db.run_at(Priority.ANSWER, lambda conn: apply_statuses(conn, updates))
        if backlog and not self._db.threaded:
            # Insert-then-check: the sender may have recorded the sid while we kept the callback; whichever
            # of us comes second applies it. (On the SQLite thread the two never overlap.)
            now = updates[-1].at
            await self._db.run_at(Priority.ANSWER, lambda conn: drain_backlog(conn, backlog, now))
        return [None] * len(updates)
