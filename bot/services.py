"""Wiring the SMS channel, the inbox and the background jobs into the app."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC

import aiohttp
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import dialogs, webhooks
from bot.batching import Pressure
from bot.channel import Channel
from bot.clock import Clock
from bot.dbthread import DbWorker
from bot.delivery import Deliverer
from bot.inbound_store import InboundStore
from bot.inbox import Inbox
from bot.keys import (
    BACKGROUND,
    CHANNEL,
    CLOCK,
    DB_WORKER,
    ENGINE,
    INBOUND_STORE,
    INBOX,
    JOBS,
    SCHEDULER,
    SESSIONMAKER,
    SETTINGS,
    STATUS_WRITER,
)
from bot.outreach import ChannelOutreachSender
from bot.settings import Settings
from bot.statuses import StatusWriter
from integrations.twilio.client import TwilioClient

__all__ = ["Background", "add_job", "make_channel", "setup_dispatch", "setup_jobs", "setup_messaging"]

_LOGGER = logging.getLogger(__name__)
Job = Callable[[], Awaitable[object]]


class Background:
    """Tasks started after a response (reply delivery); awaited on shutdown so nothing is cut off."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Awaitable[None]) -> None:
        """Run ``coro`` in the background, keeping a reference until it ends."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float = 20.0) -> None:
        """Wait for running tasks (bounded)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)

    def __len__(self) -> int:
        return len(self._tasks)


@asynccontextmanager
async def make_channel(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock
) -> AsyncIterator[Channel]:
    """A Channel with its own Twilio client and HTTP session (closed on exit)."""
    async with aiohttp.ClientSession() as http:
        client = TwilioClient(
            session=http,
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token.get_secret_value(),
            base_url=settings.twilio_api_base_url,
            timeout=settings.twilio_timeout_seconds,
            max_retries=settings.twilio_max_retries,
        )
        try:
            yield Channel(settings=settings, sessionmaker=sessionmaker, clock=clock, client=client)
        finally:
            await client.close()


def _messaging_ctx(app: web.Application) -> AsyncIterator[None]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        background = Background()
        app[BACKGROUND] = background
        _tune_process_once()
        # The hot path (inbound storage, the inbox, reply bookkeeping, status callbacks) shares one DbWorker:
        # on SQLite a thread of its own, so those writers never wait on each other.
        db = DbWorker(app[ENGINE])
        app[DB_WORKER] = db
        async with make_channel(settings, app[SESSIONMAKER], app[CLOCK]) as channel:
            app[CHANNEL] = channel
            pressure = Pressure()  # webhook answers first: background work gives way during bursts
            deliverer = Deliverer(channel, db, app[CLOCK], pressure=pressure)
            inbox = Inbox(
                sessionmaker=app[SESSIONMAKER],
                channel=channel,
                clock=app[CLOCK],
                spawn=background.spawn,
                is_sqlite=settings.is_sqlite,
                provider_confirms_keywords=settings.twilio_advanced_opt_out,
                db=db,
                deliverer=deliverer,
                pressure=pressure,
            )
            app[INBOX] = inbox
            store = InboundStore(db, pressure)
            app[INBOUND_STORE] = store
            statuses = StatusWriter(db)
            app[STATUS_WRITER] = statuses
            add_job(app, "inbox-sweep", 10, inbox.sweep)
            add_job(app, "dialog-timeouts", 30, lambda: _timeouts(app))
            try:
                yield
            finally:
                await store.close()
                await inbox.close()
                await background.drain()
                await deliverer.close()
                await statuses.close()
                await db.close()

    return ctx(app)


_PROCESS_TUNED = False
_SWITCH_INTERVAL = 0.001  # seconds; CPython's default is 0.005


def _tune_process_once() -> None:
    """Ready the process for serving webhooks (once per process).

    * Load the classifier's lexicons now: about a second the first text would otherwise wait for.
    * Move the startup heap out of the garbage collector's way: with the lexicons, the ORM and the app in
      memory (about 100,000 objects), every full collection scanned them all and stalled the process for
      100-500 ms every few seconds under load. Frozen objects are never scanned (nor freed: the heap is
      collected once first).
    * Hand the GIL over more often: the database thread (bot.dbthread) runs Python between its SQLite calls,
      and with the default 5 ms slices a webhook answer waited for several of them.
    """
    global _PROCESS_TUNED
    if _PROCESS_TUNED:
        return
    _PROCESS_TUNED = True
    from conversations.classify import classify

    classify("warm up")
    gc.collect()
    gc.freeze()
    sys.setswitchinterval(min(sys.getswitchinterval(), _SWITCH_INTERVAL))


async def _timeouts(app: web.Application) -> None:
    async with app[SESSIONMAKER].begin() as session:
        outgoing = await dialogs.run_timeouts(session, app[CHANNEL], app[CLOCK].now())
    for message_id in outgoing:
        app[BACKGROUND].spawn(_deliver_quietly(app[CHANNEL], message_id))


async def _deliver_quietly(channel: Channel, message_id: int) -> None:
    try:
        await channel.deliver(message_id)
    except Exception:
        _LOGGER.exception("delivery of message %s failed; the sweeper retries", message_id)


def add_job(app: web.Application, job_id: str, seconds: float, func: Job) -> None:
    """Register a periodic job; it runs only when the app runs background work (settings.run_dispatcher)."""
    app[JOBS].append((job_id, seconds, func))


async def _scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
    scheduler = AsyncIOScheduler(timezone=UTC)
    app[SCHEDULER] = scheduler
    if app[SETTINGS].run_dispatcher:
        for job_id, seconds, func in app[JOBS]:
            scheduler.add_job(
                func,
                "interval",
                seconds=seconds,
                id=job_id,
                max_instances=1,
                coalesce=True,
                replace_existing=True,
            )
        scheduler.start()
    yield
    if scheduler.running:
        scheduler.shutdown(wait=False)


def setup_messaging(app: web.Application) -> None:
    """Twilio webhooks, the channel and the inbox."""
    app.cleanup_ctx.append(_messaging_ctx)
    app.add_routes(webhooks.routes)


@asynccontextmanager
async def _app_sender(app: web.Application) -> AsyncIterator[ChannelOutreachSender]:
    yield ChannelOutreachSender(app[SESSIONMAKER], app[CHANNEL], app[CLOCK], db=app[DB_WORKER])


def setup_dispatch(app: web.Application) -> None:
    """The outreach dispatcher, sending through this app's channel."""
    from scheduler.jobs import REGISTRY, setup_dispatcher
    from scheduler.metrics import metrics_routes, scheduler_metrics

    setup_dispatcher(app, sender_factory=_app_sender)
    scheduler_metrics(app[REGISTRY])  # the series exist (at zero) before the first dispatch
    app.add_routes(metrics_routes(app[REGISTRY]))


def setup_jobs(app: web.Application) -> None:
    """The APScheduler that runs every registered periodic job; append it last."""
    app.cleanup_ctx.append(_scheduler_ctx)
