"""Delivering stored pending texts: one claim transaction, the provider calls, one record transaction.

A batch of texts (store first, claim, call the provider, record the sid or the failure, apply status
callbacks that beat the sid) costs one transaction on each side of the provider calls however many texts it
holds. A text with an earlier attempt (a crash or a timeout left its outcome unknown) is reconciled with the
provider's message list first and sent again only if the provider never got it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, select, update

from bot.clock import Clock
from bot.db.contact import on_permanent_error
from bot.db.models import Message, Site
from bot.db.unit import SiteCache, lock_for_write
from bot.db.worker import DbWorker, Priority
from bot.sms.batching import GroupWriter, Pressure
from bot.sms.channel import Channel, SendResult
from bot.sms.statuses import drain_backlog
from integrations.twilio.errors import TwilioError

__all__ = ["Claimed", "Deliverer", "MessageState", "claim", "record"]

_LOGGER = logging.getLogger(__name__)
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
    created_at: datetime | None = None
    segments: int = 1  # as stored with the text (the dispatcher's send rate counts segments)


@dataclass(frozen=True, slots=True)
class MessageState:
    """Where a text stands after a delivery attempt."""

    id: int
    status: str
    provider_sid: str | None
    error_code: int | None


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
        Message.created_at,
    )
    .where(Message.id.in_(bindparam("ids", expanding=True)))
    .order_by(Message.id)
)
_TO_CLAIM_FOR_UPDATE = _TO_CLAIM.with_for_update()
_COUNT_ATTEMPT_IF = (
    update(Message)
    .where(Message.id == bindparam("b_id"), Message.attempts == bindparam("b_seen"))
    .values(attempts=Message.attempts + 1)
)
_COUNT_ATTEMPT = (
    update(Message)
    .where(Message.id.in_(bindparam("ids", expanding=True)))
    .values(attempts=Message.attempts + 1)
)


def claim(
    conn: Connection, message_ids: Sequence[int], *, retry: bool = False
) -> tuple[list[Claimed], list[Claimed]]:
    """Count an attempt on each pending text never tried; returns (claimed, texts tried before).

    A text tried before has an unknown outcome: it is reconciled, never blindly resent. With ``retry`` its
    attempt is counted too (the caller found that the provider never got it).
    """
    lock_for_write(conn)
    query = _TO_CLAIM_FOR_UPDATE if conn.dialect.name == "postgresql" else _TO_CLAIM
    sites = SiteCache(conn)
    claimed: list[Claimed] = []
    retried: list[Claimed] = []
    seen_attempts: list[int] = []
    for mid, to, from_, body, patient_id, site_id, sid, status, attempts, created in conn.execute(
        query, {"ids": list(message_ids)}
    ):
        if sid or status not in _SENDABLE:
            continue  # already sent, or settled
        text = Claimed(mid, to, from_, body, patient_id, sites.get(site_id) if site_id else None, created)
        (retried if attempts > 0 and not retry else claimed).append(text)
        if retry:
            seen_attempts.append(attempts)
    if retry:
        # Only one caller (of any replica) may resend a text: the attempt is counted only if nobody counted
        # one since we read it.
        won = []
        for text, seen in zip(claimed, seen_attempts, strict=True):
            if conn.execute(_COUNT_ATTEMPT_IF, {"b_id": text.id, "b_seen": seen}).rowcount == 1:
                won.append(text)
        return won, retried
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
_RECORD_RETRY = (
    update(Message)
    .where(Message.id == bindparam("b_id"))
    .values(error_message=bindparam("b_error"), status_updated_at=bindparam("b_at"))
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
    retry = [(c, r) for c, r in outcomes if not r.sid and r.status == "retry"]
    failed = [(c, r) for c, r in outcomes if not r.sid and r.status != "retry"]
    if retry:  # still pending: the retry job (or the dispatcher, for outreach) tries again after a pause
        conn.execute(
            _RECORD_RETRY,
            [
                {"b_id": c.id, "b_error": f"provider_retry: {r.error or ''}"[:300], "b_at": now}
                for c, r in retry
            ],
        )
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
    for claimed, result in failed:
        assert claimed.patient_id is not None and result.error_code is not None
        on_permanent_error(conn, claimed.patient_id, result.error_code, claimed.id, now)


_STATE = select(Message.id, Message.status, Message.provider_sid, Message.error_code).where(
    Message.id == bindparam("mid")
)


def message_state(conn: Connection, message_id: int) -> MessageState | None:
    """A text's status, sid and error code, as stored."""
    row = conn.execute(_STATE, {"mid": message_id}).first()
    return MessageState(row[0], row[1], row[2], row[3]) if row is not None else None


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

    async def deliver_one(self, message_id: int) -> MessageState:
        """Send (or reconcile) one stored text now and return where it stands.

        Raises:
            TwilioError: the provider could not be asked whether an earlier attempt got through.
            LookupError: no such message.
        """
        await self._deliver_now([message_id], strict=True)
        state = await self._db.run_at(Priority.DELIVERY, lambda conn: message_state(conn, message_id))
        if state is None:
            raise LookupError(f"no message {message_id}")
        return state

    async def _deliver_now(self, message_ids: list[int], strict: bool = False) -> None:
        claimed, retried = await self._db.run_at(Priority.DELIVERY, lambda conn: claim(conn, message_ids))
        for text in retried:
            again = await self._reconcile(text, strict)
            if again is not None:
                claimed.append(again)
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

    async def _reconcile(self, text: Claimed, strict: bool) -> Claimed | None:
        """Record a text the provider already has; return it claimed again if the provider never got it."""
        try:
            found = await self._channel.find_sent(
                to=text.to_number, body=text.body, created_at=text.created_at or self._clock.now()
            )
        except TwilioError:
            _LOGGER.warning("message %s: reconciliation lookup failed; it stays unknown", text.id)
            if strict:
                raise
            return None
        now, threaded = self._clock.now(), self._db.threaded
        if found is not None:
            await self._db.run_at(
                Priority.DELIVERY, lambda conn: record(conn, [(text, found)], now, threaded)
            )
            return None
        again, _tried = await self._db.run_at(
            Priority.DELIVERY, lambda conn: claim(conn, [text.id], retry=True)
        )
        return again[0] if again else None
