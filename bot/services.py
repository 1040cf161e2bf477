"""Wiring the SMS channel, the inbox and the background jobs into the app."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import dialogs, webhooks
from bot.channel import Channel
from bot.clock import Clock
from bot.inbound_store import InboundStore
from bot.inbox import Inbox
from bot.keys import (
    BACKGROUND,
    CHANNEL,
    CLOCK,
    ENGINE,
    INBOUND_STORE,
    INBOX,
    JOBS,
    SCHEDULER,
    SESSIONMAKER,
    SETTINGS,
)
from bot.outreach import ChannelOutreachSender
from bot.settings import Settings
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
    """A Channel with its own Twilio client (closed on exit)."""
    client = TwilioClient(
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
        async with make_channel(settings, app[SESSIONMAKER], app[CLOCK]) as channel:
            app[CHANNEL] = channel
            inbox = Inbox(
                sessionmaker=app[SESSIONMAKER],
                channel=channel,
                clock=app[CLOCK],
                spawn=background.spawn,
                is_sqlite=settings.is_sqlite,
                provider_confirms_keywords=settings.twilio_advanced_opt_out,
            )
            app[INBOX] = inbox
            store = InboundStore(app[ENGINE])
            app[INBOUND_STORE] = store
            add_job(app, "inbox-sweep", 10, inbox.sweep)
            add_job(app, "dialog-timeouts", 30, lambda: _timeouts(app))
            yield
            await store.close()
            await inbox.idle()
            await background.drain()

    return ctx(app)


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
    yield ChannelOutreachSender(app[SESSIONMAKER], app[CHANNEL], app[CLOCK])


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
