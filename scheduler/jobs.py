"""APScheduler 3 wiring: the dispatcher as an interval job inside the web app, or a loop on its own."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime

from aiohttp import web
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from prometheus_client import CollectorRegistry

from bot.keys import CLOCK, SESSIONMAKER, SETTINGS
from scheduler.dispatcher import Dispatcher, DispatchSummary
from scheduler.sender import OutreachSender

__all__ = [
    "DISPATCHER",
    "DISPATCH_SCHEDULER",
    "REGISTRY",
    "SenderFactory",
    "default_owner",
    "dispatch_tick",
    "run_forever",
    "setup_dispatcher",
]

_LOGGER = logging.getLogger(__name__)

DISPATCHER = web.AppKey("dispatcher", Dispatcher)
DISPATCH_SCHEDULER = web.AppKey("dispatch_scheduler", AsyncIOScheduler)
# The registry the dispatcher's metrics live in: serve it with scheduler.metrics.metrics_routes(app[REGISTRY]).
REGISTRY = web.AppKey("scheduler_registry", CollectorRegistry)
SenderFactory = Callable[[web.Application], AbstractAsyncContextManager[OutreachSender]]
JOB_ID = "outreach-dispatch"


def default_owner(settings_name: str = "") -> str:
    """A lease owner unique to this process: ``instance_name`` (or host:pid) plus a random suffix."""
    base = settings_name or f"{socket.gethostname()}:{os.getpid()}"
    return f"{base}:{secrets.token_hex(3)}"[:100]


def _default_sender(app: web.Application) -> AbstractAsyncContextManager[OutreachSender]:
    from bot.outreach import sender_context  # bot/ builds the real sender; imported only when serving

    return sender_context(app[SETTINGS], app[SESSIONMAKER], app[CLOCK])


async def dispatch_tick(dispatcher: Dispatcher) -> DispatchSummary | None:
    """One scheduled run; errors are logged, never raised into APScheduler."""
    try:
        return await dispatcher.run_once()
    except Exception:
        _LOGGER.exception("dispatch run failed; the next tick retries")
        return None


def setup_dispatcher(
    app: web.Application,
    *,
    sender_factory: SenderFactory | None = None,
    registry: CollectorRegistry | None = None,
) -> None:
    """Run the dispatcher every ``dispatch_interval_seconds`` while the app runs (if ``run_dispatcher``).

    Adds a cleanup context (append it after the database and HTTP contexts) that opens the sender, builds the
    Dispatcher (``app[DISPATCHER]``), starts an AsyncIOScheduler with a MemoryJobStore before ``yield`` and
    shuts it down after, letting an in-flight run finish its rows. The metrics registry (``registry``, or a
    new one) is stored as ``app[REGISTRY]`` for the /metrics route.
    """
    registry = registry if registry is not None else CollectorRegistry()
    app[REGISTRY] = registry

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        if not settings.run_dispatcher:
            yield
            return
        async with (sender_factory or _default_sender)(app) as sender:
            dispatcher = Dispatcher(
                app[SESSIONMAKER],
                sender,
                app[CLOCK],
                owner=default_owner(settings.instance_name),
                batch_size=settings.dispatch_batch_size,
                lease_seconds=settings.dispatch_lease_seconds,
                registry=registry,
            )
            scheduler = AsyncIOScheduler(timezone=UTC, jobstores={"default": MemoryJobStore()})
            scheduler.add_job(
                dispatch_tick,
                "interval",
                args=[dispatcher],
                id=JOB_ID,
                replace_existing=True,
                seconds=settings.dispatch_interval_seconds,
                max_instances=1,
                coalesce=True,
                next_run_time=datetime.now(UTC),
            )
            app[DISPATCHER], app[DISPATCH_SCHEDULER] = dispatcher, scheduler
            scheduler.start()
            try:
                yield
            finally:
                scheduler.shutdown(wait=False)
                await dispatcher.drain()

    app.cleanup_ctx.append(ctx)


async def run_forever(dispatcher: Dispatcher, interval: float, stop: asyncio.Event) -> None:
    """`midbot dispatch` without the web server: run, wait ``interval`` (or until ``stop``), repeat."""
    while not stop.is_set():
        await dispatch_tick(dispatcher)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
    await dispatcher.drain()
