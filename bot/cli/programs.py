"""`midbot programs validate|load|list`: the outreach programs of each site, written as YAML."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from bot.cli.common import CliError, add_now, open_store, parse_now, settings_from_env
from bot.clock import utcnow
from bot.db.models import Program, Site
from scheduler.planner import replan
from scheduler.programs import (
    ProgramFileError,
    ProgramSpec,
    default_programs,
    load_programs_file,
    replace_site_programs,
    spec_digest,
    spec_json,
)

if TYPE_CHECKING:
    from bot.sms.preview import Preview

ORDER = 60
_LOGGER = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `programs validate`, `programs load` and `programs list`."""
    programs = sub.add_parser("programs", help="validate, load and list outreach programs (YAML)")
    actions = programs.add_subparsers(dest="programs_action", metavar="ACTION", required=True)
    validate = actions.add_parser("validate", help="check a programs file; prints FILE:LINE: field: reason")
    validate.add_argument("file", metavar="FILE")
    validate.set_defaults(func=cmd_validate)
    load = actions.add_parser("load", help="make a file the site's programs (replacing them) and re-plan")
    load.add_argument("file", metavar="FILE")
    load.add_argument("--site", required=True, metavar="ID", help="the site whose programs to replace")
    add_now(load)
    load.set_defaults(func=cmd_load)
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


def _read(path: str, stream: Any) -> list[ProgramSpec] | None:
    try:
        return load_programs_file(path)
    except ProgramFileError as exc:
        for error in exc.errors:
            print(error.render(path), file=stream)
        return None


def cmd_validate(args: argparse.Namespace) -> int:
    """Validate a programs file: one line per problem (exit 1), or an OK line (exit 0)."""
    specs = _read(args.file, sys.stdout)
    if specs is None:
        return 1
    for warning in template_warnings(args.file, specs, settings_from_env().max_template_segments):
        print(warning)
    print(f"{args.file}: OK, {len(specs)} program(s): {', '.join(s.id for s in specs) or 'none'}")
    return 0


# Long enough stand-ins for the placeholders a template may use, so a warning errs on the long side.
_SAMPLE = {
    "first_name": "Guadalupe",
    "site_name": "Lakeside Oncology Pharmacy",
    "site_phone": "+1 (312) 555-0100",
    "drug": "capecitabine",
    "days": "10",
    "date": "12/31",
}


def template_warnings(path: str, specs: list[ProgramSpec], limit: int) -> list[str]:
    """A line per template that would take more SMS segments than ``limit`` (MIDBOT_MAX_TEMPLATE_SEGMENTS)."""
    from conversations.templates import fill_custom
    from integrations.twilio.segments import segment_info

    warnings = []
    for spec in specs:
        texts = spec.templates.model_dump(exclude_none=True) if spec.templates else {}
        for language, text in texts.items():
            info = segment_info(fill_custom(text, _SAMPLE) or text)
            if info.segments > limit:
                warnings.append(
                    f"{path}: warning: {spec.id}: templates.{language}: {info.segments} {info.encoding} "
                    f"segments, more than {limit} (MIDBOT_MAX_TEMPLATE_SEGMENTS)"
                )
    return warnings


async def _load(args: argparse.Namespace, specs: list[ProgramSpec]) -> dict[str, Any]:
    now = parse_now(args.now) or utcnow()
    async with open_store(settings_from_env()) as (_engine, sessionmaker), sessionmaker.begin() as session:
        if await session.get(Site, args.site) is None:
            raise CliError(f"--site: no site {args.site!r} (add it with `midbot sites add`)")
        change = await replace_site_programs(session, args.site, specs)
        program_ids = None if change.was_default else change.changed_pks
        if program_ids == set():
            summary = {"planned": 0, "cancelled": 0, "unchanged": 0}
        else:
            summary = (
                await replan(session, patient_ids=None, now=now, program_ids=program_ids, site_id=args.site)
            ).as_dict()
        return change.as_dict() | {"plan": summary}


def cmd_load(args: argparse.Namespace) -> int:
    """Replace a site's programs with a file's and re-plan what changed."""
    specs = _read(args.file, sys.stderr)
    if specs is None:
        return 1
    print(json.dumps(asyncio.run(_load(args, specs))))
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
    specs = _read(args.file, sys.stderr)
    if specs is None:
        return 1
    result = asyncio.run(_preview(args, specs))
    for text in result.texts:
        print(json.dumps(text.as_dict(), ensure_ascii=False))
    print(json.dumps(result.summary()))
    return 0


def _line(site_id: str, spec: ProgramSpec, source: str, active: bool = True) -> dict[str, Any]:
    return {
        "site_id": site_id,
        "program_id": spec.id,
        "kind": spec.kind,
        "source": source,
        "active": active,
        "digest": spec_digest(spec)[:12],
        "spec": spec_json(spec),
    }


async def _list(site: str | None) -> list[dict[str, Any]]:
    async with open_store(settings_from_env()) as (_engine, sessionmaker), sessionmaker() as session:
        query = select(Site.id).order_by(Site.id)
        site_ids = list(await session.scalars(query.where(Site.id == site) if site else query))
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
        if own:
            out += [_line(site_id, ProgramSpec.model_validate(r.spec), "site", r.active) for r in own]
        else:
            out += [_line(site_id, spec, "default") for spec in default_programs()]
    return out


def cmd_list(args: argparse.Namespace) -> int:
    """Print programs, one JSON line each."""
    for line in asyncio.run(_list(args.site)):
        print(json.dumps(line))
    return 0
