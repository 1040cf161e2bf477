"""Synchronous units of work on the store: in one thread of their own on SQLite, via ``run_sync`` elsewhere.

The hot path (inbound storage, the inbox, status callbacks, reply bookkeeping) runs many small statements.
Through async SQLAlchemy on aiosqlite every statement hops to a driver thread and back (about 0.4 ms of CPU
each); written as one synchronous function on a ``Connection``, a unit of work pays that hop once:

* SQLite file: the function runs in a dedicated thread on its own pysqlite connection, jobs in priority
  order (answers to Twilio first), so hot-path writers never wait on each other in SQLite's busy handler.
  pysqlite begins the transaction at the first write, so a job's reads take no lock.
* PostgreSQL (or SQLite ``:memory:``): the same function runs inside ``AsyncConnection.run_sync`` in its own
  transaction; jobs run concurrently, as the database allows.

Either way a job is one transaction: committed when the function returns, rolled back when it raises.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db.session import make_sync_sqlite_engine

__all__ = ["DbWorker", "Priority"]

_LOGGER = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")
_Job = tuple[Callable[[Connection], Any], "asyncio.Future[Any]", asyncio.AbstractEventLoop]


class Priority:
    """Job order on the SQLite thread: a lower number runs first (FIFO within a level)."""

    ANSWER = 0  # a webhook waits for it (inbound storage, status callbacks)
    DELIVERY = 1  # bookkeeping around a provider call
    INBOX = 2  # processing stored messages
    LAST = 9  # shutdown


_SETTLE_EVERY = 8


def _settle_all(done: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, result, error in done:
        _settle(future, result, error)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class DbWorker:
    """Runs ``fn(conn, *args)`` as one transaction and returns its result."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        database = engine.url.database or ""
        self._sync: Engine | None = None
        if engine.dialect.name == "sqlite" and database and database != ":memory:":
            self._sync = make_sync_sqlite_engine(f"sqlite:///{database}")
        self._jobs: queue.PriorityQueue[tuple[int, int, _Job | None]] = queue.PriorityQueue()
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Future[None] | None = None

    @property
    def dialect(self) -> str:
        """The database dialect name (``sqlite`` or ``postgresql``)."""
        return self._engine.dialect.name

    @property
    def threaded(self) -> bool:
        """True when jobs run one at a time on the SQLite thread (so they never overlap)."""
        return self._sync is not None

    async def run(
        self,
        fn: Callable[Concatenate[Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run ``fn(conn, *args, **kwargs)`` in a transaction of its own at the INBOX priority."""
        return await self.run_at(Priority.INBOX, lambda conn: fn(conn, *args, **kwargs))

    async def run_at(self, priority: int, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(conn)`` in a transaction of its own; on SQLite, before jobs of a higher number."""
        if self._sync is None:
            async with self._engine.begin() as conn:
                return await conn.run_sync(fn)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._start(loop)
        self._jobs.put((priority, next(self._seq), (fn, future, loop)))
        return await future

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._thread is None:
            self._stopped = loop.create_future()
            self._thread = threading.Thread(target=self._serve, args=(loop,), name="midbot-db", daemon=True)
            self._thread.start()

    def _serve(self, loop: asyncio.AbstractEventLoop) -> None:
        assert self._sync is not None
        conn = self._sync.connect()
        try:
            done: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
            done_loop = loop
            while True:
                priority, _seq, job = self._jobs.get()
                if job is None:
                    if done:
                        done_loop.call_soon_threadsafe(_settle_all, done)
                    break
                fn, future, job_loop = job
                if done and job_loop is not done_loop:
                    done_loop.call_soon_threadsafe(_settle_all, done)
                    done = []
                result, error = self._one(conn, fn)
                done.append((future, result, error))
                done_loop = job_loop
                # Waking the event loop costs a syscall and a GIL hand-over: while more jobs are queued, settle
                # a few finished ones at once (each was committed before it is settled); a webhook's answer at once.
                if priority == Priority.ANSWER or len(done) >= _SETTLE_EVERY or self._jobs.empty():
                    job_loop.call_soon_threadsafe(_settle_all, done)
                    done = []
        finally:
            conn.close()
            self._sync.dispose()
            if self._stopped is not None:
                loop.call_soon_threadsafe(_settle, self._stopped, None, None)

    @staticmethod
    def _one(conn: Connection, fn: Callable[[Connection], Any]) -> tuple[Any, BaseException | None]:
        try:
            result = fn(conn)
            conn.commit()
        except Exception as exc:
            try:
                conn.rollback()
            except Exception:  # the connection is gone; SQLAlchemy reconnects on the next job
                _LOGGER.exception("rollback on the database thread failed")
            return None, exc
        return result, None

    async def close(self) -> None:
        """Finish the queued jobs and stop the thread (SQLite); nothing to do elsewhere."""
        if self._thread is None or self._stopped is None:
            return
        self._jobs.put((Priority.LAST, next(self._seq), None))
        stopped, self._thread = self._stopped, None
        await stopped
