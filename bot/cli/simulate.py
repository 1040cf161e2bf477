"""`midbot simulate`: weeks of a site's outreach on a simulated clock, on a throwaway copy of the store.

The site's patients (or a synthetic practice) go through the real planner, dispatcher, dialogs and task routing
(``bot.sim``); the real database is only read and no text leaves the machine. Prints the weekly figures as JSON
(stable key order, the same bytes for the same seed) and, with ``--html``, writes a self-contained report.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from bot.cli.common import CliError, one_line_errors, settings_from_env
from bot.clock import utcnow
from bot.logs import configure_logging
from bot.settings import Settings
from bot.sim.behaviour import Rates

ORDER = 62
_LOGGER = logging.getLogger(__name__)
DEMO_PATIENTS = 200  # the practice `midbot demo` builds
DEMO_PRACTICE_SEED = 7
DEFAULT_PRICE = "0.0083"  # dollars per segment, a typical US long-code rate: set your contract's
MAX_WEEKS = 52
MAX_SYNTHETIC = 5000


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `simulate`."""
    parser = sub.add_parser(
        "simulate",
        help="what-if: weeks of outreach, replies and tasks on a simulated clock (changes nothing)",
        description="Replays the site's patients (or a synthetic practice) through midbot's planner, dispatcher, "
        "dialogs and task routing on a simulated clock, on a throwaway copy of the database, and prints the "
        "weekly figures as JSON. Nothing is sent and the database is only read.",
    )
    parser.add_argument("--site", metavar="ID", help="the site to simulate (default: every site)")
    parser.add_argument(
        "--weeks", default="4", metavar="N", help=f"weeks to simulate, 1-{MAX_WEEKS} (default 4)"
    )
    parser.add_argument(
        "--programs", metavar="FILE", help="a programs YAML file to use instead of the site's"
    )
    parser.add_argument(
        "--seed", default="1", metavar="S", help="seed of the patients' behaviour (default 1)"
    )
    parser.add_argument(
        "--price-per-segment",
        default=DEFAULT_PRICE,
        metavar="X",
        help=f"dollars per SMS segment for the cost (default {DEFAULT_PRICE})",
    )
    parser.add_argument("--html", metavar="PATH", help="also write a self-contained HTML report here")
    parser.add_argument(
        "--synthetic",
        metavar="N",
        help=f"simulate a synthetic practice of N patients instead of the database's (the demo's is "
        f"{DEMO_PATIENTS}; used when the database has no patients)",
    )
    parser.add_argument(
        "--rates",
        metavar="FILE",
        help="a JSON object overriding patient behaviour rates (see bot/sim/behaviour.py Rates)",
    )
    parser.add_argument("--start", metavar="DATE", help="first simulated day, YYYY-MM-DD (default tomorrow)")
    parser.set_defaults(func=cmd_simulate)
    one_line_errors(parser)


@dataclass(frozen=True)
class _Args:
    site: str | None
    weeks: int
    seed: int
    price: Decimal
    programs: str | None
    html: Path | None
    synthetic: int | None
    start: date
    rates: Rates


def _whole(name: str, value: str, low: int, high: int) -> int:
    text = value.strip()
    if not text.lstrip("-").isdigit() or not low <= int(text) <= high:
        raise CliError(f"{name}: expected a whole number from {low} to {high}, got {value!r}", code=2)
    return int(text)


def _parse(args: argparse.Namespace) -> _Args:
    try:
        price = Decimal(args.price_per_segment)
    except InvalidOperation:
        price = Decimal(-1)
    if not price.is_finite() or price < 0 or price > 10:
        raise CliError(
            f"--price-per-segment: expected dollars from 0 to 10, got {args.price_per_segment!r}", code=2
        )
    try:
        start = date.fromisoformat(args.start) if args.start else utcnow().date() + timedelta(days=1)
    except ValueError:
        raise CliError(f"--start: expected a date YYYY-MM-DD, got {args.start!r}", code=2) from None
    html = Path(args.html) if args.html else None
    if html is not None and (html.is_dir() or not html.parent.is_dir()):
        raise CliError(f"--html: cannot write {args.html!r} (a file in an existing folder is needed)", code=2)
    return _Args(
        site=args.site,
        weeks=_whole("--weeks", args.weeks, 1, MAX_WEEKS),
        seed=_whole("--seed", args.seed, 0, 2**31 - 1),
        price=price,
        programs=args.programs,
        html=html,
        synthetic=_whole("--synthetic", args.synthetic, 1, MAX_SYNTHETIC) if args.synthetic else None,
        start=start,
        rates=_rates(args.rates),
    )


def _rates(path: str | None) -> Rates:
    """Rates from a JSON file of overrides (DOMAIN.md's published defaults otherwise)."""
    if path is None:
        return Rates()
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CliError(f"--rates: cannot read {path!r}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise CliError(f"--rates: {path}: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise CliError(f"--rates: {path}: expected a JSON object of rates")
    known = set(Rates().as_dict())
    for key, value in data.items():
        if key not in known:
            raise CliError(f"--rates: {path}: unknown rate {key!r} (known: {', '.join(sorted(known))})")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CliError(f"--rates: {path}: {key}: expected a number, got {value!r}")
    try:
        return Rates(**data)
    except ValueError as exc:
        raise CliError(f"--rates: {path}: {exc}") from None


def cmd_simulate(args: argparse.Namespace) -> int:
    """Simulate, print the JSON report, write the HTML one if asked."""
    parsed = _parse(args)
    settings = settings_from_env()
    specs = _programs(parsed.programs)
    # Simulation runs the production code, which logs each send at INFO: keep the terminal to the report.
    level = settings.log_level if "MIDBOT_LOG_LEVEL" in os.environ else "WARNING"
    configure_logging(level, settings.log_format)
    report = asyncio.run(_run(settings, parsed, specs))
    print(json.dumps(report, indent=2, ensure_ascii=False))
    if parsed.html is not None:
        from bot.sim.html import render_html

        try:
            parsed.html.write_text(render_html(report), encoding="utf-8")
        except OSError as exc:
            raise CliError(f"--html: cannot write {str(parsed.html)!r}: {exc.strerror or exc}") from None
    return 0


def _programs(path: str | None) -> list[Any] | None:
    if path is None:
        return None
    from scheduler.programs import ProgramFileError, load_programs_file

    try:
        return list(load_programs_file(path))
    except ProgramFileError as exc:
        for error in exc.errors[:-1]:
            print(f"midbot: {error.render(path)}", file=sys.stderr)
        raise CliError(exc.errors[-1].render(path)) from None


async def _run(settings: Settings, args: _Args, specs: list[Any] | None) -> dict[str, Any]:
    from bot.db.migrate import upgrade
    from bot.db.session import make_engine

    with tempfile.TemporaryDirectory(prefix="midbot-simulate-") as folder:
        url = f"sqlite+aiosqlite:///{folder}/simulation.db"
        engine = make_engine(url)
        try:
            await upgrade(engine)
            source = await _fill_copy(settings, engine, args)
            return await _simulate(
                settings.model_copy(update={"database_url": url}), engine, args, specs, source
            )
        finally:
            await engine.dispose()


async def _fill_copy(settings: Settings, engine: Any, args: _Args) -> dict[str, Any]:
    """The copy's data: the database's (only read), or a synthetic practice; returns how it was made."""
    from bot.db.session import make_engine
    from bot.db.snapshot import SnapshotError, copy_store, has_patients

    count = args.synthetic
    if count is None:
        if _store_exists(settings.database_url):
            source = make_engine(settings.database_url)
            try:
                if await has_patients(source):
                    await copy_store(source, engine)
                    return {"source": "database", "synthetic_patients": None, "practice_seed": None}
            except SnapshotError as exc:
                raise CliError(str(exc)) from None
            finally:
                await source.dispose()
        print(
            f"midbot simulate: no patients in the database; simulating the demo practice "
            f"(--synthetic {DEMO_PATIENTS})",
            file=sys.stderr,
        )
        count = DEMO_PATIENTS
    await _synthetic(engine, count, args.start)
    return {"source": "synthetic", "synthetic_patients": count, "practice_seed": DEMO_PRACTICE_SEED}


def _store_exists(url: str) -> bool:
    """False for a SQLite file that is not there (opening it would create it)."""
    if not url.startswith("sqlite"):
        return True
    rest = url.split(":///", 1)[1] if ":///" in url else ""
    path = rest.split("?", 1)[0]
    return bool(path) and not path.startswith(":memory:") and Path(path).is_file()


async def _synthetic(engine: Any, patients: int, start: date) -> None:
    from bot.db.models import Site
    from bot.db.session import make_sessionmaker
    from integrations.dispensary.synthetic import generate_practice, load_practice
    from scheduler.programs import load_default_programs

    sessionmaker = make_sessionmaker(engine)
    practice = generate_practice(seed=DEMO_PRACTICE_SEED, patients=patients, today=start)
    async with sessionmaker.begin() as session:
        await load_practice(session, practice)
    async with sessionmaker.begin() as session:
        for site_id in await session.scalars(select(Site.id).order_by(Site.id)):
            await load_default_programs(session, site_id)


async def _simulate(
    settings: Settings, engine: Any, args: _Args, specs: list[Any] | None, source: dict[str, Any]
) -> dict[str, Any]:
    from bot.db.models import Prescription, Site
    from bot.db.session import make_sessionmaker
    from bot.sim.engine import SimSpec, Simulation
    from bot.sim.report import ReportInput, weekly_report
    from scheduler.programs import replace_site_programs

    sessionmaker = make_sessionmaker(engine)
    async with sessionmaker.begin() as session:
        all_sites = list(await session.scalars(select(Site.id).order_by(Site.id)))
        if args.site is not None and args.site not in all_sites:
            raise CliError(f"--site: no site {args.site!r} (sites: {', '.join(all_sites) or 'none'})")
        sites = [args.site] if args.site else all_sites
        if not sites:
            raise CliError("the database has no sites (add one with `midbot sites add`)")
        for site_id in sites if specs is not None else []:
            await replace_site_programs(session, site_id, specs or [])
        zone = str(await session.scalar(select(Site.time_zone).where(Site.id == sites[0])))
        patients = await session.scalar(
            select(func.count(func.distinct(Prescription.patient_id))).where(Prescription.site_id.in_(sites))
        )
    start = datetime.combine(args.start, time(0, 0), tzinfo=ZoneInfo(zone)).astimezone(UTC)
    end = start + timedelta(days=7 * args.weeks)
    rates = args.rates
    spec = SimSpec(start=start, end=end, seed=args.seed, rates=rates, site_ids=tuple(sites))
    await Simulation(settings, engine, spec).run()
    parameters = {
        "sites": sites,
        **source,
        "patients": int(patients or 0),
        "programs": args.programs or "each site's loaded programs (the built-in set if none)",
        "start": args.start.isoformat(),
        "end": (args.start + timedelta(days=7 * args.weeks - 1)).isoformat(),
        "time_zone": zone,
        "weeks": args.weeks,
        "seed": args.seed,
        "price_per_segment": float(args.price),
        "rates": rates.as_dict(),
    }
    async with sessionmaker() as session:
        return await weekly_report(
            session, ReportInput(start, args.weeks, tuple(sites), zone, args.price, parameters)
        )
