"""`midbot programs validate|load|pause|resume|preview|list`: each site's outreach programs, written as YAML."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from bot.cli.common import CliError, add_now, open_store, parse_now, settings_from_env
from bot.clock import utcnow
from bot.db.audit import SYSTEM
from bot.db.models import Program, Site
from bot.db.sitecfg import PAUSED_PROGRAMS
from bot.staff.programs import load_programs, sites_with, switch_programs
from scheduler.lint import LintResult, lint_programs, site_languages
from scheduler.programs import (
    ProgramFileError,
    ProgramSpec,
    default_programs,
    load_programs_file,
    read_programs_file,
    spec_digest,
    spec_json,
)

if TYPE_CHECKING:
    from bot.sms.preview import Preview

ORDER = 60
_LOGGER = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `programs validate|load|pause|resume|preview|list`."""
    programs = sub.add_parser("programs", help="validate, load and list outreach programs (YAML)")
    actions = programs.add_subparsers(dest="programs_action", metavar="ACTION", required=True)
    validate = actions.add_parser(
        "validate", help="lint a programs file: FILE:LINE: field: reason per error, FILE:LINE: warning: ..."
    )
    validate.add_argument("file", metavar="FILE")
    validate.add_argument(
        "--site",
        metavar="ID",
        help="also check the languages this site's patients speak (reads the database)",
    )
    validate.set_defaults(func=cmd_validate)
    load = actions.add_parser("load", help="make a file the site's programs (replacing them) and re-plan")
    load.add_argument("file", metavar="FILE")
    load.add_argument("--site", required=True, metavar="ID", help="the site whose programs to replace")
    load.add_argument(
        "--dry-run", action="store_true", help="print what would change in the plan, change nothing"
    )
    load.add_argument(
        "--paused",
        action="store_true",
        help="load the programs paused: nothing is planned or sent for them until `programs resume`",
    )
    add_now(load)
    load.set_defaults(func=cmd_load)
    for name, verb in (("pause", "stop planning and sending"), ("resume", "plan and send again")):
        switch = actions.add_parser(name, help=f"{verb} for loaded programs (re-plans them)")
        switch.add_argument("program_ids", nargs="*", metavar="ID", help="program ids (or --all)")
        switch.add_argument("--all", action="store_true", help="every program the site has loaded")
        switch.add_argument("--site", metavar="ID", help="the site (needed when several sites have the id)")
        add_now(switch)
        switch.set_defaults(func=cmd_switch, paused=name == "pause")
    preview = actions.add_parser(
        "preview", help="print the texts a file's programs would send the site's patients (changes nothing)"
    )
    preview.add_argument("file", metavar="FILE")
    preview.add_argument("--site", required=True, metavar="ID", help="the site whose patients to plan")
    preview.add_argument(
        "--days", type=_days, default=14, metavar="N", help="how many days ahead (default 14)"
    )
    preview.add_argument("--patient", metavar="ID", help="only this patient")
    add_now(preview)
    preview.set_defaults(func=cmd_preview)
    lst = actions.add_parser(
        "list", help="print programs as JSON lines (a site without its own: the defaults)"
    )
    lst.add_argument("--site", metavar="ID", help="only this site")
    lst.set_defaults(func=cmd_list)


def _lint(path: str, stream: Any, languages: set[str] | None = None) -> tuple[str, LintResult] | None:
    """Read and lint a file: errors (and warnings) printed to ``stream``; None when it has errors."""
    try:
        text = read_programs_file(path)
    except ProgramFileError as exc:
        for error in exc.errors:
            print(error.render(path), file=stream)
        return None
    result = lint_programs(
        text, segment_limit=settings_from_env().max_template_segments, site_languages=languages
    )
    for finding in result.findings:
        print(finding.render(path), file=stream)
    return None if result.specs is None else (text, result)


async def _languages(site: str | None) -> set[str] | None:
    """The site's patients' languages (--site), every patient's when a database is configured, else None."""
    if site is None and "MIDBOT_DATABASE_URL" not in os.environ:
        return None
    settings = settings_from_env()
    if (
        settings.database_url.startswith("sqlite")
        and not Path(settings.database_url.split(":///", 1)[-1]).exists()
    ):
        if site is not None:  # opening it would create an empty database file
            raise CliError("--site: the database does not exist yet (run `midbot migrate`)")
        return None
    try:
        async with open_store(settings, migrate=False) as (_engine, sessionmaker):
            async with sessionmaker() as session:
                if site is not None and await session.get(Site, site) is None:
                    raise CliError(f"--site: no site {site!r} (add it with `midbot sites add`)")
                return await site_languages(session, site)
    except SQLAlchemyError:
        if site is not None:
            raise CliError("--site: the database cannot be read (run `midbot migrate`)") from None
        _LOGGER.info("no readable database: the language check is skipped")
        return None


def cmd_validate(args: argparse.Namespace) -> int:
    """Lint a programs file: errors exit 1; warnings alone, or nothing, exit 0 with an OK line."""
    linted = _lint(args.file, sys.stdout, asyncio.run(_languages(args.site)))
    if linted is None:
        return 1
    specs = linted[1].specs or []
    print(f"{args.file}: OK, {len(specs)} program(s): {', '.join(s.id for s in specs) or 'none'}")
    return 0


async def _load(args: argparse.Namespace, text: str, specs: list[ProgramSpec]) -> dict[str, Any]:
    now = parse_now(args.now) or utcnow()
    async with open_store(settings_from_env()) as (_engine, sessionmaker), sessionmaker() as session:
        try:
            outcome = await load_programs(
                session, args.site, specs, text=text, paused=args.paused, now=now, actor=SYSTEM, source="cli"
            )
        except LookupError:
            await session.rollback()
            raise CliError(f"--site: no site {args.site!r} (add it with `midbot sites add`)") from None
        if args.dry_run:
            await session.rollback()  # what would change, computed by the real load; none of it is kept
        else:
            await session.commit()
        return outcome.as_dict() | {"dry_run": bool(args.dry_run)}


def cmd_load(args: argparse.Namespace) -> int:
    """Replace a site's programs with a file's and re-plan what changed (or, --dry-run, say what would)."""
    linted = _lint(args.file, sys.stderr)
    if linted is None:
        return 1
    text, result = linted
    print(json.dumps(asyncio.run(_load(args, text, result.specs or []))))
    return 0


async def _switch(args: argparse.Namespace) -> dict[str, Any]:
    now = parse_now(args.now) or utcnow()
    ids = None if args.all else list(dict.fromkeys(args.program_ids))
    async with open_store(settings_from_env()) as (_engine, sessionmaker), sessionmaker.begin() as session:
        site = args.site or await _only_site(session, ids or [])
        try:
            outcome = await switch_programs(
                session, site, ids, paused=args.paused, now=now, actor=SYSTEM, source="cli"
            )
        except KeyError as exc:
            unknown = ", ".join(str(a) for a in exc.args)
            raise CliError(
                f"ID: site {site} has loaded no program {unknown} (see `midbot programs list`)"
            ) from None
        except LookupError:
            raise CliError(f"--site: no site {site!r}") from None
        return outcome.as_dict()


async def _only_site(session: Any, ids: list[str]) -> str:
    sites = await sites_with(session, ids)
    if len(sites) == 1:
        return sites[0]
    what = f"program {', '.join(ids)}" if ids else "programs"
    if not sites:
        raise CliError(f"ID: no site has loaded {what} (see `midbot programs list`)")
    raise CliError(f"--site: sites {', '.join(sites)} have loaded {what}; say which with --site")


def cmd_switch(args: argparse.Namespace) -> int:
    """`programs pause|resume ID...|--all`: switch, re-plan, print one JSON line."""
    if bool(args.all) == bool(args.program_ids):
        raise CliError("give program ids or --all (not both)", code=2)
    print(json.dumps(asyncio.run(_switch(args))))
    return 0


def _days(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 366:
        raise argparse.ArgumentTypeError(f"expected a number of days from 1 to 366, got {value!r}")
    return int(value)


async def _preview(args: argparse.Namespace, specs: list[ProgramSpec]) -> Preview:
    from bot.sms.preview import preview_programs

    now = parse_now(args.now) or utcnow()
    async with open_store(settings_from_env()) as (_engine, sessionmaker), sessionmaker() as session:
        try:
            return await preview_programs(
                session, args.site, specs, now=now, days=args.days, patient_id=args.patient
            )
        except LookupError:
            raise CliError(f"--site: no site {args.site!r} (add it with `midbot sites add`)") from None
        finally:
            await session.rollback()  # read only: nothing of the preview is ever committed


def cmd_preview(args: argparse.Namespace) -> int:
    """Print one JSON line per text the file's programs would send, then the summary line."""
    try:
        specs = load_programs_file(args.file)
    except ProgramFileError as exc:
        for error in exc.errors:
            print(error.render(args.file), file=sys.stderr)
        return 1
    result = asyncio.run(_preview(args, specs))
    for text in result.texts:
        print(json.dumps(text.as_dict(), ensure_ascii=False))
    print(json.dumps(result.summary()))
    return 0


def _line(
    site_id: str, spec: ProgramSpec, source: str, active: bool = True, paused: bool = False
) -> dict[str, Any]:
    return {
        "site_id": site_id,
        "program_id": spec.id,
        "kind": spec.kind,
        "source": source,
        "active": active,
        "paused": paused,
        "digest": spec_digest(spec)[:12],
        "spec": spec_json(spec),
    }


async def _list(site: str | None) -> list[dict[str, Any]]:
    async with open_store(settings_from_env()) as (_engine, sessionmaker), sessionmaker() as session:
        query = select(Site.id, Site.settings).order_by(Site.id)
        sites = dict((await session.execute(query.where(Site.id == site) if site else query)).all())
        site_ids = list(sites)
        if site and not site_ids:
            raise CliError(f"--site: no site {site!r}")
        rows = (
            await session.scalars(
                select(Program).where(Program.site_id.in_(site_ids)).order_by(Program.site_id, Program.id)
            )
        ).all()
    out: list[dict[str, Any]] = []
    for site_id in site_ids:
        own = [r for r in rows if r.site_id == site_id]
        paused = set((sites[site_id] or {}).get(PAUSED_PROGRAMS) or ())
        if own:
            out += [
                _line(
                    site_id,
                    ProgramSpec.model_validate(r.spec),
                    "site",
                    r.active,
                    r.active and r.program_id in paused,
                )
                for r in own
            ]
        else:
            out += [_line(site_id, spec, "default") for spec in default_programs()]
    return out


def cmd_list(args: argparse.Namespace) -> int:
    """Print programs, one JSON line each."""
    for line in asyncio.run(_list(args.site)):
        print(json.dumps(line))
    return 0
