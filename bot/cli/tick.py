"""`midbot tick`: run each periodic job once, as of a given time (operators use it from cron too)."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from bot.cli.common import CliError, add_now, open_store, parse_now, settings_from_env
from bot.clock import Clock, FixedClock, SystemClock
from bot.jobs import JOBS, job_context, run_job

ORDER = 35


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `tick`."""
    tick = sub.add_parser(
        "tick",
        help="run the periodic jobs once and print what each did",
        description="Runs each periodic job once (dialog timeouts, SLA escalation, computed signals, signal "
        "push, inbox sweep, delivery retry) and prints one JSON line per job.",
    )
    add_now(tick)
    tick.add_argument(
        "--job", action="append", metavar="NAME", help=f"only this job (repeatable): {', '.join(JOBS)}"
    )
    tick.set_defaults(func=cmd_tick)


async def _tick(names: list[str], clock: Clock) -> list[dict[str, Any]]:
    settings = settings_from_env()
    async with (
        open_store(settings) as (engine, sessionmaker),
        job_context(settings, engine, sessionmaker, clock) as ctx,
    ):
        results = [await run_job(ctx, name) for name in names]
        await ctx.sms.inbox.idle()
        await ctx.sms.background.drain()
    return results


def cmd_tick(args: argparse.Namespace) -> int:
    """Run the jobs; exit 0 with one line per job."""
    names = args.job or list(JOBS)
    unknown = [name for name in names if name not in JOBS]
    if unknown:
        raise CliError(f"--job: unknown job {unknown[0]!r} (jobs: {', '.join(JOBS)})", code=2)
    now = parse_now(args.now)
    clock: Clock = FixedClock(now) if now else SystemClock()
    for line in asyncio.run(_tick(names, clock)):
        print(json.dumps(line))
    return 0
