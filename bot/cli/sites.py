"""`midbot sites add|list`: the dispensing sites (tenants) with their sender, time zone, hours and rate."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
from typing import Any

import phonenumbers
from sqlalchemy import select

from bot.cli.common import CliError, open_store, settings_from_env
from bot.clock import utcnow
from bot.db.models import Site
from bot.db.sitecfg import site_config
from bot.db.vocabulary import QUEUES
from scheduler.planner import replan
from scheduler.timeutil import WEEKDAYS, parse_weekdays, parse_window, zone

ORDER = 20
_SETTINGS_KEYS = ("closed_days", "sla_hours", "oncall_webhook_url", "fhir_systems", "after_hours_phone")
_LOGGER = logging.getLogger(__name__)
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `sites add` and `sites list`."""
    sites = sub.add_parser("sites", help="add, update and list dispensing sites")
    actions = sites.add_subparsers(dest="sites_action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="add a site, or update it when the id exists")
    add.add_argument("site_id", metavar="ID", help="the site's id (letters, digits, - _ .)")
    add.add_argument("--name", required=True, help="the name patients see")
    add.add_argument("--phone", required=True, help="the site's SMS number, E.164 (+15005550006)")
    add.add_argument("--time-zone", required=True, help="IANA time zone, e.g. America/Chicago")
    add.add_argument(
        "--quiet-hours",
        metavar="HH:MM-HH:MM",
        help="when outreach may go out, inside 08:00-21:00 (default 09:00-20:00)",
    )
    add.add_argument(
        "--send-rate", type=float, metavar="N", help="texts per second from the sender (default 1)"
    )
    add.add_argument(
        "--messaging-service-sid", metavar="MG...", help="send through a Twilio Messaging Service"
    )
    add.add_argument(
        "--closed-days", metavar="DAYS", help="weekdays without outreach, e.g. sat,sun ('' for none)"
    )
    add.add_argument(
        "--sla",
        metavar="QUEUE=DURATION,...",
        help="task SLAs by queue, e.g. urgent_clinical=15m,refill=24h (queues: " + ", ".join(QUEUES) + ")",
    )
    add.add_argument(
        "--oncall-url", metavar="URL", help="where this site's SLA breaches are posted ('' for the default)"
    )
    add.add_argument(
        "--fhir-system",
        action="append",
        metavar="URI",
        help="an identifier system this site's FHIR records are matched by (repeatable; replaces the list; "
        "'' for none: every system)",
    )
    add.add_argument(
        "--after-hours-phone",
        metavar="+E164",
        help="the clinic's line answered out of hours, given in fever/chills advice ('' for the site's phone)",
    )
    add.set_defaults(func=cmd_add)
    lst = actions.add_parser("list", help="print every site as a JSON line")
    lst.set_defaults(func=cmd_list)


def _phone(value: str) -> str:
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        number = None
    if not value.startswith("+") or number is None or not phonenumbers.is_valid_number(number):
        raise CliError(f"--phone: not a valid E.164 phone number: {value!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(m|min|h|d)$")
_UNIT_HOURS = {"m": 1 / 60, "min": 1 / 60, "h": 1.0, "d": 24.0}


def parse_sla(text: str) -> dict[str, float]:
    """``urgent_clinical=15m,refill=24h`` as hours per queue; raises ValueError naming the bad part."""
    hours: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        queue, _, duration = part.partition("=")
        queue = queue.strip()
        if queue not in QUEUES:
            raise ValueError(f"unknown queue {queue!r} (queues: {', '.join(QUEUES)})")
        match = _DURATION.match(duration.strip().lower())
        if match is None:
            raise ValueError(f"{queue}: not a duration like 15m, 1h or 24h: {duration.strip()!r}")
        value = float(match.group(1)) * _UNIT_HOURS[match.group(2)]
        if not 0 < value <= 24 * 30:
            raise ValueError(f"{queue}: must be more than 0 and at most 30 days")
        hours[queue] = value
    if not hours:
        raise ValueError("give at least one QUEUE=DURATION")
    return hours


_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")


def _settings_values(args: argparse.Namespace, values: dict[str, Any]) -> None:
    if args.closed_days is not None:
        try:
            values["closed_days"] = list(parse_weekdays(args.closed_days))
        except ValueError as exc:
            raise CliError(f"--closed-days: {exc}") from None
    if args.sla is not None:
        try:
            values["sla_hours"] = parse_sla(args.sla)
        except ValueError as exc:
            raise CliError(f"--sla: {exc}") from None
    if args.oncall_url is not None:
        url = args.oncall_url.strip()
        if url and not re.match(r"^https?://[^\s/]+", url):
            raise CliError(f"--oncall-url: must be an http:// or https:// URL: {url!r}")
        values["oncall_webhook_url"] = url.rstrip("/")
    if args.fhir_system is not None:
        systems = [u.strip() for u in args.fhir_system if u.strip()]
        for uri in systems:
            if not _URI.match(uri) or len(uri) > 255:
                raise CliError(
                    f"--fhir-system: not an absolute URI (e.g. urn:oid:2.16.840.1.113883.4.1): {uri!r}"
                )
        values["fhir_systems"] = list(dict.fromkeys(systems))
    if args.after_hours_phone is not None:
        raw = args.after_hours_phone.strip()
        try:
            values["after_hours_phone"] = _phone(raw) if raw else ""
        except CliError:
            raise CliError(f"--after-hours-phone: not a valid E.164 phone number: {raw!r}") from None


def site_values(args: argparse.Namespace) -> dict[str, Any]:
    """Validate the options into Site columns (+ ``closed_days`` for settings); raises CliError naming one."""
    if not _ID.match(args.site_id):
        raise CliError(f"ID: use 1-64 letters, digits, '-', '_' or '.': {args.site_id!r}")
    name = args.name.strip()
    if not name or len(name) > 200:
        raise CliError("--name: must be 1-200 characters")
    values: dict[str, Any] = {"name": name, "phone": _phone(args.phone)}
    try:
        zone(args.time_zone)
    except ValueError as exc:
        raise CliError(f"--time-zone: {exc}") from None
    values["time_zone"] = args.time_zone
    if args.quiet_hours is not None:
        try:
            start, end = parse_window(args.quiet_hours)
        except ValueError as exc:
            raise CliError(f"--quiet-hours: {exc}") from None
        values["quiet_start"], values["quiet_end"] = f"{start:%H:%M}", f"{end:%H:%M}"
    if args.send_rate is not None:
        if not 0 < args.send_rate <= 1000:
            raise CliError(
                f"--send-rate: must be more than 0 and at most 1000 texts a second: {args.send_rate}"
            )
        values["send_rate"] = float(args.send_rate)
    if args.messaging_service_sid is not None:
        if args.messaging_service_sid and not _SID.match(args.messaging_service_sid):
            raise CliError(
                f"--messaging-service-sid: not a Messaging Service SID (MG + 32 hex): "
                f"{args.messaging_service_sid!r}"
            )
        values["messaging_service_sid"] = args.messaging_service_sid or None
    _settings_values(args, values)
    return values


def _describe(site: Site) -> dict[str, Any]:
    cfg = site_config(site)
    return {
        "id": site.id,
        "name": site.name,
        "phone": site.phone,
        "time_zone": site.time_zone,
        "quiet_hours": f"{cfg.quiet_start}-{cfg.quiet_end}",
        "send_rate": cfg.send_rate,
        "messaging_service_sid": cfg.messaging_service_sid,
        "closed_days": [WEEKDAYS[d] for d in cfg.closed_days],
        "sla_hours": cfg.sla_hours,
        "oncall_url": cfg.oncall_webhook_url,
        "fhir_systems": list((site.settings or {}).get("fhir_systems") or []),
        "after_hours_phone": cfg.after_hours_phone,
    }


async def _add(args: argparse.Namespace, values: dict[str, Any]) -> dict[str, Any]:
    extra = {key: values.pop(key) for key in _SETTINGS_KEYS if key in values}
    async with open_store(settings_from_env()) as (_engine, sessionmaker), sessionmaker.begin() as session:
        site = await session.get(Site, args.site_id)
        created = site is None
        moved = site is not None and site.time_zone != values["time_zone"]
        if site is None:
            site = Site(id=args.site_id, settings={}, **values)
            session.add(site)
        else:
            for key, value in values.items():
                setattr(site, key, value)
        if extra:
            current = dict(site.settings or {})
            if "sla_hours" in extra:  # given queues change; the others keep their SLA
                extra["sla_hours"] = {**site_config(site).sla_hours, **extra["sla_hours"]}
            site.settings = {**current, **extra}
        await session.flush()
        _LOGGER.info("site %s %s", site.id, "added" if created else "updated")
        out = _describe(site) | {"created": created}
        if moved:  # due times are local times: a new zone moves every planned row of the site
            summary = await replan(session, patient_ids=None, now=utcnow(), site_id=site.id)
            out["plan"] = summary.as_dict()
        return out


def cmd_add(args: argparse.Namespace) -> int:
    """Add or update a site."""
    values = site_values(args)
    print(json.dumps(asyncio.run(_add(args, values))))
    return 0


async def _list() -> list[dict[str, Any]]:
    async with open_store(settings_from_env()) as (_engine, sessionmaker), sessionmaker() as session:
        return [_describe(site) for site in await session.scalars(select(Site).order_by(Site.id))]


def cmd_list(_args: argparse.Namespace) -> int:
    """Print the sites."""
    for site in asyncio.run(_list()):
        print(json.dumps(site))
    return 0
