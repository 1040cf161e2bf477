"""Group commit (many callers, one writer, one transaction per batch) and giving way to webhook answers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Generic, TypeVar

__all__ = ["GroupWriter", "Pressure"]

_LOGGER = logging.getLogger(__name__)
I = TypeVar("I")  # noqa: E741 - the item type
R = TypeVar("R")


class GroupWriter(Generic[I, R]):
    """Hands everything waiting to ``write`` as one batch; each ``submit`` returns its item's result.

    ``write(items)`` must return one result per item, in order, once the batch is durable. While it runs,
    new items queue up for the next batch, so under load the store sees one commit per batch, not per item.
    With ``linger``, a lone item waits that long for others (for work nobody is waiting on).
    If ``write`` raises for a batch, nothing of it was committed and each item is written again alone, so
    one bad item fails only its own caller, never the neighbours it was batched with.
    """

    def __init__(
        self,
        write: Callable[[list[I]], Awaitable[list[R]]],
        *,
        name: str,
        max_batch: int = 200,
        linger: float = 0.0,
    ) -> None:
        self._write = write
        self._name = name
        self._max_batch = max_batch
        self._linger = linger
        self._queue: asyncio.Queue[tuple[I, asyncio.Future[R]]] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._busy = False

    async def submit(self, item: I) -> R:
        """Queue ``item`` for the next batch and wait until that batch is written."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write_loop())
        return await future

    async def close(self) -> None:
        """Write what is queued, then stop the writer."""
        while (
            self._writer is not None and not self._writer.done() and (self._busy or not self._queue.empty())
        ):
            await asyncio.sleep(0.005)
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()

    async def _write_loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            if self._linger and self._queue.qsize() < self._max_batch - 1:
                await asyncio.sleep(self._linger)  # background work: a few ms for company, fewer commits
            while not self._queue.empty() and len(batch) < self._max_batch:
                batch.append(self._queue.get_nowait())
            self._busy = True
            try:
                await self._write_batch(batch)
            finally:
                self._busy = False

    async def _write_batch(self, batch: list[tuple[I, asyncio.Future[R]]]) -> None:
        try:
            results = await self._write([item for item, _ in batch])
        except Exception as exc:  # nothing of the batch was committed
            if len(batch) == 1:
                _LOGGER.warning("%s: an item could not be written (%s)", self._name, type(exc).__name__)
                if not batch[0][1].done():
                    batch[0][1].set_exception(exc)
                return
            _LOGGER.warning(
                "%s: a batch of %d failed (%s); writing its items one by one",
                self._name,
                len(batch),
                type(exc).__name__,
            )
            for one in batch:
                await self._write_batch([one])
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)


class Pressure:
    """How hard webhook answers are pressed; background work gives way to them.

    Background work (inbox batches, delivery batches) reports each unit's duration to ``give_way``, which
    pauses it so that, across all its units, it keeps at most a share of the time:

    * ``busy_share`` while webhooks arrive (one began in the last ``recent`` seconds): enough to keep up
      with a steady stream, with room left for the answers;
    * ``burst_share`` while answers are crowded (``crowd`` in flight) or for ``hold`` seconds after one took
      longer than ``slow``: stored messages wait longer for their reply, Twilio's requests are answered fast;
    * no limit when no webhook arrives.

    Background work never stops; it only slows, and catches up when the burst is over.
    """

    def __init__(
        self,
        *,
        crowd: int = 8,
        slow: float = 0.02,
        hold: float = 0.5,
        recent: float = 0.1,
        busy_share: float = 0.6,
        burst_share: float = 0.25,
    ) -> None:
        self._crowd = crowd
        self._slow = slow
        self._hold = hold
        self._recent = recent
        self._busy_factor = (1.0 - busy_share) / busy_share
        self._burst_factor = (1.0 - burst_share) / burst_share
        self._in_flight = 0
        self._last_began = -1e9
        self._slow_until = 0.0
        self._resume_at = 0.0

    @contextlib.contextmanager
    def answering(self) -> Iterator[None]:
        """Count one answer in flight (and note when it was slow)."""
        self._in_flight += 1
        began = self._last_began = time.monotonic()
        try:
            yield
        finally:
            self._in_flight -= 1
            ended = time.monotonic()
            if ended - began > self._slow:
                self._slow_until = max(self._slow_until, ended + self._hold)

    @property
    def pressed(self) -> bool:
        """True during a burst of answers, or shortly after a slow one."""
        return self._in_flight >= self._crowd or time.monotonic() < self._slow_until

    @property
    def active(self) -> bool:
        """True while webhooks arrive (or are pressed): background work should take small bites."""
        return self.pressed or time.monotonic() - self._last_began < self._recent

    async def give_way(self, took: float) -> None:
        """After a unit of background work that took ``took`` seconds: pause as the answers need."""
        if self.pressed:
            factor = self._burst_factor
        elif self.active:
            factor = self._busy_factor
        else:
            return
        now = time.monotonic()
        self._resume_at = max(self._resume_at, now) + took * factor
        await asyncio.sleep(min(self._resume_at - now, 1.0))
