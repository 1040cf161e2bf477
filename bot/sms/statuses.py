"""Delivery status callbacks in batches: one transaction applies every callback waiting, then they are answered.

A message's status only moves forward (``bot.sms.channel.STATUS_RANK``; a late ``sent`` never overwrites
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

from bot.db.contact import record_deliveries
from bot.db.models import Message, ProviderStatus
from bot.db.unit import lock_for_write
from bot.db.worker import DbWorker, Priority
from bot.sms.batching import GroupWriter
from bot.sms.channel import OUTCOMES, STATUS_RANK

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
