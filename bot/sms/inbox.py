"""The inbox: what happens to a stored inbound message. Consent first, then the dialog, then people.

Every inbound message ends in a reply, a dialog step or an open task (invariant 1). Messages from one
number are handled one at a time in arrival order (across replicas too, on PostgreSQL); replies are delivered
after the unit of work commits. When a backlog forms, emergencies and consent keywords go first.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.db.models import Message
from bot.db.worker import DbWorker
from bot.sms.batching import Pressure
from bot.sms.delivery import Deliverer
from bot.sms.handling import fallback, process_batch
from conversations.classify import red_flag
from conversations.keywords import consent_action

__all__ = ["Inbox"]

_LOGGER = logging.getLogger(__name__)
_Entry = tuple[int, str, "asyncio.Future[None] | None"]  # message id, sender number, who waits for it


class Inbox:
    """Processes inbound messages; one instance per app (or per CLI run).

    Stored messages are taken in batches (arrival order, at most one message per number in a batch, none of
    a number already in hand); a batch is one synchronous unit of work on the database worker
    (``bot.sms.handling``), and a batch that fails is retried one text at a time, so one bad text never sinks
    its neighbours.
    """

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        db: DbWorker,
        deliverer: Deliverer,
        clock: Clock,
        spawn: Callable[[Awaitable[None]], None],
        provider_confirms_keywords: bool = True,
        workers: int = 2,
        batch_size: int = 16,
        linger: float = 0.02,
        pressure: Pressure | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._clock = clock
        self._spawn = spawn
        self._provider_confirms = provider_confirms_keywords
        self._db = db
        self._deliverer = deliverer
        self._batch_size = batch_size
        self._linger = linger
        self._pressure = pressure or Pressure()
        self._busy: set[str] = set()  # numbers with a message in hand
        self._queued: set[int] = set()  # messages waiting or in hand
        self._closing = False
        self._pending: deque[_Entry] = deque()
        # Urgent texts (and their numbers' earlier ones), ahead of the rest.
        self._first: deque[_Entry] = deque()
        self._unfinished = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._workers: list[asyncio.Task[None]] = []
        self._worker_count = workers

    def submit(self, message_id: int, number: str | None = None, body: str | None = None) -> None:
        """Queue a stored message for processing (a few workers; one number at a time, in order).

        With a backlog, a ``body`` that is an emergency or a consent keyword goes to the front (after its own
        number's earlier texts, which go with it).
        """
        urgent = body is not None and self._backlog() and _urgent(body)
        self._enqueue(message_id, number or f"message:{message_id}", None, urgent=urgent)

    def _backlog(self) -> bool:
        return len(self._pending) + len(self._first) >= self._batch_size

    async def handle(self, message_id: int, number: str | None = None) -> None:
        """Process one stored inbound message now, after earlier ones of its number (idempotent)."""
        if number is None:
            async with self._sessionmaker() as session:
                number = await session.scalar(select(Message.from_number).where(Message.id == message_id))
            if number is None:
                return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._enqueue(message_id, number, done)
        await done

    async def idle(self) -> None:
        """Wait until every submitted message has been processed."""
        await self._idle.wait()

    async def close(self, timeout: float = 20.0) -> None:
        """Process what is queued for up to ``timeout`` seconds, then stop taking more (on shutdown).

        What is left stays stored and unprocessed; the sweeper picks it up after a restart.
        """
        try:
            await asyncio.wait_for(self.idle(), timeout)
        except TimeoutError:
            self._closing = True
            left = len(self._pending) + len(self._first)
            _LOGGER.warning("inbox closing with %d messages left for the sweeper", left)
            while self._workers and not all(w.done() for w in self._workers):
                await asyncio.sleep(0.01)
            for _message_id, _number, done in (*self._first, *self._pending):
                if done is not None and not done.done():
                    done.cancel()  # whoever waits for it is shutting down too

    def _enqueue(
        self, message_id: int, number: str, done: asyncio.Future[None] | None, *, urgent: bool = False
    ) -> None:
        self._queued.add(message_id)
        if urgent:
            earlier = [entry for entry in self._pending if entry[1] == number]
            for entry in earlier:
                self._pending.remove(entry)
            self._first.extend(earlier)
            self._first.append((message_id, number, done))
        else:
            self._pending.append((message_id, number, done))
        self._unfinished += 1
        self._idle.clear()
        self._workers = [w for w in self._workers if not w.done()]
        if len(self._workers) < self._worker_count:
            self._workers.append(asyncio.ensure_future(self._work()))

    async def _work(self) -> None:
        if self._linger and not self._backlog():
            await asyncio.sleep(self._linger)  # a few ms for company: one unit of work for several texts
        loop = asyncio.get_running_loop()
        while batch := self._take_batch():
            began = loop.time()
            held: set[int] = set()
            try:
                held = await self._run_batch([message_id for message_id, _number, _done in batch])
            except Exception:  # _run_batch already routes what it cannot handle to a person
                _LOGGER.exception("inbound batch %s failed", [message_id for message_id, _n, _d in batch])
            finally:
                for entry in reversed(batch):
                    message_id, number, done = entry
                    self._busy.discard(number)
                    if message_id in held:  # an older text of its number went first: this one is next
                        self._first.appendleft(entry)
                        continue
                    self._queued.discard(message_id)
                    if done is not None and not done.done():
                        done.set_result(None)
                    self._unfinished -= 1
                if self._unfinished == 0:
                    self._idle.set()
            await self._pressure.give_way(loop.time() - began)
            await asyncio.sleep(0)  # let webhook requests in between batches

    def _take_batch(self) -> list[_Entry]:
        """The next messages in arrival order whose numbers are free; their numbers become busy."""
        if self._closing:
            return []
        batch: list[_Entry] = []
        blocked: set[str] = set()
        # While webhooks arrive, small batches: an answer's insert waits for the unit of work in hand.
        size = max(1, self._batch_size // 4) if self._pressure.active else self._batch_size
        for entry in (*self._first, *self._pending):
            number = entry[1]
            if number in blocked:
                continue
            blocked.add(number)  # later messages of this number wait for this one
            if number in self._busy:
                continue
            batch.append(entry)
            if len(batch) >= size:
                break
        for entry in batch:
            if entry in self._first:
                self._first.remove(entry)
            else:
                self._pending.remove(entry)
            self._busy.add(entry[1])
        return batch

    async def _run_batch(self, message_ids: list[int]) -> set[int]:
        """The batch in one unit of work; if that fails, each text in one of its own, in order.

        Returns the texts held back because an older text of their number (stored by another replica) went
        first in their place.
        """
        try:
            return await self._process(message_ids)
        except Exception as exc:
            _LOGGER.warning(
                "inbound batch %s failed (%s); handling its texts one by one", message_ids, type(exc).__name__
            )
        held: set[int] = set()
        for message_id in message_ids:
            try:
                held |= await self._process([message_id])
            except Exception as exc:
                # Stored messages are never dropped: if understanding it failed, a person gets it. The log
                # names the message id and the error's type only (an error's text may quote the message).
                _LOGGER.error(
                    "inbound %s could not be processed (%s); routed to a person",
                    message_id,
                    type(exc).__name__,
                )
                _LOGGER.debug("inbound %s failure", message_id, exc_info=True)
                outgoing = await self._db.run(fallback, message_id, self._clock.now())
                if outgoing:
                    self._spawn(self._deliverer.deliver(outgoing))
        return held

    async def _process(self, message_ids: list[int]) -> set[int]:
        now, confirms = self._clock.now(), self._provider_confirms
        result = await self._db.run(
            lambda conn: process_batch(conn, message_ids, now, provider_confirms_keywords=confirms)
        )
        if result.outgoing:
            self._spawn(self._deliverer.deliver(result.outgoing))
        return set(result.held)

    async def sweep(self, older_than: timedelta = timedelta(seconds=30)) -> int:
        """Process inbound messages a crash left unprocessed; returns how many were found."""
        cutoff = self._clock.now() - older_than
        async with self._sessionmaker() as session:
            inbound = (
                await session.scalars(
                    select(Message.id)
                    .where(
                        Message.direction == "in",
                        Message.processed_at.is_(None),
                        Message.created_at <= cutoff,
                    )
                    .order_by(Message.id)
                    .limit(200)
                )
            ).all()
        for message_id in inbound:
            if message_id not in self._queued:  # one the workers have not reached yet is left to them
                await self.handle(message_id)
        return len(inbound)


def _urgent(body: str) -> bool:
    """A red flag or a consent keyword: handled ahead of a backlog.

    The emergency rules alone (``red_flag``, ~20 µs), not the full classifier: this runs on every webhook while
    a backlog lasts (the full ``classify`` here was a fifth of the event loop's time under the webhook bench),
    and the text is classified in full when its turn comes, so a red flag only the model sees is still
    handled as one, only without jumping the queue."""
    return consent_action(body) is not None or red_flag(body)
