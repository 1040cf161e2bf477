"""The /programs page: a clinic admin sees the site's programs in words, edits or uploads the YAML, reads the
linter's findings beside the lines they are about, previews what would go out, and loads it paused or active.

Clinic admins only (others get 403). A load, a pause and a resume go through ``bot.staff.programs``, as the
CLI's do: re-planned and audited (``programs.load`` holds the YAML before and after). A preview reads the
site's patients, so it is audited too (``programs.preview``, counts and ids only).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web

from bot.db import audit
from bot.db.models import Site
from bot.db.unit import in_session
from bot.keys import CLOCK, SESSIONMAKER, SETTINGS, WEB_JINJA
from bot.sms.preview import Preview, preview_programs
from bot.staff.auth import Principal
from bot.staff.programs import (
    current_yaml,
    list_site_programs,
    load_programs,
    switch_programs,
)
from bot.staff.tasks import staff_names
from bot.staff.workspace import humanize
from bot.web.layout import QUEUE_LABELS, ROLE_LABELS, STATIC_PREFIX
from bot.web.routes import Form, setup_web, staff_page
from scheduler.lint import KIND_WORDS, Finding, LintResult, lint_programs, site_languages

__all__ = ["setup_programs_page"]

_LOGGER = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 256 * 1024  # a programs file is a few kilobytes
PREVIEW_DAYS = 14
SAMPLES_PER_LANGUAGE = 3
DONE = {
    "loaded_paused": "Programs loaded, paused: nothing is planned or sent for them until you resume them.",
    "loaded_active": "Programs loaded and active: their texts are planned and go out as scheduled.",
    "resumed": "Resumed: their texts are planned and go out as scheduled.",
    "paused": "Paused: nothing is planned or sent for them until you resume them.",
}
HELD = {
    "no_consent": "no SMS consent",
    "opted_out": "opted out of texts",
    "opted_out_program": "asked to stop this kind of text",
    "wrong_number": "wrong number on file",
    "discontinued": "prescription not active",
    "deadline": "past its deadline",
}
LANGUAGE_NAMES = {"en": "English", "es": "Spanish"}


class _Invalid(Exception):
    """A form field that cannot be used: re-render with the message next to it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


@dataclass
class _Submitted:
    """What the form sent: the YAML text (from the upload or the text area), the price and the days."""

    text: str
    price: float
    days: int
    uploaded: str = ""


@dataclass
class _Line:
    """One numbered line of the YAML with the findings about it (the listing shows them inline)."""

    number: int
    text: str
    findings: list[Finding] = field(default_factory=list)


def _money(value: float) -> str:
    return f"${value:,.2f}" if value >= 1 or value == 0 else f"${value:,.4f}".rstrip("0")


def _listing(text: str, findings: list[Finding]) -> list[_Line]:
    lines = [_Line(i, line) for i, line in enumerate(text.splitlines() or [""], start=1)]
    for finding in findings:
        index = min(max(finding.line, 1), len(lines)) - 1
        lines[index].findings.append(finding)
    return lines


def _preview_context(preview: Preview, price: float) -> dict[str, Any]:
    """The preview as the page shows it: per day, samples per language, held, expected tasks, cost."""
    zone = ZoneInfo(preview.time_zone)
    days: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    samples: dict[str, list[Any]] = defaultdict(list)
    seen: set[tuple[str, tuple[str, ...]]] = set()
    for text in preview.texts:
        day = text.due_at.astimezone(zone).strftime("%a %d %b")
        days[day][0] += 1
        days[day][1] += text.segments
        key = (text.language, tuple(text.program_ids))
        if key not in seen and len(samples[text.language]) < SAMPLES_PER_LANGUAGE:
            seen.add(key)
            samples[text.language].append(text)
    summary = preview.summary()
    tasks = preview.expected_tasks
    return {
        "summary": summary,
        "cost": _money(summary["segments"] * price),
        "days": [(day, n, segs, _money(segs * price)) for day, (n, segs) in days.items()],
        "samples": [(LANGUAGE_NAMES.get(lang, lang), texts) for lang, texts in sorted(samples.items())],
        "held": [
            (HELD.get(reason, humanize(reason)), n) for reason, n in Counter(preview.held).most_common()
        ],
        "tasks": None if tasks is None else [(QUEUE_LABELS.get(q, humanize(q)), n) for q, n in tasks.items()],
        "zone": preview.time_zone,
    }


async def _page(
    request: web.Request,
    principal: Principal,
    *,
    submitted: _Submitted | None = None,
    lint: LintResult | None = None,
    preview: Preview | None = None,
    invalid: _Invalid | None = None,
    status: int = 200,
) -> web.Response:
    app = request.app
    settings = app[SETTINGS]
    async with app[SESSIONMAKER]() as session:
        site = await session.get(Site, principal.site_id)
        assert site is not None
        programs = await list_site_programs(session, principal.site_id)
        stored = await current_yaml(session, principal.site_id)
        history, _total = await audit.list_events(
            session, site_id=principal.site_id, action="programs.load", limit=5, newest_first=True
        )
        ids = {int(e.actor.split(":", 1)[1]) for e in history if e.actor.startswith("user:")}
        names = await staff_names(session, principal.site_id, ids)
    text = submitted.text if submitted is not None else stored
    findings = lint.findings if lint is not None else []
    context = {
        "principal": principal,
        "site": site,
        "csrf": principal.csrf_token,
        "role_label": ROLE_LABELS.get(principal.role, principal.role),
        "queue_labels": QUEUE_LABELS,
        "static": STATIC_PREFIX,
        "programs": programs,
        "kind_words": KIND_WORDS,
        "any_paused": any(p.paused for p in programs),
        "on_defaults": bool(programs) and programs[0].source == "default",
        "yaml_text": text,
        "uploaded": submitted.uploaded if submitted is not None else "",
        "price": submitted.price if submitted is not None else settings.segment_price_usd,
        "days": submitted.days if submitted is not None else PREVIEW_DAYS,
        "checked": lint is not None,
        "errors": [f for f in findings if f.severity == "error"],
        "warnings": [f for f in findings if f.severity == "warning"],
        "listing": _listing(text, findings) if lint is not None else [],
        "preview": _preview_context(preview, submitted.price) if preview and submitted else None,
        "invalid": invalid,
        "done": DONE.get(request.query.get("done", ""), ""),
        "history": history,
        "actors": {f"user:{i}": name for i, name in names.items()} | {audit.SYSTEM: "the command line"},
    }
    response = aiohttp_jinja2.render_template(
        "programs.html", request, context, app_key=WEB_JINJA, status=status
    )
    response.headers["Cache-Control"] = "no-store"
    return response


async def _forbidden(request: web.Request, principal: Principal) -> web.Response:
    async with request.app[SESSIONMAKER]() as session:
        site = await session.get(Site, principal.site_id)
    context = {
        "status": 403,
        "message": "Only clinic admins can see and change the site's programs.",
        "static": STATIC_PREFIX,
        "principal": principal,
        "csrf": principal.csrf_token,
        "role_label": ROLE_LABELS.get(principal.role, principal.role),
        "site": site,
    }
    return aiohttp_jinja2.render_template("error.html", request, context, app_key=WEB_JINJA, status=403)


@staff_page
async def programs_page(request: web.Request, principal: Principal, _form: Form | None) -> web.StreamResponse:
    """GET /programs: the site's programs in words, the YAML to edit, and the load history."""
    if principal.role != "clinic_admin":
        return await _forbidden(request, principal)
    return await _page(request, principal)


def _number(form: Form, name: str, low: float, high: float, default: float, what: str) -> float:
    raw = str(form.get(name, "") or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise _Invalid(name, f"{what}: enter a number") from None
    if not low <= value <= high:
        raise _Invalid(name, f"{what}: enter a number from {low:g} to {high:g}")
    return value


def _submitted(form: Form, default_price: float) -> _Submitted:
    """The YAML (an uploaded file wins over the text area), the price per segment and the preview days."""
    text, uploaded = str(form.get("yaml", "") or ""), ""
    upload = form.get("file")
    if isinstance(upload, web.FileField) and upload.filename:
        raw = upload.file.read(MAX_UPLOAD_BYTES + 1)
        if len(raw) > MAX_UPLOAD_BYTES:
            raise _Invalid("file", f"the file is larger than {MAX_UPLOAD_BYTES // 1024} KB")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise _Invalid(
                "file", "the file is not UTF-8 text; save it as UTF-8 and upload it again"
            ) from None
        uploaded = upload.filename[:200]
    text = text.replace("\r\n", "\n")
    if not text.strip():
        raise _Invalid("yaml", "paste the programs YAML or choose a file")
    price = _number(form, "price", 0, 1, default_price, "Price per segment")
    days = int(_number(form, "days", 1, 60, PREVIEW_DAYS, "Days to preview"))
    return _Submitted(text, price, days, uploaded)


async def _lint(request: web.Request, principal: Principal, text: str) -> LintResult:
    async with request.app[SESSIONMAKER]() as session:
        languages = await site_languages(session, principal.site_id)
    return lint_programs(
        text, segment_limit=request.app[SETTINGS].max_template_segments, site_languages=languages
    )


async def _preview(request: web.Request, principal: Principal, lint: LintResult, days: int) -> Preview:
    app = request.app
    now: datetime = app[CLOCK].now()
    async with app[SESSIONMAKER]() as session:
        try:
            preview = await preview_programs(session, principal.site_id, lint.specs or [], now=now, days=days)
        finally:
            await session.rollback()  # read only: nothing of a preview is kept
    async with app[SESSIONMAKER].begin() as session:  # the texts name patients: a staff read, audited
        await in_session(
            session,
            audit.record,
            actor=principal.actor,
            action="programs.preview",
            site_id=principal.site_id,
            target=f"site:{principal.site_id}",
            detail={"texts": len(preview.texts), "patients": len({t.patient_id for t in preview.texts})},
            at=now,
        )
    return preview


@staff_page
async def programs_submit(
    request: web.Request, principal: Principal, form: Form | None
) -> web.StreamResponse:
    """POST /programs: check (lint + preview) the YAML, or load it paused or active."""
    if principal.role != "clinic_admin":
        return await _forbidden(request, principal)
    assert form is not None
    action = str(form.get("action", ""))
    if action not in ("check", "load_paused", "load_active"):
        return await _page(request, principal, invalid=_Invalid("action", "choose Check, Load paused or Load"),
                           status=400)  # fmt: skip
    try:
        submitted = _submitted(form, request.app[SETTINGS].segment_price_usd)
    except _Invalid as exc:
        keep = _Submitted(
            str(form.get("yaml", "") or ""), request.app[SETTINGS].segment_price_usd, PREVIEW_DAYS
        )
        return await _page(request, principal, submitted=keep, invalid=exc, status=400)
    lint = await _lint(request, principal, submitted.text)
    if lint.specs is None:
        return await _page(request, principal, submitted=submitted, lint=lint, status=400)
    if action == "check":
        preview = await _preview(request, principal, lint, submitted.days)
        return await _page(request, principal, submitted=submitted, lint=lint, preview=preview)
    paused = action == "load_paused"
    async with request.app[SESSIONMAKER].begin() as session:
        await load_programs(session, principal.site_id, lint.specs, text=submitted.text, paused=paused,
                            now=request.app[CLOCK].now(), actor=principal.actor, source="web")  # fmt: skip
    raise web.HTTPSeeOther(f"/programs?done={action.replace('load_', 'loaded_')}")


@staff_page
async def programs_switch(
    request: web.Request, principal: Principal, form: Form | None
) -> web.StreamResponse:
    """POST /programs/switch: pause or resume one loaded program (``program``) or all of them (``all``)."""
    if principal.role != "clinic_admin":
        return await _forbidden(request, principal)
    assert form is not None
    state = str(form.get("state", ""))
    program = str(form.get("program", "")).strip()
    if state not in ("pause", "resume") or not program:
        return await _page(request, principal, invalid=_Invalid("state", "choose a program to pause or resume"),
                           status=400)  # fmt: skip
    try:
        async with request.app[SESSIONMAKER].begin() as session:
            await switch_programs(session, principal.site_id, None if program == "*" else [program],
                                  paused=state == "pause", now=request.app[CLOCK].now(), actor=principal.actor,
                                  source="web")  # fmt: skip
    except KeyError:
        return await _page(request, principal, invalid=_Invalid("program", "that program is not loaded"),
                           status=400)  # fmt: skip
    raise web.HTTPSeeOther(f"/programs?done={'paused' if state == 'pause' else 'resumed'}")


def setup_programs_page(app: web.Application) -> None:
    """Register /programs (after the staff pages, whose templates and sign-in it shares)."""
    setup_web(app)  # idempotent: the page extends the staff pages' base template
    if "web.programs" in app.router.named_resources():
        return
    app.router.add_get("/programs", programs_page, name="web.programs")
    app.router.add_post("/programs", programs_submit, name="web.programs_submit")
    app.router.add_post("/programs/switch", programs_switch, name="web.programs_switch")
