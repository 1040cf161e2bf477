"""The periodic work of a midbot process: one APScheduler, every job awaited, each also runnable once.

``midbot serve`` runs every job of ``JOBS`` on its interval; ``midbot tick`` runs them once, as of a given
time, and prints what each did. A job is an ``async def`` handed to APScheduler as a coroutine function (a
``functools.partial`` of one), so the scheduler's event loop awaits it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.db.contact import expire_unsent_replies
from bot.db.models import Message
from bot.settings import Settings
from bot.sms.dialogs import run_timeouts
from bot.sms.service import Messaging, messaging
from bot.staff.escalation import escalate_overdue
from integrations.dispensary.computed import compute_signals
from integrations.dispensary.sinks import configured_sinks, push_configured_sinks
from scheduler.dispatcher import Dispatcher
from scheduler.jobs import default_owner, dispatch_tick

__all__ = ["JOBS", "JobContext", "job_context", "make_dispatcher", "run_job", "scheduler"]

_LOGGER = logging.getLogger(__name__)
Counts = dict[str, Any]


@dataclass(frozen=True, slots=True)
class JobContext:
    """What the periodic jobs work with: the store, the SMS engine, the HTTP client, settings and clock."""

    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    sms: Messaging
    http: aiohttp.ClientSession
    clock: Clock


async def _dialog_timeouts(ctx: JobContext, now: datetime) -> Counts:
    outgoing = await ctx.sms.db.run(run_timeouts, now)
    if outgoing:
        await ctx.sms.deliverer.deliver(outgoing)
    return {"texts": len(outgoing)}


async def _task_escalation(ctx: JobContext, now: datetime) -> Counts:
    escalated = await escalate_overdue(
        ctx.sessionmaker, ctx.http, now, default_webhook_url=ctx.settings.oncall_webhook_url
    )
    return {"escalated": escalated}


async def _signals_compute(ctx: JobContext, now: datetime) -> Counts:
    async with ctx.sessionmaker.begin() as session:
        added = await compute_signals(session, now=now)
    return {"recorded": added}


async def _signals_push(ctx: JobContext, now: datetime) -> Counts:
    if not configured_sinks(ctx.settings):
        return {"pushed": 0, "sinks": 0}
    reports = await push_configured_sinks(ctx.sessionmaker, ctx.http, ctx.settings)
    return {"pushed": sum(r.sent for r in reports), "sinks": len(reports)}


async def _inbox_sweep(ctx: JobContext, now: datetime) -> Counts:
    return {"processed": await ctx.sms.inbox.sweep()}


async def _delivery_retry(ctx: JobContext, now: datetime) -> Counts:
    """Replies and other texts left pending (a crash, a provider outage): sent again after a growing pause,
    each reconciled with the provider first; past the reply deadline, expired with a task for a person.
    Outreach texts are the dispatcher's (their rows carry the deadline and the retry state)."""
    deadline = now - timedelta(minutes=ctx.settings.reply_deadline_minutes)
    async with ctx.sessionmaker() as session:
        rows = (
            await session.execute(
                select(Message.id, Message.created_at, Message.status_updated_at, Message.attempts)
                .where(
                    Message.direction == "out",
                    Message.kind != "outreach",
                    Message.status.in_(("pending", "unknown")),
                    Message.created_at <= now - timedelta(seconds=30),
                )
                .order_by(Message.id)
                .limit(500)
            )
        ).all()
    late = [r.id for r in rows if r.created_at <= deadline]
    due = [r.id for r in rows if r.created_at > deadline and _retry_due(r.status_updated_at, r.attempts, now)]
    expired = await ctx.sms.db.run(expire_unsent_replies, late, now) if late else 0
    if due:
        await ctx.sms.deliverer.deliver(due)
    return {"retried": len(due), "expired": expired}


def _retry_due(last: datetime | None, attempts: int, now: datetime) -> bool:
    """Wait 30 s after the first failed try, doubling up to 10 minutes."""
    if last is None or attempts <= 0:
        return True
    return now - last >= timedelta(seconds=min(30 * 2 ** (attempts - 1), 600))


Job = Callable[[JobContext, datetime], Awaitable[Counts]]
# Job name -> (the job, its interval in seconds).
JOBS: dict[str, tuple[Job, float]] = {
    "dialog-timeouts": (_dialog_timeouts, 30.0),
    "task-escalation": (_task_escalation, 60.0),
    "signals-compute": (_signals_compute, 3600.0),
    "signals-push": (_signals_push, 30.0),
    "inbox-sweep": (_inbox_sweep, 10.0),
    "delivery-retry": (_delivery_retry, 30.0),
}


async def run_job(ctx: JobContext, name: str, now: datetime | None = None) -> Counts:
    """Run one job once (as of ``now``, else the clock); returns ``{"job": name, ...counts}``."""
    job, _interval = JOBS[name]
    counts = await job(ctx, now or ctx.clock.now())
    return {"job": name, **counts}


async def _scheduled(ctx: JobContext, name: str) -> None:
    """One scheduled run: errors are logged, never raised into the scheduler (the next run tries again)."""
    try:
        counts = await run_job(ctx, name)
    except Exception:
        _LOGGER.exception("job %s failed; the next run retries", name)
        return
    _LOGGER.debug("job %s: %s", name, counts)


def make_dispatcher(ctx: JobContext, registry: CollectorRegistry | None = None) -> Dispatcher:
    """The outreach dispatcher on this process's database worker, sending through its SMS engine."""
    settings = ctx.settings
    return Dispatcher(
        ctx.sessionmaker,
        ctx.sms.outreach,
        ctx.clock,
        owner=default_owner(settings.instance_name),
        batch_size=settings.dispatch_batch_size,
        concurrency=settings.dispatch_concurrency,
        lease_seconds=settings.dispatch_lease_seconds,
        registry=registry,
        db=ctx.sms.db,
    )


@asynccontextmanager
async def scheduler(ctx: JobContext, dispatcher: Dispatcher | None) -> AsyncIterator[AsyncIOScheduler]:
    """The process's one scheduler, running every job (and the dispatcher) until the generator is closed."""
    sched = AsyncIOScheduler(timezone=UTC, jobstores={"default": MemoryJobStore()})
    fixed = ctx.settings.job_interval_seconds
    for name, (_job, interval) in JOBS.items():
        sched.add_job(
            functools.partial(_scheduled, ctx, name),
            "interval",
            seconds=fixed or interval,
            id=name,
            max_instances=1,
            coalesce=True,
            replace_existing=True,
        )
    if dispatcher is not None:
        sched.add_job(
            functools.partial(dispatch_tick, dispatcher),
            "interval",
            seconds=ctx.settings.dispatch_interval_seconds,
            id="outreach-dispatch",
            max_instances=1,
            coalesce=True,
            replace_existing=True,
            next_run_time=datetime.now(UTC),
        )
    sched.start()
    try:
        yield sched
    finally:
        sched.shutdown(wait=False)
        if dispatcher is not None:
            await dispatcher.drain()


@asynccontextmanager
async def job_context(
    settings: Settings, engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock
) -> AsyncIterator[JobContext]:
    """The jobs' context for a command run outside the web app (`midbot dispatch`, `midbot tick`)."""
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
        messaging(settings, engine, sessionmaker, clock, http) as sms,
    ):
        yield JobContext(settings, sessionmaker, sms, http, clock)
