"""Outreach programs: the YAML a clinic writes, validated with line numbers, and stored per site."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import string
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import time, timedelta
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Program, Site
from bot.db.sitecfg import PAUSED_PROGRAMS, PROGRAMS_YAML, parse_hhmm
from conversations.templates import CUSTOM_PLACEHOLDERS
from scheduler.cron import parse_cron

__all__ = [
    "ActiveProgram",
    "Kind",
    "ProgramChange",
    "ProgramError",
    "ProgramFileError",
    "ProgramSpec",
    "Trigger",
    "When",
    "PauseChange",
    "SitePrograms",
    "active_programs",
    "compose",
    "default_programs",
    "default_yaml",
    "line_of",
    "load_default_programs",
    "load_programs_file",
    "parse_programs",
    "read_programs_file",
    "replace_site_programs",
    "set_paused",
    "site_programs",
    "spec_digest",
    "spec_json",
    "stored_yaml",
]

_LOGGER = logging.getLogger(__name__)

Kind = Literal[
    "refill_reminder", "side_effect_checkin", "copay_assistance", "new_start", "abandonment_recovery"
]
EventName = Literal["received", "pa_approved", "ready", "shipped", "not_picked_up"]
PayerType = Literal["commercial", "medicare_d", "medicaid", "cash", "other"]
Day = Annotated[int, Field(ge=0, le=366)]
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
DEFAULT_SET = "oncology.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _as_list(value: Any) -> Any:
    """Let a single day be written as a number (``days_before: 5``)."""
    return [value] if isinstance(value, int) and not isinstance(value, bool) else value


class RunOut(_Strict):
    """Days before the run-out date (last fill + supply, early refills carried forward)."""

    days_before: list[Annotated[int, Field(ge=0, le=60)]] = Field(min_length=1)

    @field_validator("days_before", mode="before")
    @classmethod
    def _list(cls, value: Any) -> Any:
        return _as_list(value)


class FirstFill(_Strict):
    """Days after the therapy's first fill, then every N days while the therapy lasts."""

    days_after: list[Day] = Field(min_length=1)
    then_every: int | None = Field(default=None, ge=1, le=365)

    @field_validator("days_after", mode="before")
    @classmethod
    def _list(cls, value: Any) -> Any:
        return _as_list(value)


class EventTrigger(_Strict):
    """Days after a dispensary event on the prescription."""

    name: EventName
    after_days: int = Field(default=0, ge=0, le=60)


class Trigger(_Strict):
    """Exactly one of run_out, first_fill, cron or event."""

    run_out: RunOut | None = None
    first_fill: FirstFill | None = None
    cron: str | None = None
    event: EventTrigger | None = None

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            parse_cron(value)
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Trigger:
        given = [
            name for name in ("run_out", "first_fill", "cron", "event") if getattr(self, name) is not None
        ]
        if len(given) != 1:
            raise ValueError(f"needs exactly one of run_out, first_fill, cron, event (got {len(given)})")
        return self

    @property
    def type(self) -> str:
        """The trigger's name: run_out, first_fill, cron or event."""
        return next(n for n in ("run_out", "first_fill", "cron", "event") if getattr(self, n) is not None)


class When(_Strict):
    """Conditions, all optional; an empty list means any."""

    drugs: list[str] = []
    therapy_classes: list[str] = []
    payer_types: list[PayerType] = []
    copay_at_least: float | None = Field(default=None, ge=0)
    languages: list[Literal["en", "es"]] = []
    sites: list[str] = []


class Templates(_Strict):
    """Wording that replaces the kind's built-in text."""

    en: str | None = Field(default=None, min_length=1, max_length=1000)
    es: str | None = Field(default=None, min_length=1, max_length=1000)


class ProgramSpec(_Strict):
    """One program as written in the YAML file."""

    id: str
    kind: Kind
    trigger: Trigger
    when: When = When()
    send_at: str = "10:00"
    expire_after_hours: int = Field(default=24, ge=1, le=336)
    templates: Templates | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError("use 1-100 letters, digits, '-', '_' or '.'")
        return value

    @field_validator("send_at")
    @classmethod
    def _send_at(cls, value: str) -> str:
        at = parse_hhmm(value)
        if not time(8, 0) <= at < time(21, 0):
            raise ValueError("must be between 08:00 and 21:00 (the legal sending window)")
        return f"{at:%H:%M}"

    @property
    def send_time(self) -> time:
        """``send_at`` as a time."""
        return parse_hhmm(self.send_at)


class _File(_Strict):
    programs: list[ProgramSpec]


@dataclass(frozen=True)
class ProgramError:
    """One problem in a programs file."""

    line: int
    field: str
    reason: str

    def render(self, source: str) -> str:
        """``FILE:LINE: field: reason``."""
        return f"{source}:{self.line}: {self.field}: {self.reason}"


class ProgramFileError(Exception):
    """A programs file did not validate; ``errors`` lists every problem with its line."""

    def __init__(self, errors: list[ProgramError]) -> None:
        super().__init__(f"{len(errors)} error(s) in programs file")
        self.errors = errors


def _child(node: yaml.Node, key: str | int) -> tuple[yaml.Node, yaml.Node] | None:
    """(marker node, value node) for a mapping key or sequence index; the marker is the key itself."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if getattr(key_node, "value", None) == key:
                return key_node, value_node
    elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
        return node.value[key], node.value[key]
    return None


def line_of(root: yaml.Node, loc: Sequence[str | int]) -> int:
    """The 1-based line of the key (or list item) at ``loc``, or of the deepest part of it that exists."""
    node, marker = root, root
    for key in loc:
        found = _child(node, key)
        if found is None:
            break
        marker, node = found
    return marker.start_mark.line + 1


def _field_name(loc: Sequence[str | int]) -> str:
    out = ""
    for key in loc:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out or "programs"


def _reason(message: str) -> str:
    return message.removeprefix("Value error, ")


def _duplicates(root: yaml.Node, specs: list[ProgramSpec]) -> list[ProgramError]:
    seen: set[str] = set()
    errors = []
    for i, spec in enumerate(specs):
        if spec.id in seen:
            loc = ("programs", i, "id")
            errors.append(ProgramError(line_of(root, loc), _field_name(loc), f"duplicate id {spec.id!r}"))
        seen.add(spec.id)
    return errors


# A programs file is a list of small mappings: a few levels deep and a few hundred nodes. Far beyond that is
# not a mistake but an attack on the parser (deep nesting, or aliases that expand a billion times).
_MAX_DEPTH = 32
_MAX_NODES = 100_000


def _check_shape(root: yaml.Node | None) -> None:
    """Raise ProgramFileError when the document nests deeper than _MAX_DEPTH or, with its aliases expanded,
    holds more than _MAX_NODES nodes (walked without recursion; an alias is a node shared by reference)."""
    if root is None:
        return
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        if depth > _MAX_DEPTH:
            raise ProgramFileError(
                [ProgramError(node.start_mark.line + 1, "yaml", f"nested deeper than {_MAX_DEPTH} levels")]
            )
        children = _children(node)
        if done or not children:
            sizes[id(node)] = 1 + sum(sizes[id(child)] for child in children)
            if sizes[id(node)] > _MAX_NODES:
                reason = f"more than {_MAX_NODES} values once its aliases are expanded"
                raise ProgramFileError([ProgramError(1, "yaml", reason)])
            continue
        if id(node) in sizes:
            continue
        stack.append((node, depth, True))
        stack.extend((child, depth + 1, False) for child in children if id(child) not in sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def parse_programs(text: str) -> list[ProgramSpec]:
    """Validate a programs YAML document.

    Raises:
        ProgramFileError: listing every problem with its 1-based line, field path and reason.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        _check_shape(root)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise ProgramFileError([ProgramError(line, "yaml", str(exc.problem or exc))]) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (NUL, other controls)
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        reason = f"character #x{exc.character:04x} is not allowed in YAML"
        raise ProgramFileError([ProgramError(line, "yaml", reason)]) from None
    except RecursionError:  # nested past the parser's stack: deeper than _MAX_DEPTH anyway
        raise ProgramFileError([ProgramError(1, "yaml", f"nested deeper than {_MAX_DEPTH} levels")]) from None
    if root is None or not isinstance(data, dict):
        raise ProgramFileError(
            [ProgramError(1, "programs", "the file must hold a mapping with a 'programs' list")]
        )
    try:
        specs = _File.model_validate(data).programs
    except ValidationError as exc:
        errors = [
            ProgramError(line_of(root, e["loc"]), _field_name(e["loc"]), _reason(e["msg"]))
            for e in exc.errors()
        ]
        raise ProgramFileError(errors) from None
    problems = _duplicates(root, specs) + _placeholders(root, specs)
    if problems:
        raise ProgramFileError(problems)
    return specs


# Values a clinic's wording may use that only some triggers always know. A template naming one where it may be
# unknown could not be formatted, and the patient would get midbot's built-in wording instead: an error.
_NEEDS_FILL = {"copay": "copay", "days": "run-out date"}
_UNKNOWN_FOR: dict[str, frozenset[str]] = {
    "cron": frozenset({"copay", "days"}),  # any active prescription, filled or not
    "event": frozenset({"copay"}),  # received, ready, not picked up: often before any fill is recorded
}
_TRIGGER_WORDS = {"cron": "a cron trigger", "event": "an event trigger"}


def template_problems(wording: str, trigger_type: str) -> list[str]:
    """Why a clinic template could not be sent as written (each reason once), or [] when it always formats."""
    try:
        parts = list(string.Formatter().parse(wording))
    except ValueError:
        return ["a single { or } (write {{ or }} for a literal brace)"]
    problems: list[str] = []
    for _text, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in CUSTOM_PLACEHOLDERS:
            problems.append(f"unknown placeholder {{{name}}}")
        elif spec or conversion:
            problems.append(f"{{{name}}} cannot take a format ('!' or ':'); write {{{name}}}")
        elif name in _UNKNOWN_FOR.get(trigger_type, frozenset()):
            problems.append(
                f"{{{name}}} is not always known for {_TRIGGER_WORDS[trigger_type]} (a prescription may have "
                f"no fill yet, so no {_NEEDS_FILL[name]}): those patients would get midbot's built-in wording"
            )
    return list(dict.fromkeys(problems))


def _placeholders(root: yaml.Node, specs: list[ProgramSpec]) -> list[ProgramError]:
    """A template midbot could not fill for every patient would not be sent as the clinic wrote it: an error."""
    errors = []
    for i, spec in enumerate(specs):
        for language in ("en", "es"):
            wording = getattr(spec.templates, language, None) if spec.templates else None
            for reason in template_problems(wording or "", spec.trigger.type):
                loc = ("programs", i, "templates", language)
                errors.append(ProgramError(line_of(root, loc), f"templates.{language}", reason))
    return errors


def read_programs_file(path: str | Path) -> str:
    """A programs file's text; raises ProgramFileError (line 0 when it cannot be read; a bad byte's line)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ProgramFileError([ProgramError(0, "file", f"cannot read: {exc.strerror or exc}")]) from None
    try:
        return raw.decode("utf-8-sig")  # a byte-order mark some editors write is fine
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        reason = f"not UTF-8 (byte 0x{raw[exc.start]:02x}); save the file as UTF-8"
        raise ProgramFileError([ProgramError(line, "file", reason)]) from None


def load_programs_file(path: str | Path) -> list[ProgramSpec]:
    """Read and validate a programs file; raises ProgramFileError (line 0 when the file cannot be read)."""
    return parse_programs(read_programs_file(path))


def default_programs() -> list[ProgramSpec]:
    """The program set shipped with midbot (scheduler/defaults/oncology.yaml); used by sites without their own."""
    return list(_default_set())


@lru_cache(maxsize=1)
def _default_set() -> tuple[ProgramSpec, ...]:
    text = resources.files("scheduler").joinpath("defaults", DEFAULT_SET).read_text(encoding="utf-8")
    return tuple(parse_programs(text))


def spec_json(spec: ProgramSpec) -> dict[str, Any]:
    """The spec as stored in Program.spec (defaults filled in, absent options left out)."""
    return spec.model_dump(mode="json", exclude_none=True)


def spec_digest(spec: ProgramSpec) -> str:
    """A stable SHA-256 of the spec: an unchanged program re-loaded is a no-op."""
    return hashlib.sha256(json.dumps(spec_json(spec), sort_keys=True).encode()).hexdigest()


@dataclass
class ProgramChange:
    """What a load did to a site's programs."""

    site_id: str
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    paused: list[str] = field(default_factory=list)
    changed_pks: set[int] = field(default_factory=set)
    was_default: bool = False
    yaml_before: str = ""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "site": self.site_id,
            "added": self.added,
            "updated": self.updated,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "paused": self.paused,
        }


def _paused_of(settings: dict[str, Any] | None) -> set[str]:
    return {str(p) for p in (settings or {}).get(PAUSED_PROGRAMS) or ()}


def default_yaml() -> str:
    """The shipped default set's YAML text (what a site that never loaded programs runs)."""
    return resources.files("scheduler").joinpath("defaults", DEFAULT_SET).read_text(encoding="utf-8")


def stored_yaml(site: Site, rows: Sequence[Program]) -> str:
    """The site's programs as YAML: the text last loaded, else the defaults' file, else the stored specs."""
    text = (site.settings or {}).get(PROGRAMS_YAML)
    if isinstance(text, str) and text:
        return text
    active = [r for r in rows if r.active]
    if not rows:
        return default_yaml()
    return yaml.safe_dump({"programs": [r.spec for r in active]}, sort_keys=False, allow_unicode=True)


async def replace_site_programs(
    session: AsyncSession,
    site_id: str,
    specs: Sequence[ProgramSpec],
    *,
    paused: bool = False,
    source_text: str | None = None,
) -> ProgramChange:
    """Make ``specs`` the site's programs: add new ones, update edited ones, deactivate the rest.

    Program rows are kept (outreach rows point at them), so a removed program is marked inactive. The caller
    re-plans: ``changed_pks`` are the programs whose outreach may change (all of them if ``was_default``),
    including the ones whose paused state flipped.

    Args:
        session: the unit of work (the site row must exist).
        site_id: the site.
        specs: the new set.
        paused: load every program of the set paused: nothing is planned or sent for it until resumed.
        source_text: the YAML the set was read from, kept to show and audit (``yaml_before`` is the old one).
    """
    site = await session.get(Site, site_id)
    if site is None:
        raise LookupError(site_id)
    rows = {
        p.program_id: p for p in (await session.scalars(select(Program).where(Program.site_id == site_id)))
    }
    change = ProgramChange(site_id, was_default=not rows, yaml_before=stored_yaml(site, list(rows.values())))
    was_paused = _paused_of(site.settings)
    wanted = {spec.id for spec in specs}
    flipped: set[str] = set()
    for spec in specs:
        digest, row = spec_digest(spec), rows.get(spec.id)
        if row is None:
            row = Program(
                site_id=site_id, program_id=spec.id, kind=spec.kind, spec=spec_json(spec), digest=digest
            )
            session.add(row)
            change.added.append(spec.id)
        elif row.digest == digest and row.active:
            change.unchanged.append(spec.id)
            if (spec.id in was_paused) != paused:
                flipped.add(spec.id)
        else:
            row.kind, row.spec, row.digest, row.active = spec.kind, spec_json(spec), digest, True
            change.updated.append(spec.id)
    for program_id, row in rows.items():
        if program_id not in wanted and row.active:
            row.active = False
            change.removed.append(program_id)
    change.paused = sorted(wanted) if paused else []
    settings = {**(site.settings or {}), PAUSED_PROGRAMS: change.paused}
    if source_text is not None:
        settings[PROGRAMS_YAML] = source_text
    site.settings = settings  # a new dict: JSON columns do not track changes made in place
    await session.flush()
    replan = set(change.updated) | set(change.removed) | flipped
    change.changed_pks.update(row.id for row in rows.values() if row.program_id in replan)
    change.changed_pks.update(
        r.id
        for r in await session.scalars(
            select(Program).where(Program.site_id == site_id, Program.program_id.in_(change.added))
        )
    )
    _LOGGER.info(
        "site %s programs: %d added, %d updated, %d removed, %d unchanged, %d paused",
        site_id,
        len(change.added),
        len(change.updated),
        len(change.removed),
        len(change.unchanged),
        len(change.paused),
    )
    return change


@dataclass
class PauseChange:
    """What a pause or resume did: the programs switched (by id and row pk) and the ones already so."""

    site_id: str
    switched: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    pks: set[int] = field(default_factory=set)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {"site": self.site_id, "switched": self.switched, "already": self.already}


async def set_paused(
    session: AsyncSession, site_id: str, program_ids: Collection[str] | None, paused: bool
) -> PauseChange:
    """Pause (or resume) some of a site's loaded programs, or all of them (``program_ids`` None).

    The caller re-plans ``pks``: a paused program's pending outreach is cancelled (reason
    ``program_paused``) and comes back when it is resumed.

    Raises:
        LookupError: no such site.
        KeyError: a program id the site has not loaded (args: the unknown ids, sorted).
    """
    site = await session.get(Site, site_id)
    if site is None:
        raise LookupError(site_id)
    rows = {
        p.program_id: p
        for p in await session.scalars(
            select(Program).where(Program.site_id == site_id, Program.active.is_(True))
        )
    }
    wanted = set(rows) if program_ids is None else set(program_ids)
    unknown = sorted(wanted - set(rows))
    if unknown:
        raise KeyError(*unknown)
    current = _paused_of(site.settings) & set(rows)
    change = PauseChange(site_id)
    for program_id in sorted(wanted):
        if (program_id in current) == paused:
            change.already.append(program_id)
        else:
            change.switched.append(program_id)
            change.pks.add(rows[program_id].id)
    now_paused = current | wanted if paused else current - wanted
    site.settings = {**(site.settings or {}), PAUSED_PROGRAMS: sorted(now_paused)}
    await session.flush()
    _LOGGER.info(
        "site %s: %d program(s) %s", site_id, len(change.switched), "paused" if paused else "resumed"
    )
    return change


async def load_default_programs(session: AsyncSession, site_id: str) -> ProgramChange:
    """Store the shipped default set as the site's programs (idempotent)."""
    return await replace_site_programs(session, site_id, default_programs())


@dataclass
class ActiveProgram:
    """A program as the planner uses it: its row id (None for the shipped defaults), spec and derived values."""

    pk: int | None
    spec: ProgramSpec
    send_time: time = field(init=False)
    expire: timedelta = field(init=False)
    trigger_type: str = field(init=False)
    drugs: frozenset[str] = field(init=False)
    therapy_classes: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        self.send_time = self.spec.send_time
        self.expire = timedelta(hours=self.spec.expire_after_hours)
        self.trigger_type = self.spec.trigger.type
        self.drugs = frozenset(d.casefold() for d in self.spec.when.drugs)
        self.therapy_classes = frozenset(c.casefold() for c in self.spec.when.therapy_classes)


_SPECS: dict[str, ProgramSpec] = {}  # digest -> validated spec (Program rows are re-read on every plan)


def _stored_spec(row: Program) -> ProgramSpec:
    spec = _SPECS.get(row.digest)
    if spec is None:
        spec = _SPECS[row.digest] = ProgramSpec.model_validate(row.spec)
    return spec


@dataclass
class SitePrograms:
    """Each site's programs as the planner sees them: the ones to plan, and the ones loaded but paused."""

    active: dict[str, list[ActiveProgram]]
    paused: dict[str, list[ActiveProgram]]


async def site_programs(session: AsyncSession, site_ids: Sequence[str]) -> SitePrograms:
    """Each site's current programs, split into active and paused; a site with no program rows at all gets
    the shipped default set (never paused)."""
    out = SitePrograms({s: [] for s in site_ids}, {s: [] for s in site_ids})
    settings = {
        r[0]: r[1] for r in await session.execute(select(Site.id, Site.settings).where(Site.id.in_(site_ids)))
    }
    has_rows: set[str] = set()
    rows = await session.execute(
        select(Program).where(Program.site_id.in_(list(site_ids))).order_by(Program.id)
    )
    for (row,) in rows:
        has_rows.add(row.site_id)
        if row.active:
            paused = row.program_id in _paused_of(settings.get(row.site_id))
            (out.paused if paused else out.active)[row.site_id].append(
                ActiveProgram(row.id, _stored_spec(row))
            )
    defaults = [ActiveProgram(None, spec) for spec in default_programs()]
    for site_id in site_ids:
        if site_id not in has_rows:
            out.active[site_id] = list(defaults)
    return out


async def active_programs(session: AsyncSession, site_ids: Sequence[str]) -> dict[str, list[ActiveProgram]]:
    """Each site's programs to plan (paused ones left out); a site with no program rows gets the defaults."""
    return (await site_programs(session, site_ids)).active


def compose(text: str) -> yaml.Node | None:
    """The YAML node tree of a document ``parse_programs`` accepted (for the line of a field)."""
    return yaml.compose(text, Loader=yaml.SafeLoader)
