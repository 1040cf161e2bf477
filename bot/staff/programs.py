"""A site's outreach programs for its clinic admins: load (paused or active), pause, resume, all audited, and
each program's schedule in words.

The CLI (`midbot programs load|pause|resume`) and the /programs page call the same functions, so a load from
either re-plans the same way and leaves the same audit row: ``programs.load`` with the YAML before and after.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import audit
from bot.db.models import Program, Site
from bot.db.unit import in_session
from scheduler.cron import parse_cron
from scheduler.planner import PlanSummary, replan
from scheduler.programs import (
    ProgramChange,
    ProgramSpec,
    default_programs,
    replace_site_programs,
    set_paused,
    site_programs,
    stored_yaml,
)

__all__ = [
    "LoadOutcome",
    "SiteProgram",
    "SwitchOutcome",
    "current_yaml",
    "describe_schedule",
    "describe_when",
    "list_site_programs",
    "load_programs",
    "sites_with",
    "switch_programs",
]

_LOGGER = logging.getLogger(__name__)

_EVENTS = {
    "received": "a new prescription is received",
    "pa_approved": "the prior authorization is approved",
    "ready": "the order is ready",
    "shipped": "the order ships",
    "not_picked_up": "the order is reported not picked up",
}
_PAYERS = {
    "commercial": "commercial insurance",
    "medicare_d": "Medicare Part D",
    "medicaid": "Medicaid",
    "cash": "cash",
    "other": "other payers",
}
_LANGUAGES = {"en": "English", "es": "Spanish"}
_WEEKDAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_DOW_NAMES = {name: i for i, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}


def _and(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    items = list(items)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _days(days: Sequence[int], relation: str, anchor: str) -> str:
    """ "5 and 2 days before the supply runs out"; day 0 is "on the day ..."."""
    ordered = sorted(set(days), reverse=relation == "before")
    counted = [d for d in ordered if d]
    parts = []
    if counted:
        unit = "day" if counted == [1] else "days"
        parts.append(f"{_and([str(d) for d in counted])} {unit} {relation} {anchor}")
    if 0 in ordered:
        parts.append(f"on the day {anchor}")
    return " and ".join(parts)


def _weekday(token: str) -> str | None:
    token = token.strip().lower()
    if token.isdigit() and 0 <= int(token) <= 7:
        return _WEEKDAYS[int(token) % 7]
    return _WEEKDAYS[_DOW_NAMES[token]] if token in _DOW_NAMES else None


def _cron_words(expr: str) -> str:
    """Common cron shapes in words ("every Monday at 10:00, site time"); the expression itself otherwise."""
    parse_cron(expr)  # already validated; raises on anything else
    minute, hour, dom, month, dow = expr.split()
    if minute.isdigit() and hour.isdigit() and month == "*":
        at = f"{int(hour):02d}:{int(minute):02d}"
        if dom == "*" and dow == "*":
            return f"every day at {at}, site time"
        days = [_weekday(t) for t in dow.split(",")] if dom == "*" else []
        if days and all(days):
            return f"every {_and([d for d in days if d])} at {at}, site time"
        if dow == "*" and dom.isdigit():
            return f"on day {int(dom)} of every month at {at}, site time"
    return f"on the cron schedule “{expr}”, site time"


def describe_schedule(spec: ProgramSpec) -> str:
    """When a program texts, in words: "5 and 2 days before the supply runs out, 10:00 patient time"."""
    trigger, at = spec.trigger, f"{spec.send_at} patient time"
    if trigger.run_out is not None:
        return f"{_days(trigger.run_out.days_before, 'before', 'the supply runs out')}, {at}"
    if trigger.first_fill is not None:
        words = _days(trigger.first_fill.days_after, "after", "the first fill")
        if trigger.first_fill.then_every:
            words += f", then every {trigger.first_fill.then_every} days while the therapy lasts"
        return f"{words}, {at}"
    if trigger.cron is not None:
        return _cron_words(trigger.cron)
    assert trigger.event is not None
    event = _EVENTS[trigger.event.name]
    days = trigger.event.after_days
    if days == 0:
        return f"on the day {event}, {at}"
    return f"{days} day{'s' if days != 1 else ''} after {event}, {at}"


def describe_when(spec: ProgramSpec) -> str:
    """Who a program is for, in words ("everyone" without conditions)."""
    when, parts = spec.when, []
    if when.drugs:
        parts.append(f"drug {_and(when.drugs)}")
    if when.therapy_classes:
        parts.append(f"therapy class {_and(when.therapy_classes)}")
    if when.payer_types:
        parts.append(_and([_PAYERS[p] for p in when.payer_types]))
    if when.copay_at_least is not None:
        parts.append(f"last copay ${when.copay_at_least:,.0f} or more")
    if when.languages:
        parts.append(f"{_and([_LANGUAGES[x] for x in when.languages])} speakers")
    if when.sites:
        parts.append(f"sites {_and(when.sites)}")
    return "; ".join(parts) if parts else "every patient"


@dataclass(frozen=True)
class SiteProgram:
    """One of a site's programs as the page lists it."""

    spec: ProgramSpec
    paused: bool
    source: str  # "site" (loaded) or "default" (the shipped set; the site never loaded its own)

    @property
    def schedule(self) -> str:
        """The schedule in words."""
        return describe_schedule(self.spec)

    @property
    def audience(self) -> str:
        """Who it is for, in words."""
        return describe_when(self.spec)


async def list_site_programs(session: AsyncSession, site_id: str) -> list[SiteProgram]:
    """The site's current programs, paused ones included, in file order (the defaults if it loaded none)."""
    current = await site_programs(session, [site_id])
    has_rows = await session.scalar(select(Program.id).where(Program.site_id == site_id).limit(1))
    if has_rows is None:
        return [SiteProgram(spec, False, "default") for spec in default_programs()]
    programs = [(p.pk or 0, SiteProgram(p.spec, False, "site")) for p in current.active[site_id]]
    programs += [(p.pk or 0, SiteProgram(p.spec, True, "site")) for p in current.paused[site_id]]
    return [program for _pk, program in sorted(programs, key=lambda item: item[0])]


@dataclass
class LoadOutcome:
    """What a load did (or, rolled back, would do): the programs changed and the plan's counts."""

    change: ProgramChange
    plan: PlanSummary

    def as_dict(self) -> dict[str, Any]:
        """The JSON line `programs load` prints."""
        return self.change.as_dict() | {
            "plan": self.plan.as_dict(),
            "plan_by_program": self.plan.by_program(),
        }


async def load_programs(
    session: AsyncSession,
    site_id: str,
    specs: Sequence[ProgramSpec],
    *,
    text: str,
    paused: bool,
    now: datetime,
    actor: str,
    source: str,
) -> LoadOutcome:
    """Make ``specs`` (read from ``text``) the site's programs, re-plan what changed, and audit it.

    The audit row ``programs.load`` holds the YAML before and after. Roll the session back for a dry run:
    nothing of it, the audit row included, is then kept.

    Raises:
        LookupError: no such site.
    """
    change = await replace_site_programs(session, site_id, specs, paused=paused, source_text=text)
    program_ids = None if change.was_default else change.changed_pks
    plan = PlanSummary()
    if program_ids != set():
        plan = await replan(session, patient_ids=None, now=now, program_ids=program_ids, site_id=site_id)
    detail = change.as_dict() | {
        "source": source,
        "state": "paused" if paused else "active",
        "plan": plan.as_dict(),
        "before": change.yaml_before,
        "after": text,
    }
    detail.pop("site")
    await in_session(
        session,
        audit.record,
        actor=actor,
        action="programs.load",
        site_id=site_id,
        target=f"site:{site_id}",
        detail=detail,
        at=now,
    )
    return LoadOutcome(change, plan)


@dataclass
class SwitchOutcome:
    """A pause or resume: the programs switched, those already in that state, and the plan's counts."""

    site_id: str
    paused: bool
    switched: list[str]
    already: list[str]
    plan: PlanSummary

    def as_dict(self) -> dict[str, Any]:
        """The JSON line `programs pause|resume` prints."""
        return {
            "site": self.site_id,
            "paused" if self.paused else "resumed": self.switched,
            "already": self.already,
            "plan": self.plan.as_dict(),
        }


async def switch_programs(
    session: AsyncSession,
    site_id: str,
    program_ids: Collection[str] | None,
    *,
    paused: bool,
    now: datetime,
    actor: str,
    source: str,
) -> SwitchOutcome:
    """Pause or resume some (or all, ``program_ids`` None) of a site's loaded programs; re-plan; audit.

    Raises:
        LookupError: no such site.
        KeyError: program ids the site has not loaded.
    """
    change = await set_paused(session, site_id, program_ids, paused)
    plan = PlanSummary()
    if change.pks:
        plan = await replan(session, patient_ids=None, now=now, program_ids=change.pks, site_id=site_id)
    await in_session(
        session,
        audit.record,
        actor=actor,
        action="programs.pause" if paused else "programs.resume",
        site_id=site_id,
        target=f"site:{site_id}",
        detail={"source": source, "programs": change.switched, "plan": plan.as_dict()},
        at=now,
    )
    return SwitchOutcome(site_id, paused, change.switched, change.already, plan)


async def sites_with(session: AsyncSession, program_ids: Collection[str]) -> list[str]:
    """The sites that have loaded programs (these ids, when given): for a command given no --site."""
    query = select(Program.site_id).where(Program.active.is_(True)).distinct().order_by(Program.site_id)
    if program_ids:
        query = query.where(Program.program_id.in_(list(program_ids)))
    return list(await session.scalars(query))


async def current_yaml(session: AsyncSession, site_id: str) -> str:
    """The site's programs as YAML to edit: the text last loaded, else the defaults' file (or the specs)."""
    site = await session.get(Site, site_id)
    if site is None:
        raise LookupError(site_id)
    rows = list(await session.scalars(select(Program).where(Program.site_id == site_id)))
    return stored_yaml(site, rows)
