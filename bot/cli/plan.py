"""`midbot plan`, `midbot outreach list`, `midbot dispatch`: plan outreach, see why it went (or not), send it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.cli.common import CliError, add_now, open_store, parse_now, settings_from_env
from bot.clock import Clock, FixedClock, SystemClock, utcnow
from bot.db.models import Outreach
from bot.db.worker import DbWorker
from bot.logs import configure_logging
from bot.settings import Settings
from scheduler.dispatcher import Dispatcher, DispatchSummary
from scheduler.jobs import run_forever
from scheduler.planner import replan
from scheduler.sender import SendOutcome

ORDER = 70
_LOGGER = logging.getLogger(__name__)
STATES = ("planned", "claimed", "sending", "sent", "failed", "expired", "cancelled", "deferred")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add plan, outreach list and dispatch."""
    plan = sub.add_parser("plan", help="plan outreach from programs and fills; prints one JSON summary line")
    plan.add_argument(
        "--all",
        action="store_true",
        help="re-plan every patient (the default too: planning is incremental and idempotent)",
    )
    add_now(plan)
    plan.set_defaults(func=cmd_plan)
    outreach = sub.add_parser("outreach", help="inspect planned and sent outreach")
    actions = outreach.add_subparsers(dest="outreach_action", metavar="ACTION", required=True)
    lst = actions.add_parser("list", help="one JSON line per outreach row, with its state and reason")
    lst.add_argument("--patient", metavar="ID", help="only this patient")
    lst.add_argument("--state", choices=STATES, help="only rows in this state")
    lst.add_argument("--limit", type=int, metavar="N", help="at most N rows (earliest due first)")
    lst.set_defaults(func=cmd_outreach_list)
    dispatch = sub.add_parser("dispatch", help="send due outreach (quiet hours, caps, bundling, rate limit)")
    dispatch.add_argument("--once", action="store_true", help="send until nothing is due, then exit")
    add_now(dispatch)
    dispatch.set_defaults(func=cmd_dispatch)


# ---- plan ------------------------------------------------------------------------------------------------------


async def _plan(settings: Settings, now: datetime) -> dict[str, int]:
    async with open_store(settings) as (_engine, sessionmaker), sessionmaker.begin() as session:
        return (await replan(session, patient_ids=None, now=now)).as_dict()


def cmd_plan(args: argparse.Namespace) -> int:
    """Plan (or re-plan) every patient's outreach and print {"planned", "cancelled", "unchanged"}."""
    now = parse_now(args.now) or utcnow()
    print(json.dumps(asyncio.run(_plan(settings_from_env(), now))))
    return 0


# ---- outreach list ---------------------------------------------------------------------------------------------


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def outreach_line(row: Outreach) -> dict[str, Any]:
    """The JSON shape of one outreach row (DESIGN.md)."""
    return {
        "id": row.id,
        "patient_id": row.patient_id,
        "prescription_id": row.prescription_id,
        "program_id": row.program_id,
        "step": row.step,
        "due_at": _iso(row.due_at),
        "state": row.state,
        "reason": row.reason or "",
    }


async def _outreach(args: argparse.Namespace) -> list[dict[str, Any]]:
    query = select(Outreach).order_by(Outreach.due_at, Outreach.id)
    if args.patient:
        query = query.where(Outreach.patient_id == args.patient)
    if args.state:
        query = query.where(Outreach.state == args.state)
    if args.limit is not None:
        if args.limit < 1:
            raise CliError(f"--limit: must be at least 1: {args.limit}")
        query = query.limit(args.limit)
    async with open_store(settings_from_env()) as (_engine, sessionmaker), sessionmaker() as session:
        return [outreach_line(row) for row in await session.scalars(query)]


def cmd_outreach_list(args: argparse.Namespace) -> int:
    """Print outreach rows as JSON lines."""
    for line in asyncio.run(_outreach(args)):
        print(json.dumps(line))
    return 0


# ---- dispatch --------------------------------------------------------------------------------------------------


class OffsetClock(Clock):
    """Real time, shifted so that it read ``at`` when created (`dispatch --now` without `--once`)."""

    def __init__(self, at: datetime) -> None:
        self._offset = at - utcnow()

    def now(self) -> datetime:
        return utcnow() + self._offset


class _NoSender:
    """Stands in until something is due: counting due rows needs no SMS client."""

    async def send(self, patient_id: str, outreach_ids: list[int], now: datetime) -> SendOutcome:
        raise RuntimeError("no sender")

    async def reconcile(self, patient_id: str, outreach_ids: list[int], now: datetime) -> SendOutcome | None:
        raise RuntimeError("no sender")


async def _nothing_due(
    engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock
) -> bool:
    db = DbWorker(engine)
    try:
        probe = Dispatcher(sessionmaker, _NoSender(), clock, owner="probe", db=db)
        return await probe.due_count(clock.now()) == 0
    finally:
        await db.close()


async def _dispatch(settings: Settings, once: bool, clock: Clock) -> DispatchSummary | None:
    from bot.jobs import job_context, make_dispatcher  # the SMS engine loads only when something is due

    async with open_store(settings) as (engine, sessionmaker):
        if once and await _nothing_due(engine, sessionmaker, clock):
            return DispatchSummary()
        async with job_context(settings, engine, sessionmaker, clock) as ctx:
            dispatcher = make_dispatcher(ctx)
            if once:
                return await dispatcher.run_once()
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError):
                    loop.add_signal_handler(sig, stop.set)
            _LOGGER.info(
                "dispatcher %s running every %.1fs", dispatcher.owner, settings.dispatch_interval_seconds
            )
            await run_forever(dispatcher, settings.dispatch_interval_seconds, stop)
            return None


def cmd_dispatch(args: argparse.Namespace) -> int:
    """Send due outreach once (--once) or keep dispatching until SIGINT/SIGTERM."""
    now = parse_now(args.now)
    settings = settings_from_env()
    if not args.once:  # the long-running loop logs like `serve`; --once only prints its summary
        configure_logging(settings.log_level, settings.log_format)
    clock: Clock
    if args.once:
        clock = FixedClock(now) if now else SystemClock()
    else:
        clock = OffsetClock(now) if now else SystemClock()
    summary = asyncio.run(_dispatch(settings, args.once, clock))
    if summary is not None:
        print(json.dumps(summary.as_dict()))
    return 0
