"""Staff pages: sign-in, pharmacist queues, the task page with its actions, and the audit trail.

Server-rendered with Jinja2 (autoescaped); the small scripts in ``static/`` are loaded from our own origin
(the Content-Security-Policy forbids inline script). Every form carries the session's CSRF token, and every
query is filtered by the signed-in user's site.
"""

from __future__ import annotations

import base64
import json
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit
from zoneinfo import ZoneInfo

import aiohttp
import aiohttp_jinja2
import jinja2
from aiohttp import web
from multidict import MultiDictProxy
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import audit
from bot.db.models import Message, Patient, Site, Task
from bot.db.unit import in_session
from bot.keys import CLOCK, HTTP, MESSAGING, SESSIONMAKER, SETTINGS, WEB_JINJA
from bot.staff.audit_trail import (
    action_words,
    actor_names,
    audit_choices,
    detail_words,
    named_targets,
    target_words,
)
from bot.staff.auth import (
    CSRF_FIELD,
    LOGIN_CSRF_COOKIE,
    ROLE_QUEUES,
    SESSION_COOKIE,
    SITE_COOKIE,
    BadCredentials,
    LoginThrottled,
    Principal,
    authenticate_password,
    clear_session_cookie,
    constant_time_equal,
    end_session,
    new_csrf_token,
    principal_from_request,
    set_session_cookie,
    set_site_cookie,
    start_session,
)
from bot.staff.network import sites_for_user
from bot.staff.records import list_messages, load_patient_record
from bot.staff.tasks import (
    OUTCOMES,
    QUEUES,
    TaskConflict,
    TaskError,
    TaskInvalid,
    assign_task,
    claim_task,
    colleagues,
    get_task,
    list_tasks,
    log_call,
    move_task,
    queue_summary,
    release_task,
    reply_snippets,
    resolve_task,
    send_reply,
    snooze_task,
    staff_names,
    task_notes,
)
from bot.staff.views import clean_query, delete_view, list_views, save_view
from bot.staff.workspace import (
    INBOX_PAGE,
    PatientHit,
    RowFacts,
    describe_detail,
    humanize,
    recent_conversations,
    reveal_phone,
    row_facts,
    search_patients,
)
from bot.web.layout import QUEUE_LABELS, ROLE_LABELS, STATIC_PREFIX, layout_context
from conversations.symptoms import drug_names

__all__ = ["setup_web"]

_LOGGER = logging.getLogger(__name__)
_HERE = Path(__file__).parent
POLL_SECONDS = 3
OUTCOME_LABELS = {
    "refill_processed": "Refill processed",
    "advice_given": "Advice given",
    "referred_to_clinician": "Referred to clinician",
    "patient_unreachable": "Patient unreachable",
    "copay_assistance_started": "Copay assistance started",
    "no_action_needed": "No action needed",
    "duplicate": "Duplicate",
    "wrong_number": "Wrong number",
    "other": "Other (note required)",
}
# What the task page says after a successful action (the redirect carries only the code).
DONE_MESSAGES = {
    "claim": "You claimed this task.",
    "release": "Task released to its queue.",
    "reply": "Reply stored and sent.",
    "call": "Call logged.",
    "snooze": "Task snoozed.",
    "move": "Task moved.",
    "resolve": "Task resolved.",
    "takeover": "You took over this task.",
    "bulk": "Done for the selected tasks.",
    "view": "View saved: it is in your saved views on this page.",
    "view_deleted": "Saved view deleted.",
    "assign": "Task assigned.",
}
NOTE_LABELS = {
    "claim": "claimed",
    "release": "released",
    "reply": "replied by SMS",
    "call": "call logged",
    "snooze": "snoozed",
    "move": "moved",
    "resolve": "resolved",
    "assign": "assigned to",
    "takeover": "taken over",
    "escalate": "escalated past its SLA",
    "patient_message": "patient wrote",
}
PAYER_LABELS = {
    "commercial": "commercial",
    "medicare_d": "Medicare Part D",
    "medicaid": "Medicaid",
    "cash": "cash",
    "other": "other",
}
TASK_STATUS_LABELS = {"open": "Open", "claimed": "Claimed", "snoozed": "Snoozed", "resolved": "Resolved"}
STATUS_CHOICES = {
    "current": "Open and claimed",
    "open": "Open",
    "claimed": "Claimed",
    "snoozed": "Snoozed",
    "resolved": "Resolved",
}
Form = MultiDictProxy[Any]
PageHandler = Callable[[web.Request, Principal, Form | None], Awaitable[web.StreamResponse]]


# -- rendering helpers -----------------------------------------------------------------------------------


def _render(request: web.Request, name: str, context: dict[str, Any], status: int = 200) -> web.Response:
    response = aiohttp_jinja2.render_template(name, request, context, app_key=WEB_JINJA, status=status)
    response.headers["Cache-Control"] = "no-store"  # pages carry patient data
    return response


def mask_phone(phone: str | None) -> str:
    """Only the last four digits: ``•••-•••-1234``."""
    digits = "".join(ch for ch in (phone or "") if ch.isdigit())
    return f"•••-•••-{digits[-4:]}" if len(digits) >= 4 else "•••"


def human_age(seconds: float | None) -> str:
    """A short age such as ``45 min``, ``3 h 5 min`` or ``2 d 4 h``."""
    if seconds is None:
        return "–"
    minutes = int(max(seconds, 0) // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def _local(value: datetime | None, zone: str) -> str:
    if value is None:
        return ""
    return value.astimezone(ZoneInfo(zone)).strftime("%a %d %b %Y %H:%M")


def _local_full(value: datetime | None, zone: str) -> str:
    """To the second, with the zone's abbreviation: ``Tue 24 Nov 2026 10:00:05 CST`` (audit times)."""
    if value is None:
        return ""
    return value.astimezone(ZoneInfo(zone)).strftime("%a %d %b %Y %H:%M:%S %Z")


def _safe_next(value: str | None) -> str:
    """Only a path on this site (no scheme, no host, no //evil.example)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/queues"
    parts = urlsplit(value)
    return value if not parts.scheme and not parts.netloc else "/queues"


async def _layout(request: web.Request, principal: Principal, site: Site | None = None) -> dict[str, Any]:
    async with request.app[SESSIONMAKER]() as session:
        return await layout_context(session, principal, site)


def _page_of(path: str) -> str:
    """The page a form was posted from: ``/tasks/7/reply`` -> ``/tasks/7``; anything else -> ``/queues``."""
    parts = path.strip("/").split("/")
    if len(parts) >= 2 and parts[0] in ("tasks", "patients") and parts[1] and len(parts[1]) <= 64:
        return "/" + "/".join(parts[:2])
    return "/queues"


async def _error_page(
    request: web.Request, principal: Principal | None, status: int, message: str
) -> web.Response:
    context: dict[str, Any] = {"status": status, "message": message, "static": STATIC_PREFIX}
    if principal is None and request.method == "POST":
        context["sign_in"] = "/login?next=" + quote(_page_of(request.path), safe="/")
    if principal is not None:
        context.update(await _layout(request, principal))
    return _render(request, "error.html", context, status=status)


def staff_page(handler: PageHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Require a signed-in user (else to /login); POSTs must carry the session's CSRF token (else 403)."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            principal = await principal_from_request(request, allow_token=False)
        except BadCredentials:  # pragma: no cover - tokens are not accepted here
            principal = None
        if principal is None:
            if request.method == "GET":
                raise web.HTTPSeeOther(f"/login?next={quote(request.path_qs, safe='/?=&')}")
            # A form sent after the session expired: back to its page once signed in again (a typed reply
            # is kept in the browser meanwhile, see task.js).
            message = "Your session has ended. Sign in again: what you typed is kept on this device."
            return await _error_page(request, None, 403, message)
        form: Form | None = None
        if request.method == "POST":
            form = await request.post()
            if not constant_time_equal(str(form.get(CSRF_FIELD, "")), principal.csrf_token):
                _LOGGER.warning("CSRF check failed for user %s on %s", principal.id, request.path)
                return await _error_page(
                    request, principal, 403, "This form expired or was not sent by midbot."
                )
        return await handler(request, principal, form)

    wrapped.__name__ = handler.__name__
    return wrapped


def _redirect(location: str) -> web.Response:
    """A 303 to ``location`` that can still carry cookies (raised HTTP exceptions lose them in middleware)."""
    return web.Response(status=303, headers={"Location": location})


# -- sign-in ---------------------------------------------------------------------------------------------


def _login_form(
    request: web.Request, *, error: str = "", status: int = 200, email: str = "", next_path: str = ""
) -> web.Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not (20 <= len(token) <= 100):
        token = new_csrf_token()
    context = {
        "csrf": token,
        "next": _safe_next(next_path or request.query.get("next")),
        "error": error,
        "email": email,
        "static": STATIC_PREFIX,
    }
    response = _render(request, "login.html", context, status=status)
    settings = request.app[SETTINGS]
    # Before sign-in there is no session, so the form is protected by a double-submit cookie.
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="Lax", secure=settings.secure_cookies, path="/login"
    )
    return response


def _throttled_form(
    request: web.Request, throttled: LoginThrottled, *, email: str, next_path: str
) -> web.Response:
    if throttled.scope == "account":
        minutes = math.ceil(throttled.retry_after / 60)
        message = (
            f"Too many failed sign-in attempts for this account. Wait {minutes} minute"
            f"{'s' if minutes != 1 else ''} and try again, or ask your clinic admin."
        )
    else:
        message = (
            "Too many failed sign-in attempts from this network. "
            f"Wait {throttled.retry_after} seconds and try again."
        )
    response = _login_form(request, error=message, status=429, email=email, next_path=next_path)
    response.headers["Retry-After"] = str(throttled.retry_after)
    return response


async def login_page(request: web.Request) -> web.StreamResponse:
    """GET /login: the sign-in form (or straight to the queues when already signed in)."""
    if await principal_from_request(request, allow_token=False) is not None:
        raise web.HTTPSeeOther(_safe_next(request.query.get("next")))
    return _login_form(request)


async def login_submit(request: web.Request) -> web.StreamResponse:
    """POST /login: check the CSRF token, the throttle and the password; start a session."""
    form = await request.post()
    if not constant_time_equal(str(form.get(CSRF_FIELD, "")), request.cookies.get(LOGIN_CSRF_COOKIE)):
        return _render(
            request,
            "error.html",
            {
                "status": 403,
                "message": "The sign-in form expired. Reload the page and try again.",
                "static": STATIC_PREFIX,
            },
            status=403,
        )
    email = str(form.get("email", "")).strip()
    password = str(form.get("password", ""))
    next_path = str(form.get("next", ""))
    if not email or not password:
        return _login_form(
            request, error="Enter your email and your password.", status=400, email=email, next_path=next_path
        )
    app = request.app
    now = app[CLOCK].now()
    throttled: LoginThrottled | None = None
    cookie = None
    async with app[SESSIONMAKER].begin() as session:
        try:
            user = await authenticate_password(
                session, email=email, password=password, remote=request.remote or "", now=now
            )
        except LoginThrottled as exc:  # caught inside the transaction, so its audit event commits
            throttled, user = exc, None
        if user is not None:
            cookie, _row = await start_session(
                session, user, now=now, max_age_minutes=app[SETTINGS].session_max_age_minutes
            )
            await in_session(
                session,
                audit.record,
                actor=f"user:{user.id}",
                action="staff.login",
                site_id=user.site_id,
                at=now,
            )
    if throttled is not None:
        return _throttled_form(request, throttled, email=email, next_path=next_path)
    if cookie is None:
        return _login_form(
            request,
            error="That email and password do not match.",
            status=401,
            email=email,
            next_path=next_path,
        )
    response = _redirect(_safe_next(next_path))
    set_session_cookie(response, request, cookie)
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/login")
    response.del_cookie(SITE_COOKIE, path="/")  # every sign-in starts at the user's own site
    return response


@staff_page
async def logout(request: web.Request, principal: Principal, _form: Form | None) -> web.StreamResponse:
    """POST /logout: end the session."""
    async with request.app[SESSIONMAKER].begin() as session:
        await end_session(session, request.cookies.get(SESSION_COOKIE))
        await in_session(
            session,
            audit.record,
            actor=principal.actor,
            action="staff.logout",
            site_id=principal.site_id,
            at=request.app[CLOCK].now(),
        )
    response = _redirect("/login")
    clear_session_cookie(response)
    return response


@staff_page
async def switch_site(request: web.Request, principal: Principal, form: Form | None) -> web.StreamResponse:
    """POST /site: a network user works another of their sites from now on (audited on both sides)."""
    assert form is not None
    wanted = str(form.get("site", "")).strip()
    now = request.app[CLOCK].now()
    async with request.app[SESSIONMAKER].begin() as session:
        home = principal.home_site_id or principal.site_id
        allowed = {site_id for site_id, _name in await sites_for_user(session, principal.id, home)}
        if principal.user_id is None or wanted not in allowed:
            allowed = set()
        else:
            for site_id, action in ((principal.site_id, "staff.site_left"), (wanted, "staff.site_entered")):
                await in_session(session, audit.record, actor=principal.actor, action=action, site_id=site_id,
                                 target=f"site:{wanted if site_id == principal.site_id else principal.site_id}",
                                 at=now)  # fmt: skip
    if not allowed:  # a site the user may not work is as if it did not exist
        return await _error_page(request, principal, 404, "There is no such site among yours.")
    response = _redirect("/queues")
    set_site_cookie(response, request, wanted)
    return response


async def home(request: web.Request) -> web.StreamResponse:
    """GET /: the queues."""
    raise web.HTTPSeeOther("/queues")


# -- queues ----------------------------------------------------------------------------------------------


def _queue_filters(request: web.Request, principal: Principal) -> dict[str, Any]:
    q = request.query
    queue = q.get("queue") or None
    status = q.get("status") or "current"
    priority_raw = q.get("priority") or ""
    if queue is not None and queue not in principal.queues:
        raise TaskInvalid("choose one of your queues", "queue")
    if status not in STATUS_CHOICES:
        raise TaskInvalid("unknown status", "status")
    if priority_raw and priority_raw not in ("1", "2", "3", "4"):
        raise TaskInvalid("priority is 1 to 4", "priority")
    return {
        "queue": queue,
        "status": status,
        "priority": int(priority_raw) if priority_raw else None,
        "mine": q.get("mine") == "1",
        "unassigned": q.get("unassigned") == "1",
        "overdue": q.get("overdue") == "1",
    }


def _task_row(
    t: Task, facts: RowFacts, names: dict[int, str], principal: Principal, now: datetime
) -> dict[str, Any]:
    others = facts.open_counts.get(t.patient_id or "", 0) - (1 if t.status != "resolved" else 0)
    return {
        "id": t.id,
        "href": f"/tasks/{t.id}",
        "queue": t.queue,
        "queue_label": QUEUE_LABELS.get(t.queue, t.queue),
        "priority": t.priority,
        "urgent": t.priority == 1 or t.queue == "urgent_clinical",
        "title": t.title,
        "patient": facts.names.get(
            t.patient_id or "", "Unknown sender" if not t.patient_id else t.patient_id
        ),
        "patient_detail": facts.details.get(t.patient_id or "", "number not on file"),
        "patient_href": f"/patients/{quote(t.patient_id, safe='')}" if t.patient_id in facts.names else "",
        "others": max(others, 0),
        "said": facts.said.get(t.id, ""),
        "age": human_age((now - t.created_at).total_seconds()),
        "due_in": human_age(abs((t.due_by - now).total_seconds())),
        "overdue": t.status != "resolved" and t.due_by < now,
        "status": t.status,
        "status_label": TASK_STATUS_LABELS.get(t.status, t.status),
        "assignee": names.get(t.assignee_id or 0, "API" if t.status == "claimed" else ""),
        "mine": principal.user_id is not None and t.assignee_id == principal.user_id,
    }


async def _queue_data(request: web.Request, principal: Principal, filters: dict[str, Any]) -> dict[str, Any]:
    app = request.app
    now = app[CLOCK].now()
    async with app[SESSIONMAKER].begin() as session:
        summary = await queue_summary(session, principal, now=now)
        status = "active" if filters["status"] == "current" else filters["status"]
        tasks, total = await list_tasks(
            session,
            principal,
            now=now,
            queue=filters["queue"],
            status=status,
            priority=filters["priority"],
            mine=filters["mine"],
            unassigned=filters["unassigned"],
            page_size=200,
        )
        if filters["status"] == "current":
            tasks = [t for t in tasks if t.status != "snoozed"]
        if filters["overdue"]:
            tasks = [t for t in tasks if t.status != "resolved" and t.due_by < now]
        names = await staff_names(session, principal.site_id, {t.assignee_id for t in tasks if t.assignee_id})
        facts = await row_facts(session, principal, tasks)
    rows_out = [_task_row(t, facts, names, principal, now) for t in tasks]
    return {
        "generated_at": now.isoformat(),
        "summary": [
            {
                "queue": s.queue,
                "label": QUEUE_LABELS.get(s.queue, s.queue),
                "count": s.count,
                "urgent": s.urgent,
                "breached": s.breached,
                "unassigned": s.unassigned,
                "oldest": human_age(s.oldest_age_seconds) if s.oldest_age_seconds is not None else "–",
            }
            for s in summary
        ],
        "urgent_open": sum(1 for r in rows_out if r["urgent"] and r["status"] == "open"),
        "tasks": rows_out,
        "total": total,
    }


@staff_page
async def queues_page(request: web.Request, principal: Principal, _form: Form | None) -> web.StreamResponse:
    """GET /queues: every queue at a glance and the task list (refreshed by queues.js)."""
    try:
        filters = _queue_filters(request, principal)
    except TaskError as exc:
        return await _error_page(request, principal, 400, exc.message)
    data = await _queue_data(request, principal, filters)
    async with request.app[SESSIONMAKER]() as session:
        team = await colleagues(session, principal)
        views = await list_views(session, principal)
        layout = await layout_context(session, principal)
    here = clean_query(request.query_string)
    context = layout | {
        "views": views,
        "view_query": here,
        "current_view": next((v for v in views if v.query == here), None),
        "filters": filters,
        "data": data,
        "colleagues": team,
        "outcomes": [(o, OUTCOME_LABELS.get(o, o)) for o in OUTCOMES],
        "role_labels": ROLE_LABELS,
        "status_choices": STATUS_CHOICES,
        "poll_seconds": POLL_SECONDS,
        "query": request.query_string,
        "done": DONE_MESSAGES.get(request.query.get("done", ""), ""),
    }
    return _render(request, "queues.html", context)


@staff_page
async def queues_json(request: web.Request, principal: Principal, _form: Form | None) -> web.StreamResponse:
    """GET /queues.json: what the queues page polls for (same filters)."""
    try:
        filters = _queue_filters(request, principal)
    except TaskError as exc:
        return web.json_response({"error": exc.message, "field": exc.field}, status=400)
    response = web.json_response(await _queue_data(request, principal, filters))
    response.headers["Cache-Control"] = "no-store"
    return response


async def _bulk_one(request: web.Request, principal: Principal, form: Form, task_id: int) -> None:
    now = request.app[CLOCK].now()
    async with request.app[SESSIONMAKER].begin() as session:
        if form.get("action") == "assign":
            raw = str(form.get("assignee", ""))
            if not raw.isdigit():
                raise TaskInvalid("choose a colleague to assign to", "assignee")
            await assign_task(session, principal, task_id, assignee_id=int(raw), now=now)
        else:
            outcome = str(form.get("outcome", ""))
            await resolve_task(session, principal, task_id, outcome=outcome, note="", now=now)


@staff_page
async def queues_bulk(request: web.Request, principal: Principal, form: Form | None) -> web.StreamResponse:
    """POST /queues/bulk: assign or resolve the selected tasks (each one checked as if done alone)."""
    assert form is not None
    ids = [int(v) for v in form.getall("task", []) if str(v).isdigit() and len(str(v)) < 18]
    if form.get("action") not in ("assign", "resolve"):
        return await _error_page(request, principal, 400, "Choose what to do with the selected tasks.")
    if not ids:
        return await _error_page(request, principal, 400, "Select at least one task first.")
    failed: list[str] = []
    for task_id in ids:
        try:
            await _bulk_one(request, principal, form, task_id)
        except TaskError as exc:
            if exc.field in ("assignee", "outcome"):
                return await _error_page(request, principal, 400, exc.message)
            failed.append(f"task {task_id}: {exc.message}")
    if failed:
        return await _error_page(request, principal, 409, "Not done: " + "; ".join(failed))
    back = str(form.get("back", ""))
    return _redirect(f"/queues?{back}&done=bulk" if back and "done=" not in back else "/queues?done=bulk")


@staff_page
async def queues_view_save(
    request: web.Request, principal: Principal, form: Form | None
) -> web.StreamResponse:
    """POST /queues/views: save the current filters under a name (the same name replaces its view)."""
    assert form is not None
    query = str(form.get("query", ""))
    try:
        async with request.app[SESSIONMAKER].begin() as session:
            view = await save_view(
                session, principal, name=str(form.get("name", "")), query=query, now=request.app[CLOCK].now()
            )
            target = view.query
    except TaskError as exc:
        return await _error_page(request, principal, exc.status, exc.message)
    return _redirect(f"/queues?{target}&done=view" if target else "/queues?done=view")


@staff_page
async def queues_view_delete(
    request: web.Request, principal: Principal, _form: Form | None
) -> web.StreamResponse:
    """POST /queues/views/{id}/delete: forget one of the caller's saved views."""
    raw = request.match_info["view_id"]
    if not raw.isdigit() or len(raw) > 18:
        raise web.HTTPNotFound()
    try:
        async with request.app[SESSIONMAKER].begin() as session:
            await delete_view(session, principal, int(raw))
    except TaskError as exc:
        return await _error_page(request, principal, exc.status, exc.message)
    return _redirect("/queues?done=view_deleted")


# -- the task page ---------------------------------------------------------------------------------------


def _task_id(request: web.Request) -> int:
    raw = request.match_info["task_id"]
    if not raw.isdigit() or len(raw) > 18:
        raise web.HTTPNotFound()
    return int(raw)


async def _sender_of(session: AsyncSession, task: Task) -> str | None:
    """The number the task's text came from (for a sender not on file, the only way to reach them)."""
    if task.source_message_id is None:
        return None
    found: str | None = await session.scalar(
        select(Message.from_number).where(Message.id == task.source_message_id, Message.direction == "in")
    )
    return found


async def _task_context(
    request: web.Request, principal: Principal, task_id: int, revealed: str | None = None
) -> dict[str, Any]:
    app = request.app
    now = app[CLOCK].now()
    async with app[SESSIONMAKER].begin() as session:
        task = await get_task(session, principal, task_id)
        record = None
        messages: list[Any] = []
        if task.patient_id:
            record = await load_patient_record(
                session, principal, task.patient_id, now=now, via=f"task:{task.id}"
            )
            messages, _total = await list_messages(
                session,
                principal,
                task.patient_id,
                now=now,
                via=f"task:{task.id}",
                page_size=200,
                newest_first=True,
            )
            messages.reverse()
        sender = await _sender_of(session, task)
        if sender and not task.patient_id:
            # A number not on file: the thread is what that number sent and was sent, at this site.
            messages = list(
                await session.scalars(
                    select(Message)
                    .where(
                        Message.site_id == principal.site_id,
                        (Message.from_number == sender) | (Message.to_number == sender),
                    )
                    .order_by(Message.created_at, Message.id)
                    .limit(200)
                )
            )
        notes = await task_notes(session, task)
        ids = {n.staff_user_id for n in notes if n.staff_user_id} | (
            {task.assignee_id} if task.assignee_id else set()
        )
        names = await staff_names(session, principal.site_id, ids)
        site = await session.get(Site, principal.site_id)
        assert site is not None
        layout = await layout_context(session, principal, site)
        team = [c for c in await colleagues(session, principal) if task.queue in ROLE_QUEUES.get(c[2], ())]
        await in_session(
            session,
            audit.record,
            actor=principal.actor,
            action="task.view",
            site_id=task.site_id,
            patient_id=task.patient_id,
            target=f"task:{task.id}",
            at=now,
        )
    patient = record.patient if record else None
    # The reply box warns on any name of the patient's drugs, brand or generic ("Xeljanz" for tofacitinib).
    drugs = (
        sorted({t.prescription.drug for t in record.therapies})
        + sorted({n for t in record.therapies for n in drug_names(t.prescription.drug)})
        if record
        else []
    )
    language = patient.language if patient else "en"
    return layout | {
        "now": now,
        "team": team,
        "role_labels": ROLE_LABELS,
        "task": task,
        "record": record,
        "patient": patient,
        "messages": messages,
        "notes": notes,
        "names": names,
        "zone": (patient.time_zone if patient and patient.time_zone else site.time_zone),
        "site_zone": site.time_zone,
        "overdue": task.status != "resolved" and task.due_by < now,
        "due_in": human_age(abs((task.due_by - now).total_seconds())),
        "age": human_age((now - task.created_at).total_seconds()),
        "mine": principal.user_id is not None and task.assignee_id == principal.user_id,
        "can_resolve": principal.can_resolve(task.queue),
        "can_snooze": task.queue != "urgent_clinical",
        "move_targets": [q for q in QUEUES if q != task.queue],
        "outcomes": [(o, OUTCOME_LABELS.get(o, o)) for o in OUTCOMES],
        "snippets": reply_snippets(site, language),
        "drugs_json": json.dumps(drugs),
        "needs_consent_warning": patient is not None and not patient.detailed_consent,
        "masked_phone": mask_phone(patient.phone if patient else sender),
        "sender": sender,
        "revealed_phone": revealed,
        "done": DONE_MESSAGES.get(request.query.get("done", ""), ""),
        "request_done": request.query.get("done", ""),
        "said": _said_of(task, messages),
        "details": describe_detail(task.detail),
        "claimer": names.get(task.assignee_id or 0, "Someone (the API)"),
        "status_labels": TASK_STATUS_LABELS,
        "outcome_labels": OUTCOME_LABELS,
        "note_labels": NOTE_LABELS,
        "payer_labels": PAYER_LABELS,
    }


def _said_of(task: Task, messages: list[Any]) -> str:
    """What the patient wrote that opened the task (the message itself, else the text the dialog kept)."""
    for m in messages:
        if m.id == task.source_message_id and m.body and m.body.strip():
            return str(m.body)
    return str((task.detail or {}).get("text") or "")


async def _render_task(
    request: web.Request,
    principal: Principal,
    task_id: int,
    *,
    error: TaskError | None = None,
    form: Form | None = None,
    revealed: str | None = None,
) -> web.StreamResponse:
    try:
        context = await _task_context(request, principal, task_id, revealed)
    except TaskError as exc:
        return await _error_page(request, principal, exc.status, exc.message)
    context["error"] = error.message if error else ""
    context["error_field"] = error.field if error else ""
    context["form"] = dict(form or {})
    return _render(request, "task.html", context, status=error.status if error else 200)


@staff_page
async def task_page(request: web.Request, principal: Principal, _form: Form | None) -> web.StreamResponse:
    """GET /tasks/{id}: the patient header, therapies, thread, signals, timeline and actions (audited)."""
    return await _render_task(request, principal, _task_id(request))


def _parse_until(raw: str, zone: str) -> datetime:
    try:
        at = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise TaskInvalid("choose a date and time to snooze until", "until") from None
    return at.replace(tzinfo=ZoneInfo(zone)) if at.tzinfo is None else at


async def _require_claim(request: web.Request, principal: Principal, task_id: int) -> None:
    """A reply from the pages needs the task claimed by its sender: two people never text a patient at once."""
    async with request.app[SESSIONMAKER]() as session:
        task = await get_task(session, principal, task_id)
    if task.status != "claimed" or task.assignee_id != principal.user_id:
        raise TaskConflict("claim this task before replying (or take it over)", "body")


async def _run_action(
    request: web.Request, principal: Principal, action: str, form: Form, task_id: int
) -> None:
    app = request.app
    now = app[CLOCK].now()
    if action == "reply":
        await _require_claim(request, principal, task_id)
        channel = app.get(MESSAGING)
        if channel is None:
            raise TaskInvalid("SMS sending is not configured on this server", "body")
        await send_reply(
            app[SESSIONMAKER], channel.deliverer, principal, task_id, body=str(form.get("body", "")), now=now
        )
        return
    async with app[SESSIONMAKER].begin() as session:
        if action == "claim":
            await claim_task(session, principal, task_id, now=now)
        elif action == "assign":
            raw = str(form.get("assignee", ""))
            if not raw.isdigit() or len(raw) > 18:
                raise TaskInvalid("choose a colleague to assign to", "assignee")
            await assign_task(session, principal, task_id, assignee_id=int(raw), now=now)
        elif action == "takeover":
            assert principal.user_id is not None
            await assign_task(session, principal, task_id, assignee_id=principal.user_id, now=now)
        elif action == "release":
            await release_task(session, principal, task_id, now=now)
        elif action == "call":
            await log_call(session, principal, task_id, note=str(form.get("note", "")), now=now)
        elif action == "snooze":
            site = await session.get(Site, principal.site_id)
            zone = site.time_zone if site else "UTC"
            until = _parse_until(str(form.get("until", "")), zone).astimezone(UTC)
            await snooze_task(session, principal, task_id, until=until, now=now)
        elif action == "move":
            await move_task(session, principal, task_id, queue=str(form.get("queue", "")), now=now)
        elif action == "resolve":
            outcome = str(form.get("outcome", ""))
            await resolve_task(
                session, principal, task_id, outcome=outcome, note=str(form.get("note", "")), now=now
            )
        else:
            raise web.HTTPNotFound()


@staff_page
async def task_action(request: web.Request, principal: Principal, form: Form | None) -> web.StreamResponse:
    """POST /tasks/{id}/{action}: claim, release, reply, call, snooze, move or resolve, then back to the page."""
    task_id = _task_id(request)
    action = request.match_info["action"]
    assert form is not None
    try:
        if action == "show-number":  # shown on this page only, never in a URL; the view is audited
            return await _render_task(
                request, principal, task_id, revealed=await _reveal(request, principal, task_id)
            )
        await _run_action(request, principal, action, form, task_id)
    except TaskError as exc:
        return await _render_task(request, principal, task_id, error=exc, form=form)
    target = f"/queues?done={action}" if action in ("resolve", "move") else f"/tasks/{task_id}?done={action}"
    raise web.HTTPSeeOther(target)


async def _audit_view(
    session: AsyncSession,
    principal: Principal,
    action: str,
    patient_id: str | None,
    target: str,
    at: datetime,
) -> None:
    """One audit row for something a staff member looked at (invariant 5)."""
    await in_session(
        session,
        audit.record,
        actor=principal.actor,
        action=action,
        site_id=principal.site_id,
        patient_id=patient_id,
        target=target,
        at=at,
    )


async def _reveal(request: web.Request, principal: Principal, task_id: int) -> str:
    """The full number behind a task (its patient's, or the sender's), with a ``phone_revealed`` audit row."""
    app = request.app
    async with app[SESSIONMAKER].begin() as session:
        task = await get_task(session, principal, task_id)
        patient = await session.get(Patient, task.patient_id) if task.patient_id else None
        number = patient.phone if patient is not None else await _sender_of(session, task)
        if not number:
            raise TaskInvalid("this task has no phone number", "phone")
        await _audit_view(
            session, principal, "phone_revealed", task.patient_id, f"task:{task.id}", app[CLOCK].now()
        )
    return number


_MEDIA_TIMEOUT = aiohttp.ClientTimeout(total=15)


@staff_page
async def message_media(request: web.Request, principal: Principal, _form: Form | None) -> web.StreamResponse:
    """GET /messages/{id}/media/{n}: a picture a patient sent, fetched from the provider with its credentials
    (never hot-linked: the provider's URL needs no sign-in), for staff of the message's site; audited."""
    app = request.app
    try:
        message_id, index = int(request.match_info["message_id"]), int(request.match_info["index"])
    except ValueError:
        raise web.HTTPNotFound() from None
    async with app[SESSIONMAKER].begin() as session:
        message = await session.get(Message, message_id)
        if (
            message is None
            or message.site_id != principal.site_id
            or not 0 <= index < len(message.media or [])
        ):
            raise web.HTTPNotFound()
        url = str((message.media or [])[index])
        await _audit_view(
            session, principal, "message.media", message.patient_id, f"message:{message.id}", app[CLOCK].now()
        )
    settings = app[SETTINGS]
    if not _provider_url(url, settings.twilio_api_base_url):
        _LOGGER.warning("message %s: media URL outside the provider's hosts, not fetched", message_id)
        raise web.HTTPNotFound()
    credentials = f"{settings.twilio_account_sid}:{settings.twilio_auth_token.get_secret_value()}"
    headers = {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode("ascii")}
    try:
        async with app[HTTP].get(url, headers=headers, timeout=_MEDIA_TIMEOUT) as upstream:
            kind = upstream.headers.get("Content-Type", "")
            if upstream.status != 200 or not kind.startswith(("image/", "video/", "audio/")):
                raise web.HTTPNotFound()
            body = await upstream.read()
    except (aiohttp.ClientError, TimeoutError):
        return web.Response(status=502, text="The picture cannot be fetched from the provider right now.")
    return web.Response(
        body=body, content_type=kind.split(";")[0], headers={"Cache-Control": "private, no-store"}
    )


def _provider_url(url: str, api_base: str) -> bool:
    """Only the provider's own hosts (or the configured API host, e.g. the simulator) are fetched."""
    host = (urlsplit(url).hostname or "").lower()
    if urlsplit(url).scheme not in ("http", "https") or not host:
        return False
    return host == (urlsplit(api_base).hostname or "").lower() or host.endswith(
        (".twilio.com", ".twiliocdn.com")
    )


# -- patients --------------------------------------------------------------------------------------------


@staff_page
async def patients_page(request: web.Request, principal: Principal, _form: Form | None) -> web.StreamResponse:
    """GET /patients?q=: find a patient of the site by name, id or the phone's last 4 digits (audited)."""
    q = request.query.get("q", "").strip()
    hits: list[PatientHit] = []
    error = ""
    if q:
        try:
            async with request.app[SESSIONMAKER].begin() as session:
                hits = await search_patients(session, principal, q, now=request.app[CLOCK].now(), via="page")
        except TaskError as exc:
            error = exc.message
    context = await _layout(request, principal) | {"q": q, "hits": hits, "error": error}
    return _render(request, "patients.html", context, status=400 if error else 200)


def _whole(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or len(raw) > 6:
        raise TaskInvalid(f"{name} must be a whole number", name)
    return int(raw)


@staff_page
async def inbox_page(request: web.Request, principal: Principal, _form: Form | None) -> web.StreamResponse:
    """GET /inbox: every recent conversation of the site, newest first: the latest message per patient
    (``?waiting=1``: only those where the patient wrote last; ``days``, ``page``). Audited."""
    now = request.app[CLOCK].now()
    waiting = request.query.get("waiting") == "1"
    try:
        days, page = _whole(request, "days", 30), _whole(request, "page", 1)
        async with request.app[SESSIONMAKER].begin() as session:
            rows, total = await recent_conversations(
                session, principal, now=now, days=days, waiting=waiting, page=page
            )
            layout = await layout_context(session, principal)
    except TaskError as exc:
        return await _error_page(request, principal, 400, exc.message)
    context = layout | {
        "rows": rows,
        "total": total,
        "page": page,
        "pages": max(1, -(-total // INBOX_PAGE)),
        "days": days,
        "waiting": waiting,
        "zone": layout["site"].time_zone,
        "ages": {r.patient_id: human_age((now - r.at).total_seconds()) for r in rows},
        "query": urlencode({"days": days} | ({"waiting": 1} if waiting else {})),
    }
    return _render(request, "inbox.html", context)


def _patient_id(request: web.Request) -> str:
    raw = request.match_info["patient_id"]
    if not raw or len(raw) > 64:
        raise web.HTTPNotFound()
    return raw


async def _patient_context(
    request: web.Request, principal: Principal, patient_id: str, revealed: str | None
) -> dict[str, Any]:
    app = request.app
    now = app[CLOCK].now()
    async with app[SESSIONMAKER].begin() as session:
        record = await load_patient_record(session, principal, patient_id, now=now, via="patient_page")
        messages, total = await list_messages(
            session, principal, patient_id, now=now, via="patient_page", page_size=200, newest_first=True
        )
        messages.reverse()
        tasks = list(
            await session.scalars(
                select(Task)
                .where(Task.site_id == principal.site_id, Task.patient_id == record.patient.id)
                .order_by(Task.status == "resolved", Task.created_at.desc())
                .limit(100)
            )
        )
        names = await staff_names(
            session,
            principal.site_id,
            {m.staff_user_id for m in messages if m.staff_user_id}
            | {t.assignee_id for t in tasks if t.assignee_id},
        )
        layout = await layout_context(session, principal, record.site)
    patient = record.patient
    return layout | {
        "record": record,
        "patient": patient,
        "messages": messages,
        "message_total": total,
        "tasks": tasks,
        "names": names,
        "task": None,
        "zone": patient.time_zone or record.site.time_zone,
        "masked_phone": mask_phone(patient.phone),
        "revealed_phone": revealed,
        "status_labels": TASK_STATUS_LABELS,
        "outcome_labels": OUTCOME_LABELS,
        "payer_labels": PAYER_LABELS,
    }


@staff_page
async def patient_page(request: web.Request, principal: Principal, _form: Form | None) -> web.StreamResponse:
    """GET /patients/{id}: therapies, the whole thread, tasks, signals and consent (every view audited)."""
    try:
        context = await _patient_context(request, principal, _patient_id(request), None)
    except TaskError as exc:
        return await _error_page(request, principal, exc.status, exc.message)
    return _render(request, "patient.html", context)


@staff_page
async def patient_show_number(
    request: web.Request, principal: Principal, _form: Form | None
) -> web.StreamResponse:
    """POST /patients/{id}/show-number: the page again with the full number and a ``tel:`` link (audited)."""
    patient_id = _patient_id(request)
    try:
        async with request.app[SESSIONMAKER].begin() as session:
            number = await reveal_phone(
                session, principal, patient_id, now=request.app[CLOCK].now(), via="patient_page"
            )
        context = await _patient_context(request, principal, patient_id, number)
    except TaskError as exc:
        return await _error_page(request, principal, exc.status, exc.message)
    return _render(request, "patient.html", context)


# -- audit -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditFilters:
    """The audit page's filters, checked; dates are the site's local calendar days."""

    since: datetime | None = None
    until: datetime | None = None
    action: str | None = None
    actor: str | None = None
    patient_id: str | None = None
    page: int = 1
    raw: dict[str, str] = field(default_factory=dict)

    def query(self) -> dict[str, Any]:
        """Keyword arguments for ``audit.list_events``."""
        return {"since": self.since, "until": self.until, "action": self.action, "actor": self.actor,
                "patient_id": self.patient_id}  # fmt: skip


def _local_day(raw: str, zone: str, name: str) -> datetime:
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise TaskInvalid(f"{name} must be a date like 2026-11-24", name) from None
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(zone)).astimezone(UTC)


def _audit_filters(request: web.Request, zone: str) -> AuditFilters:
    """``from``/``to`` (local days, both included), ``since`` (ISO time), ``actor``, ``action``, ``patient``."""
    q = {k: request.query.get(k, "").strip() for k in ("since", "from", "to", "actor", "action", "patient")}
    since = until = None
    if q["since"]:
        try:
            since = datetime.fromisoformat(q["since"])
        except ValueError:
            raise TaskInvalid("since must be a date like 2026-11-24", "since") from None
        since = since if since.tzinfo else since.replace(tzinfo=UTC)
    if q["from"]:
        since = (
            max(since, _local_day(q["from"], zone, "from")) if since else _local_day(q["from"], zone, "from")
        )
    if q["to"]:
        until = _local_day(q["to"], zone, "to") + timedelta(days=1)
    if since and until and until <= since:
        raise TaskInvalid("to must be on or after from", "to")
    for name in ("actor", "action", "patient"):
        if len(q[name]) > 200:
            raise TaskInvalid(f"{name} must be at most 200 characters", name)
    page_raw = request.query.get("page", "1")
    page = int(page_raw) if page_raw.isdigit() and len(page_raw) < 7 and int(page_raw) >= 1 else 1
    return AuditFilters(since, until, q["action"] or None, q["actor"] or None, q["patient"] or None, page,
                        {k: v for k, v in q.items() if v})  # fmt: skip


async def _site_zone(request: web.Request, principal: Principal) -> str:
    async with request.app[SESSIONMAKER]() as session:
        site = await session.get(Site, principal.site_id)
    return site.time_zone if site else "UTC"


@staff_page
async def audit_page(request: web.Request, principal: Principal, _form: Form | None) -> web.StreamResponse:
    """GET /audit: the site's audit trail, newest first, with names, words and local times (clinic admins)."""
    if principal.role != "clinic_admin":
        return await _error_page(request, principal, 403, "Only clinic admins can see the audit trail.")
    zone = await _site_zone(request, principal)
    try:
        filters = _audit_filters(request, zone)
    except TaskError as exc:
        return await _error_page(request, principal, 400, exc.message)
    size = 100
    now = request.app[CLOCK].now()
    async with request.app[SESSIONMAKER].begin() as session:
        events, total = await audit.list_events(
            session, site_id=principal.site_id, limit=size, offset=(filters.page - 1) * size,
            newest_first=True, **filters.query(),
        )  # fmt: skip
        actors, actions = await audit_choices(session, principal.site_id)
        names = await actor_names(
            session, principal.site_id, {e.actor for e in events} | named_targets(events)
        )
        await in_session(
            session,
            audit.record,
            actor=principal.actor,
            action="audit.read",
            site_id=principal.site_id,
            at=now,
        )
        layout = await layout_context(session, principal)
    context = layout | {
        "events": events,
        "names": names,
        "total": total,
        "page": filters.page,
        "pages": max(1, -(-total // size)),
        "filters": filters.raw,
        "actors": actors,
        "actions": [(a, action_words(a)) for a in actions],
        "action_words": action_words,
        "detail_words": detail_words,
        "target_words": target_words,
        "zone": zone,
        "zone_name": now.astimezone(ZoneInfo(zone)).strftime("%Z"),
        "query": urlencode(filters.raw),
    }
    return _render(request, "audit.html", context)


@staff_page
async def audit_csv(request: web.Request, principal: Principal, _form: Form | None) -> web.StreamResponse:
    """GET /audit.csv: the filtered audit trail as CSV (clinic admins; the export is itself audited)."""
    if principal.role != "clinic_admin":
        return await _error_page(request, principal, 403, "Only clinic admins can export the audit trail.")
    try:
        filters = _audit_filters(request, await _site_zone(request, principal))
    except TaskError as exc:
        return await _error_page(request, principal, 400, exc.message)
    now = request.app[CLOCK].now()
    async with request.app[SESSIONMAKER].begin() as session:
        events, total = await audit.list_events(
            session, site_id=principal.site_id, limit=100_000, **filters.query()
        )
        await in_session(
            session,
            audit.record,
            actor=principal.actor,
            action="audit.export",
            site_id=principal.site_id,
            detail={"rows": total},
            at=now,
        )
    stamp = now.strftime("%Y%m%d-%H%M")
    return web.Response(
        text=audit.events_csv(events),
        content_type="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="audit-{principal.site_id}-{stamp}.csv"',
            "Cache-Control": "no-store",
        },
    )


# -- wiring ----------------------------------------------------------------------------------------------


def _environment(app: web.Application) -> jinja2.Environment:
    env = aiohttp_jinja2.setup(
        app,
        app_key=WEB_JINJA,
        loader=jinja2.FileSystemLoader(str(_HERE / "templates")),
        autoescape=True,
        default_helpers=False,
        undefined=jinja2.StrictUndefined,
    )
    env.globals.pop("app", None)
    env.filters["local"] = _local
    env.filters["local_full"] = _local_full
    env.filters["age"] = human_age
    env.globals["humanize"] = humanize
    env.globals["describe"] = describe_detail
    return env


def setup_web(app: web.Application) -> None:
    """Register the staff pages, their static files and the SLA escalation job (a second call does nothing)."""
    if WEB_JINJA in app:
        return
    _environment(app)
    app.router.add_get("/", home, name="web.home")
    app.router.add_get("/login", login_page, name="web.login")
    app.router.add_post("/login", login_submit, name="web.login_submit")
    app.router.add_post("/logout", logout, name="web.logout")
    app.router.add_post("/site", switch_site, name="web.switch_site")
    app.router.add_get("/queues", queues_page, name="web.queues")
    app.router.add_get("/queues.json", queues_json, name="web.queues_json")
    app.router.add_post("/queues/bulk", queues_bulk, name="web.queues_bulk")
    app.router.add_post("/queues/views", queues_view_save, name="web.queues_view_save")
    app.router.add_post("/queues/views/{view_id}/delete", queues_view_delete, name="web.queues_view_delete")
    app.router.add_get("/tasks/{task_id}", task_page, name="web.task")
    app.router.add_post("/tasks/{task_id}/{action}", task_action, name="web.task_action")
    app.router.add_get("/messages/{message_id}/media/{index}", message_media, name="web.message_media")
    app.router.add_get("/inbox", inbox_page, name="web.inbox")
    app.router.add_get("/patients", patients_page, name="web.patients")
    app.router.add_get("/patients/{patient_id}", patient_page, name="web.patient")
    app.router.add_post(
        "/patients/{patient_id}/show-number", patient_show_number, name="web.patient_show_number"
    )
    app.router.add_get("/audit", audit_page, name="web.audit")
    app.router.add_get("/audit.csv", audit_csv, name="web.audit_csv")
    app.router.add_static(STATIC_PREFIX, _HERE / "static", name="web.static")
