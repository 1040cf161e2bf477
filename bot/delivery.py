"""Delivering pending texts in batches: one claim transaction, the provider calls, one record transaction.

The same steps as ``Channel.deliver`` (store first, claim, call the provider, record the sid or the failure,
apply callbacks that beat the sid), with one transaction on each side of the provider calls for the whole
batch instead of two or three per text. A text with an earlier attempt goes through ``Channel.deliver``, which
reconciles it with the provider instead of sending it again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, select, update

from bot.batching import GroupWriter, Pressure
from bot.channel import BAD_PHONE_STATUSES, BAD_PHONE_TASK, Channel, SendResult, bad_phone_status
from bot.clock import Clock
from bot.db.models import Message, Patient, Site
from bot.dbthread import DbWorker, Priority
from bot.statuses import drain_backlog
from bot.syncstore import SiteCache, load_patients, lock_for_write, open_task, opt_out_phone

__all__ = ["Claimed", "Deliverer"]

_LOGGER = logging.getLogger(__name__)
_BAD_NUMBER_CODES = {21211, 21614}
_SENDABLE = ("pending", "unknown")


@dataclass(frozen=True, slots=True)
class Claimed:
    """A text this batch will send, with its sender."""

    id: int
    to_number: str
    from_number: str
    body: str
    patient_id: str | None
    site: Site | None


_TO_CLAIM = (
    select(
        Message.id,
        Message.to_number,
        Message.from_number,
        Message.body,
        Message.patient_id,
        Message.site_id,
        Message.provider_sid,
        Message.status,
        Message.attempts,
    )
    .where(Message.id.in_(bindparam("ids", expanding=True)))
    .order_by(Message.id)
)
_TO_CLAIM_FOR_UPDATE = _TO_CLAIM.with_for_update()
_COUNT_ATTEMPT = (
    update(Message)
    .where(Message.id.in_(bindparam("ids", expanding=True)))
    .values(attempts=Message.attempts + 1)
)


def claim(conn: Connection, message_ids: Sequence[int]) -> tuple[list[Claimed], list[int]]:
    """Count an attempt on each pending text never tried; returns (claimed, ids tried before)."""
    lock_for_write(conn)
    query = _TO_CLAIM_FOR_UPDATE if conn.dialect.name == "postgresql" else _TO_CLAIM
    sites = SiteCache(conn)
    claimed: list[Claimed] = []
    retried: list[int] = []
    for mid, to, from_, body, patient_id, site_id, sid, status, attempts in conn.execute(
        query, {"ids": list(message_ids)}
    ):
        if sid or status not in _SENDABLE:
            continue  # already sent, or settled
        if attempts > 0:
            retried.append(mid)  # its outcome is unknown: reconcile, never blindly resend
            continue
        claimed.append(Claimed(mid, to, from_, body, patient_id, sites.get(site_id) if site_id else None))
    if claimed:
        conn.execute(_COUNT_ATTEMPT, {"ids": [c.id for c in claimed]})
    return claimed, retried


_RECORD_SID = (
    update(Message)
    .where(Message.id == bindparam("b_id"))
    .values(
        provider_sid=bindparam("b_sid"), status=bindparam("b_status"), status_updated_at=bindparam("b_at")
    )
)
_SET_PHONE_STATUS = (
    update(Patient).where(Patient.id == bindparam("b_id")).values(phone_status=bindparam("b_status"))
)
_RECORD_FAILURE = (
    update(Message)
    .where(Message.id == bindparam("b_id"))
    .values(
        status=bindparam("b_status"),
        error_code=bindparam("b_code"),
        error_message=bindparam("b_error"),
        status_updated_at=bindparam("b_at"),
    )
)


def record(
    conn: Connection, outcomes: Sequence[tuple[Claimed, SendResult]], now: datetime, drain: bool
) -> None:
    """Store each provider outcome; with ``drain``, apply callbacks that arrived before their sid."""
    lock_for_write(conn)
    sent = [(c, r) for c, r in outcomes if r.sid]
    failed = [(c, r) for c, r in outcomes if not r.sid]
    if sent:
        # The text was pending (callbacks for an unknown sid wait in the backlog), so any status is newer.
        conn.execute(
            _RECORD_SID, [{"b_id": c.id, "b_sid": r.sid, "b_status": r.status, "b_at": now} for c, r in sent]
        )
    if failed:
        conn.execute(
            _RECORD_FAILURE,
            [
                {"b_id": c.id, "b_status": r.status, "b_code": r.error_code, "b_error": r.error, "b_at": now}
                for c, r in failed
            ],
        )
        _permanent_errors(conn, [(c, r) for c, r in failed if r.error_code is not None and c.patient_id], now)
    if drain and sent:
        drain_backlog(conn, [str(r.sid) for _c, r in sent], now)


def _permanent_errors(conn: Connection, failed: Sequence[tuple[Claimed, SendResult]], now: datetime) -> None:
    """As ``Channel._on_permanent_error``: 21610 opts the phone out; a bad number is flagged with a task."""
    sites = SiteCache(conn)
    for claimed, result in failed:
        patients = load_patients(conn, "id", [str(claimed.patient_id)])
        if not patients:
            continue
        patient, code = patients[0], result.error_code
        if code == 21610:
            opt_out_phone(conn, patient.phone, source="provider_21610", message_id=claimed.id, now=now)
        elif code in _BAD_NUMBER_CODES and patient.phone_status not in BAD_PHONE_STATUSES:
            conn.execute(_SET_PHONE_STATUS, {"b_id": patient.id, "b_status": bad_phone_status(code)})
            open_task(
                conn,
                sites,
                site_id=patient.site_id,
                now=now,
                patient_id=patient.id,
                source_message_id=claimed.id,
                detail={"error_code": code},
                **BAD_PHONE_TASK,
            )


class Deliverer:
    """Sends stored pending texts through the channel's provider client, a batch at a time.

    Texts handed in while a batch is out wait for the next one (and a lone text ``linger``s a few ms for
    company), so the store sees two transactions per batch however many texts it holds.
    """

    def __init__(
        self,
        channel: Channel,
        db: DbWorker,
        clock: Clock,
        *,
        linger: float = 0.02,
        max_batch: int = 32,
        pressure: Pressure | None = None,
    ) -> None:
        self._pressure = pressure or Pressure()
        self._channel = channel
        self._db = db
        self._clock = clock
        self._writer: GroupWriter[int, None] = GroupWriter(
            self._deliver_batch, name="deliveries", max_batch=max_batch, linger=linger
        )

    async def deliver(self, message_ids: Sequence[int]) -> None:
        """Send each pending text once and record the outcomes; failures are logged, never raised."""
        await asyncio.gather(*(self._writer.submit(message_id) for message_id in message_ids))

    async def close(self) -> None:
        """Finish the batch in hand and what is queued."""
        await self._writer.close()

    async def _deliver_batch(self, message_ids: list[int]) -> list[None]:
        began = time.monotonic()
        try:
            await self._deliver_now(message_ids)
        except Exception:  # the store failed us: the texts stay pending and the sweeper retries them
            _LOGGER.exception("delivery of messages %s failed; the sweeper retries", message_ids)
        await self._pressure.give_way(time.monotonic() - began)
        return [None] * len(message_ids)

    async def _deliver_now(self, message_ids: list[int]) -> None:
        claimed, retried = await self._db.run_at(Priority.DELIVERY, lambda conn: claim(conn, message_ids))
        for message_id in retried:
            await self._reconcile(message_id)
        if not claimed:
            return
        results = await asyncio.gather(*(self._send(c) for c in claimed))
        outcomes = list(zip(claimed, results, strict=True))
        now, threaded = self._clock.now(), self._db.threaded
        # On the SQLite thread nothing runs between the two steps, so the backlog is drained in the same job;
        # elsewhere a callback stored meanwhile must see our committed sid, or we must see it (insert-then-check).
        await self._db.run_at(Priority.DELIVERY, lambda conn: record(conn, outcomes, now, drain=threaded))
        sids = [str(r.sid) for _c, r in outcomes if r.sid]
        if sids and not threaded:
            await self._db.run_at(Priority.DELIVERY, lambda conn: drain_backlog(conn, sids, now))
        for c, r in outcomes:
            _LOGGER.info("message %s: %s%s", c.id, r.status, f" ({r.error_code})" if r.error_code else "")

    async def _send(self, claimed: Claimed) -> SendResult:
        try:
            return await self._channel.provider_send(
                to=claimed.to_number, body=claimed.body, site=claimed.site, from_number=claimed.from_number
            )
        except Exception:  # a bug or an unexpected client error: the outcome is unknown, reconcile later
            _LOGGER.exception("message %s: provider call failed unexpectedly", claimed.id)
            return SendResult("unknown")

    async def _reconcile(self, message_id: int) -> None:
        try:
            await self._channel.deliver(message_id)
        except Exception:
            _LOGGER.exception("delivery of message %s failed; the sweeper retries", message_id)
