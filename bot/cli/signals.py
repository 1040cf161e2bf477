"""`midbot signals {export,push,dead-letters,compute}` and `midbot metrics`: signals out and program figures."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import aiohttp
from sqlalchemy import select

from bot.cli.common import CliError, add_now, open_store, parse_now, settings_from_env
from bot.clock import utcnow
from bot.db.models import DeadLetter, Site
from bot.logs import configure_logging
from bot.settings import Settings
from integrations.dispensary.computed import compute_signals, local_date, site_zone
from integrations.dispensary.metrics import metrics_csv, parse_month, program_metrics
from integrations.dispensary.sinks import (
    SINKS,
    SinkNotConfigured,
    configured_sinks,
    export_signals,
    push_signals,
    replay_dead_letters,
)

ORDER = 60
_LOGGER = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `signals` (export, push, dead-letters, compute) and `metrics`."""
    signals = sub.add_parser("signals", help="export and push adherence signals to the dispensary record")
    actions = signals.add_subparsers(dest="action", metavar="ACTION", required=True)

    export = actions.add_parser("export", help="write signals after a watermark as NDJSON or CSV")
    export.add_argument("--since", default="0", metavar="ID|ISO8601", help="last signal id seen, or a time")
    export.add_argument("--format", choices=("ndjson", "csv"), default="ndjson")
    export.add_argument("--output", metavar="FILE", help="write here instead of stdout")
    export.add_argument("--site", metavar="ID", help="only this site's signals")
    export.set_defaults(func=cmd_export)

    push = actions.add_parser("push", help="deliver new signals to the configured sinks until caught up")
    push.add_argument("--sink", choices=(*SINKS, "all"), default="all")
    push.set_defaults(func=cmd_push)

    dead = actions.add_parser("dead-letters", help="list signals a sink could not take; --replay re-sends")
    dead.add_argument("--sink", choices=(*SINKS, "all"), default="all")
    dead.add_argument("--replay", action="store_true", help="re-send them now")
    dead.add_argument("--all", action="store_true", help="list replayed ones too")
    dead.set_defaults(func=cmd_dead_letters)

    compute = actions.add_parser("compute", help="record computed signals (PDC, abandonment, unreachable)")
    add_now(compute)
    compute.add_argument("--site", metavar="ID", help="only this site")
    compute.set_defaults(func=cmd_compute)

    metrics = sub.add_parser("metrics", help="program metrics per site and month beside NCODA benchmarks")
    metrics.add_argument("--site", metavar="ID", help="one site (default: every site)")
    metrics.add_argument("--month", metavar="YYYY-MM", help="the month (default: this month, site time)")
    metrics.add_argument("--format", choices=("json", "csv"), default="json")
    add_now(metrics)
    metrics.set_defaults(func=cmd_metrics)


def _setup() -> Settings:
    settings = settings_from_env()
    configure_logging(settings.log_level, settings.log_format)
    return settings


def parse_since(value: str) -> tuple[int, datetime | None]:
    """``--since``: a signal id (digits) or an ISO 8601 time (UTC if no zone) -> (since_id, since_time)."""
    text = value.strip()
    if text.isdigit():
        return int(text), None
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"--since: not a signal id or an ISO 8601 time: {value!r}") from None
    return 0, at if at.tzinfo else at.replace(tzinfo=UTC)


def _open_output(path: str | None) -> AbstractContextManager[TextIO]:
    if path is None:
        return nullcontext(sys.stdout)
    target = Path(path)
    if target.parent and not target.parent.exists():
        raise CliError(f"--output: folder does not exist: {target.parent}")
    try:
        return target.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        raise CliError(f"--output: cannot write {path}: {exc.strerror}") from None


async def _export(
    settings: Settings, args: argparse.Namespace, since_id: int, since_time: datetime | None
) -> int:
    async with open_store(settings) as (_engine, maker):
        async with maker() as session:
            if args.site and await session.get(Site, args.site) is None:
                raise CliError(f"--site: unknown site {args.site!r}")
            with _open_output(args.output) as out:
                report = await export_signals(
                    session, out, fmt=args.format, since_id=since_id, since_time=since_time, site_id=args.site
                )
    # On stderr so stdout stays pure data: the caller passes it back as --since to resume.
    print(f"exported {report.count} signals; last id {report.last_id}", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Export signals after --since to stdout or --output."""
    since_id, since_time = parse_since(args.since)
    return asyncio.run(_export(_setup(), args, since_id, since_time))


def _chosen_sinks(settings: Settings, choice: str) -> list[str]:
    if choice != "all":
        return [choice]
    names = configured_sinks(settings)
    if not names:
        raise CliError("no signal sink is configured (set MIDBOT_SIGNAL_WEBHOOK_URL or MIDBOT_FHIR_BASE_URL)")
    return names


async def _push(settings: Settings, names: list[str], replay: bool) -> list[dict[str, Any]]:
    reports = []
    async with open_store(settings) as (_engine, maker), aiohttp.ClientSession() as http:
        for name in names:
            try:
                if replay:
                    report = await replay_dead_letters(maker, http, settings, sink=name)
                else:
                    report = await push_signals(maker, http, settings, sink=name)
            except SinkNotConfigured as exc:
                raise CliError(f"--sink {name}: {exc}") from None
            reports.append(report.as_dict())
    return reports


def cmd_push(args: argparse.Namespace) -> int:
    """Push each chosen sink until caught up; one JSON report line per sink."""
    settings = _setup()
    reports = asyncio.run(_push(settings, _chosen_sinks(settings, args.sink), replay=False))
    for report in reports:
        print(json.dumps(report))
    return 0


async def _dead_letters(settings: Settings, sinks: list[str], include_all: bool) -> list[dict[str, Any]]:
    async with open_store(settings) as (_engine, maker), maker() as session:
        query = select(DeadLetter).where(DeadLetter.sink.in_(sinks)).order_by(DeadLetter.id)
        if not include_all:
            query = query.where(DeadLetter.status == "dead")
        return [
            {
                "id": d.id,
                "sink": d.sink,
                "signal_id": d.signal_id,
                "attempts": d.attempts,
                "status": d.status,
                "last_error": d.last_error,
                "created_at": d.created_at.isoformat().replace("+00:00", "Z"),
            }
            for d in await session.scalars(query)
        ]


def cmd_dead_letters(args: argparse.Namespace) -> int:
    """List dead letters as JSON lines, or replay them (--replay) and print a report per sink."""
    settings = _setup()
    if args.replay:
        names = _chosen_sinks(settings, args.sink)
        for report in asyncio.run(_push(settings, names, replay=True)):
            print(json.dumps(report))
        return 0
    names = list(SINKS) if args.sink == "all" else [args.sink]
    for row in asyncio.run(_dead_letters(settings, names, args.all)):
        print(json.dumps(row))
    return 0


async def _compute(settings: Settings, now: datetime, site: str | None) -> int:
    async with open_store(settings) as (_engine, maker), maker.begin() as session:
        if site and await session.get(Site, site) is None:
            raise CliError(f"--site: unknown site {site!r}")
        return await compute_signals(session, now=now, site_id=site)


def cmd_compute(args: argparse.Namespace) -> int:
    """Record computed signals as of --now (default: the clock); prints {"recorded": N}."""
    now = parse_now(args.now) or utcnow()
    added = asyncio.run(_compute(_setup(), now, args.site))
    print(json.dumps({"recorded": added}))
    return 0


async def _metrics(settings: Settings, site: str | None, month: str | None, now: datetime) -> list[Any]:
    async with open_store(settings) as (_engine, maker), maker() as session:
        query = select(Site).order_by(Site.id)
        if site:
            query = query.where(Site.id == site)
        sites = list(await session.scalars(query))
        if site and not sites:
            raise CliError(f"--site: unknown site {site!r}")
        results = []
        for each in sites:
            chosen = month or local_date(now, site_zone(each)).strftime("%Y-%m")
            results.append(
                (each.id, chosen, await program_metrics(session, site_id=each.id, month=chosen, now=now))
            )
        return results


def cmd_metrics(args: argparse.Namespace) -> int:
    """Print each site's metrics: one JSON object per site, or CSV rows under one header."""
    if args.month is not None:
        try:
            parse_month(args.month)
        except ValueError as exc:
            raise CliError(f"--{exc}") from None
    now = parse_now(args.now) or utcnow()
    results = asyncio.run(_metrics(_setup(), args.site, args.month, now))
    if args.format == "csv":
        for index, (site_id, month, rows) in enumerate(results):
            text = metrics_csv(rows, site_id=site_id, month=month)
            sys.stdout.write(text if index == 0 else text.split("\n", 1)[1])
        if not results:
            sys.stdout.write(metrics_csv([]))
        return 0
    for site_id, month, rows in results:
        print(json.dumps({"site_id": site_id, "month": month, "metrics": [m.as_dict() for m in rows]}))
    return 0
