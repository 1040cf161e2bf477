"""REST API under /api/v1/: tasks, patients, messages, signals and audit, and its OpenAPI 3.1 document.

Callers send ``Authorization: Bearer TOKEN`` (a site's API token) or, from the staff pages' own script,
the session cookie plus an ``X-CSRF-Token`` header on every POST. Every query is filtered by the caller's
site, so another site's resource answers 404. Errors are ``{"error": "...", "field": "..."}`` with a 4xx.

The route table (``ROUTES``) both registers the handlers and generates the OpenAPI document; other parts
add endpoints with ``add_api_route(app, ApiRoute(...))`` before the app starts.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import __version__
from bot.api import schemas
from bot.db import audit
from bot.db.models import Signal
from bot.db.signals import signal_to_dict
from bot.db.unit import in_session
from bot.keys import CLOCK, MESSAGING, SESSIONMAKER
from bot.staff.auth import (
    CSRF_HEADER,
    SESSION_COOKIE,
    BadCredentials,
    Principal,
    constant_time_equal,
    principal_from_request,
)
from bot.staff.records import list_messages, load_patient_record
from bot.staff.tasks import (
    TaskError,
    TaskInvalid,
    claim_task,
    get_task,
    list_tasks,
    log_call,
    move_task,
    release_task,
    resolve_task,
    send_reply,
    snooze_task,
    task_notes,
)
from bot.staff.workspace import reveal_phone, search_patients

__all__ = ["PREFIX", "ROUTES", "ApiCall", "ApiRoute", "QueryParam", "add_api_route", "openapi", "setup_api"]

_LOGGER = logging.getLogger(__name__)
PREFIX = "/api/v1"
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# No request body of ours nests deeper than a FHIR Bundle (about 8); deeper is an attack on the parsers.
MAX_JSON_DEPTH = 32
_PATH_PARAM = re.compile(r"{(\w+)}")


@dataclass(frozen=True, slots=True)
class QueryParam:
    """A query-string parameter, for the OpenAPI document."""

    name: str
    schema: dict[str, Any]
    description: str = ""
    required: bool = False


@dataclass(slots=True)
class ApiCall:
    """What a handler gets: the request, the authenticated caller, the validated body and the clock."""

    request: web.Request
    principal: Principal
    now: datetime
    sessionmaker: async_sessionmaker[AsyncSession]
    body: BaseModel | None = None
    payload: Any = None  # the raw JSON body, for endpoints that take one object or a list


Handler = Callable[[ApiCall], Awaitable[BaseModel | web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class ApiRoute:
    """One endpoint: how it is served and how the OpenAPI document describes it."""

    method: str
    path: str  # below PREFIX, e.g. "/tasks/{task_id}"
    handler: Handler
    name: str
    summary: str
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    query: tuple[QueryParam, ...] = ()
    tag: str = "tasks"
    audit_only: bool = False  # clinic admins and API tokens only
    edits_records: bool = False  # changes patients, prescriptions or fills: Principal.can_edit_records only
    path_types: dict[str, str] = field(default_factory=dict)  # path param -> JSON type (default integer)


# The REST route table the OpenAPI document is built from (kept here, beside the type it holds).
API_ROUTES: web.AppKey[list[ApiRoute]] = web.AppKey("api_routes")


def _error(status: int, message: str, field_name: str | None = None) -> web.Response:
    body = schemas.ErrorOut(error=message, field=field_name).model_dump()
    response = web.json_response(body, status=status)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="midbot"'
    return response


def _validation_error(exc: ValidationError) -> web.Response:
    first = exc.errors()[0]
    loc = ".".join(str(part) for part in first["loc"])
    message = f"{loc}: {first['msg']}" if loc else str(first["msg"])
    return _error(400, message, loc or None)


async def _parse_body(request: web.Request, route: ApiRoute) -> tuple[BaseModel | None, Any]:
    raw = await request.read()
    if not raw.strip():
        payload: Any = {} if route.body is not None else None
    else:
        try:
            payload = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise TaskInvalid("the body is not valid JSON", "body") from None
        except RecursionError:  # nested past the parser's stack
            raise TaskInvalid(f"the body is nested deeper than {MAX_JSON_DEPTH} levels", "body") from None
        if _depth_over(payload, MAX_JSON_DEPTH):
            raise TaskInvalid(f"the body is nested deeper than {MAX_JSON_DEPTH} levels", "body")
    model = route.body.model_validate(payload) if route.body is not None else None
    return model, payload


def _depth_over(value: Any, limit: int) -> bool:
    """True when arrays and objects nest deeper than ``limit`` (checked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


async def _authenticate(request: web.Request) -> Principal | web.Response:
    try:
        principal = await principal_from_request(request)
    except BadCredentials:
        return _error(401, "the API token is not valid (send Authorization: Bearer TOKEN)", "Authorization")
    if principal is None:
        return _error(401, "authentication required: send Authorization: Bearer TOKEN", "Authorization")
    if principal.kind == "user" and request.method in _UNSAFE:
        # A signed-in browser must prove the request comes from our own page, not another site.
        supplied = request.headers.get(CSRF_HEADER, "")
        if not constant_time_equal(supplied, principal.csrf_token):
            return _error(403, "missing or bad CSRF token", CSRF_HEADER)
    return principal


def _endpoint(route: ApiRoute) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        principal = await _authenticate(request)
        if isinstance(principal, web.Response):
            return principal
        if route.audit_only and not principal.can_read_audit:
            return _error(403, "only clinic admins and API tokens may read this")
        if route.edits_records and not principal.can_edit_records:
            return _error(403, "only clinic admins, pharmacists and API tokens may change the record")
        try:
            body, payload = await _parse_body(request, route) if request.method in _UNSAFE else (None, None)
            call = ApiCall(
                request, principal, request.app[CLOCK].now(), request.app[SESSIONMAKER], body, payload
            )
            result = await route.handler(call)
        except ValidationError as exc:
            return _validation_error(exc)
        except TaskError as exc:
            return _error(exc.status, exc.message, exc.field)
        if isinstance(result, web.StreamResponse):
            return result
        return web.json_response(result.model_dump(mode="json"))

    handle.__name__ = route.name
    return handle


# -- parameters ------------------------------------------------------------------------------------------


def _int_param(request: web.Request, name: str, default: int | None) -> int | None:
    raw = request.query.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise TaskInvalid(f"{name} must be a whole number", name) from None


def _bool_param(request: web.Request, name: str) -> bool:
    raw = request.query.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise TaskInvalid(f"{name} must be true or false", name)


def _path_id(call: ApiCall, name: str = "task_id") -> int:
    raw = call.request.match_info[name]
    if not raw.isdigit() or len(raw) > 18:
        raise TaskInvalid(f"{name} must be a whole number", name)
    return int(raw)


def _since(request: web.Request) -> tuple[datetime | None, int]:
    """``since``: an ISO 8601 time (UTC when no zone is given) or an id (items after it)."""
    raw = request.query.get("since", "").strip()
    if not raw:
        return None, 0
    if raw.isdigit():
        return None, int(raw)
    try:
        at = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise TaskInvalid(
            "since must be an ISO 8601 time (e.g. 2026-11-24T15:00:00Z) or an id", "since"
        ) from None
    return (at if at.tzinfo else at.replace(tzinfo=UTC)), 0


def _paging(request: web.Request, default_size: int = 50, max_size: int = 200) -> tuple[int, int]:
    page = _int_param(request, "page", 1)
    size = _int_param(request, "page_size", default_size)
    assert page is not None and size is not None
    if page < 1:
        raise TaskInvalid("page must be 1 or more", "page")
    if not 1 <= size <= max_size:
        raise TaskInvalid(f"page_size must be 1 to {max_size}", "page_size")
    return page, size


def _next(request: web.Request, page: int, size: int, total: int) -> str | None:
    if page * size >= total:
        return None
    return str(request.rel_url.update_query(page=page + 1))


# -- handlers --------------------------------------------------------------------------------------------


async def _list_tasks(call: ApiCall) -> BaseModel:
    request = call.request
    page, size = _paging(request)
    async with call.sessionmaker.begin() as session:
        tasks, total = await list_tasks(
            session,
            call.principal,
            now=call.now,
            queue=request.query.get("queue") or None,
            status=request.query.get("status") or "active",
            priority=_int_param(request, "priority", None),
            mine=_bool_param(request, "mine"),
            unassigned=_bool_param(request, "unassigned"),
            page=page,
            page_size=size,
        )
    items = [schemas.task_out(t, call.now) for t in tasks]
    return schemas.TaskPage(
        items=items, page=page, page_size=size, total=total, next=_next(request, page, size, total)
    )


async def _get_task(call: ApiCall) -> BaseModel:
    async with call.sessionmaker.begin() as session:
        task = await get_task(session, call.principal, _path_id(call))
        notes = await task_notes(session, task)
        await in_session(
            session,
            audit.record,
            actor=call.principal.actor,
            action="task.view",
            site_id=task.site_id,
            patient_id=task.patient_id,
            target=f"task:{task.id}",
            at=call.now,
        )
    base = schemas.task_out(task, call.now).model_dump()
    return schemas.TaskDetailOut(**base, notes=[schemas.note_out(n) for n in notes])


def _task_action(action: Callable[..., Awaitable[Any]], **fields: str) -> Handler:
    """A POST handler that runs one task service function and answers with the task."""

    async def handle(call: ApiCall) -> BaseModel:
        kwargs = {arg: getattr(call.body, attr) for arg, attr in fields.items()}
        async with call.sessionmaker.begin() as session:
            await action(session, call.principal, _path_id(call), now=call.now, **kwargs)
            task = await get_task(session, call.principal, _path_id(call))
        return schemas.task_out(task, call.now)

    return handle


async def _reply(call: ApiCall) -> BaseModel | web.StreamResponse:
    assert isinstance(call.body, schemas.ReplyIn)
    channel = call.request.app.get(MESSAGING)
    if channel is None:
        return _error(503, "SMS sending is not configured on this server")
    task_id = _path_id(call)
    outcome = await send_reply(
        call.sessionmaker, channel.deliverer, call.principal, task_id, body=call.body.body, now=call.now
    )
    async with call.sessionmaker.begin() as session:
        task = await get_task(session, call.principal, task_id)
    return schemas.ReplyOut(
        message_id=outcome.message_id,
        status=outcome.status,
        warnings=list(outcome.warnings),
        task=schemas.task_out(task, call.now),
    )


async def _patient(call: ApiCall) -> BaseModel:
    patient_id = call.request.match_info["patient_id"]
    async with call.sessionmaker.begin() as session:
        record = await load_patient_record(session, call.principal, patient_id, now=call.now, via="api")
    p = record.patient
    return schemas.PatientOut(
        id=p.id,
        site_id=p.site_id,
        first_name=p.first_name,
        last_name=p.last_name,
        birth_date=p.birth_date,
        phone=p.phone,
        phone_status=p.phone_status,
        language=p.language,
        time_zone=p.time_zone,
        sms_consent=p.sms_consent,
        detailed_consent=p.detailed_consent,
        opted_out_at=p.opted_out_at,
        deliverability=dict(p.deliverability or {}),
        prescriptions=[schemas.prescription_out(t) for t in record.therapies],
    )


async def _search_patients(call: ApiCall) -> BaseModel:
    q = call.request.query.get("q", "")
    async with call.sessionmaker.begin() as session:
        hits = await search_patients(session, call.principal, q, now=call.now, via="api")
    return schemas.PatientSearchOut(
        items=[schemas.PatientHitOut.model_validate(hit, from_attributes=True) for hit in hits]
    )


async def _reveal_phone(call: ApiCall) -> BaseModel:
    patient_id = call.request.match_info["patient_id"]
    async with call.sessionmaker.begin() as session:
        phone = await reveal_phone(session, call.principal, patient_id, now=call.now, via="api")
    return schemas.PhoneOut(phone=phone)


async def _messages(call: ApiCall) -> BaseModel:
    page, size = _paging(call.request, 100, 500)
    patient_id = call.request.match_info["patient_id"]
    async with call.sessionmaker.begin() as session:
        rows, total = await list_messages(
            session, call.principal, patient_id, now=call.now, via="api", page=page, page_size=size
        )
    return schemas.MessagePage(
        items=[schemas.message_out(m) for m in rows],
        page=page,
        page_size=size,
        total=total,
        next=_next(call.request, page, size, total),
    )


async def _signals(call: ApiCall) -> BaseModel:
    page, size = _paging(call.request, 100, 1000)
    since_at, since_id = _since(call.request)
    filters = [Signal.site_id == call.principal.site_id, Signal.id > since_id]
    if since_at is not None:
        filters.append(Signal.created_at >= since_at)
    async with call.sessionmaker.begin() as session:
        total = await session.scalar(select(func.count(Signal.id)).where(*filters)) or 0
        rows = await session.scalars(
            select(Signal).where(*filters).order_by(Signal.id).limit(size).offset((page - 1) * size)
        )
        items = [schemas.SignalOut.model_validate(signal_to_dict(s)) for s in rows]
        await in_session(
            session,
            audit.record,
            actor=call.principal.actor,
            action="signals.read",
            site_id=call.principal.site_id,
            target="api",
            detail={"count": len(items)},
            at=call.now,
        )
    return schemas.SignalPage(
        items=items, page=page, page_size=size, total=total, next=_next(call.request, page, size, total)
    )


async def _audit(call: ApiCall) -> BaseModel:
    page, size = _paging(call.request, 100, 1000)
    since_at, since_id = _since(call.request)
    if since_id:
        raise TaskInvalid("since must be an ISO 8601 time for the audit trail", "since")
    async with call.sessionmaker.begin() as session:
        events, total = await audit.list_events(
            session,
            site_id=call.principal.site_id,
            since=since_at,
            action=call.request.query.get("action") or None,
            limit=size,
            offset=(page - 1) * size,
        )
        items = [schemas.audit_out(e) for e in events]
        await in_session(
            session,
            audit.record,
            actor=call.principal.actor,
            action="audit.read",
            site_id=call.principal.site_id,
            target="api",
            at=call.now,
        )
    return schemas.AuditPage(
        items=items, page=page, page_size=size, total=total, next=_next(call.request, page, size, total)
    )


_PAGE = QueryParam("page", {"type": "integer", "minimum": 1, "default": 1}, "page number, from 1")
_SINCE = QueryParam(
    "since", {"type": "string"}, "ISO 8601 time (UTC if no zone): items recorded at or after it; or an id"
)
_QUEUE_ENUM = ["urgent_clinical", "clinical", "refill", "financial", "general"]
_STATUS_ENUM = ["active", "open", "claimed", "snoozed", "resolved", "all"]
_STRING_ID = {"patient_id": "string"}


def _size(maximum: int, default: int) -> QueryParam:
    return QueryParam("page_size", {"type": "integer", "minimum": 1, "maximum": maximum, "default": default})


def _action(method: str, verb: str, name: str, summary: str, handler: Handler, **kw: Any) -> ApiRoute:
    return ApiRoute(
        method, f"/tasks/{{task_id}}/{verb}", handler, name, summary, response=schemas.TaskOut, **kw
    )


ROUTES: list[ApiRoute] = [
    ApiRoute(
        "GET",
        "/tasks",
        _list_tasks,
        "listTasks",
        "List the caller's tasks, most urgent first",
        response=schemas.TaskPage,
        query=(
            QueryParam("queue", {"type": "string", "enum": _QUEUE_ENUM}),
            QueryParam("status", {"type": "string", "enum": _STATUS_ENUM, "default": "active"}),
            QueryParam("priority", {"type": "integer", "minimum": 1, "maximum": 4}),
            QueryParam("mine", {"type": "boolean"}, "only tasks claimed by the signed-in user"),
            QueryParam("unassigned", {"type": "boolean"}, "only tasks nobody has claimed"),
            _PAGE,
            _size(200, 50),
        ),
    ),
    ApiRoute(
        "GET",
        "/tasks/{task_id}",
        _get_task,
        "getTask",
        "A task with its timeline",
        response=schemas.TaskDetailOut,
    ),
    _action("POST", "claim", "claimTask", "Claim a task", _task_action(claim_task)),
    _action(
        "POST", "release", "releaseTask", "Give a claimed task back to its queue", _task_action(release_task)
    ),
    ApiRoute(
        "POST",
        "/tasks/{task_id}/reply",
        _reply,
        "replyToTask",
        "Text the task's patient",
        body=schemas.ReplyIn,
        response=schemas.ReplyOut,
    ),
    _action(
        "POST",
        "resolve",
        "resolveTask",
        "Resolve a task with an outcome code (note required for other)",
        _task_action(resolve_task, outcome="outcome", note="note"),
        body=schemas.ResolveIn,
    ),
    _action(
        "POST",
        "snooze",
        "snoozeTask",
        "Hide a task until a time",
        _task_action(snooze_task, until="until"),
        body=schemas.SnoozeIn,
    ),
    _action(
        "POST",
        "move",
        "moveTask",
        "Hand a task to another queue",
        _task_action(move_task, queue="queue"),
        body=schemas.MoveIn,
    ),
    _action(
        "POST",
        "call",
        "logCall",
        "Log a phone call with the patient",
        _task_action(log_call, note="note"),
        body=schemas.CallIn,
    ),
    ApiRoute(
        "GET",
        "/patients/{patient_id}",
        _patient,
        "getPatient",
        "A patient's record with therapies and adherence (audited)",
        response=schemas.PatientOut,
        tag="patients",
        path_types=_STRING_ID,
    ),
    ApiRoute(
        "GET",
        "/patients",
        _search_patients,
        "searchPatients",
        "Find the site's patients by name, id or the last 4 digits of the phone (audited)",
        response=schemas.PatientSearchOut,
        tag="patients",
        query=(
            QueryParam("q", {"type": "string", "maxLength": 100}, "name, patient id or last 4 digits", True),
        ),
    ),
    ApiRoute(
        "POST",
        "/patients/{patient_id}/phone",
        _reveal_phone,
        "revealPatientPhone",
        "A patient's full phone number (writes a phone_revealed audit event)",
        response=schemas.PhoneOut,
        tag="patients",
        path_types=_STRING_ID,
    ),
    ApiRoute(
        "GET",
        "/patients/{patient_id}/messages",
        _messages,
        "listPatientMessages",
        "A patient's SMS thread, oldest first (audited)",
        response=schemas.MessagePage,
        tag="patients",
        query=(_PAGE, _size(500, 100)),
        path_types=_STRING_ID,
    ),
    ApiRoute(
        "GET",
        "/signals",
        _signals,
        "listSignals",
        "The site's adherence and abandonment signals (clinic admins and tokens)",
        response=schemas.SignalPage,
        tag="signals",
        audit_only=True,
        query=(_SINCE, _PAGE, _size(1000, 100)),
    ),
    ApiRoute(
        "GET",
        "/audit",
        _audit,
        "listAudit",
        "The site's audit trail (clinic admins and tokens)",
        response=schemas.AuditPage,
        tag="audit",
        audit_only=True,
        query=(
            _SINCE,
            _PAGE,
            _size(1000, 100),
            QueryParam("action", {"type": "string"}, "e.g. patient.view"),
        ),
    ),
]


# -- OpenAPI ---------------------------------------------------------------------------------------------


def _parameters(route: ApiRoute) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": route.path_types.get(name, "integer")},
        }
        for name in _PATH_PARAM.findall(route.path)
    ]
    for q in route.query:
        entry: dict[str, Any] = {"name": q.name, "in": "query", "required": q.required, "schema": q.schema}
        if q.description:
            entry["description"] = q.description
        params.append(entry)
    return params


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _operation(route: ApiRoute) -> dict[str, Any]:
    error = {"application/json": {"schema": _ref(schemas.ErrorOut)}}
    responses: dict[str, Any] = {
        "200": {
            "description": "OK",
            "content": {"application/json": {"schema": _ref(route.response)}} if route.response else {},
        },
        "400": {"description": "invalid input (field names it)", "content": error},
        "401": {"description": "no or bad credentials", "content": error},
        "403": {"description": "role not allowed, or missing CSRF token", "content": error},
        "404": {"description": "not found at the caller's site", "content": error},
    }
    if route.method == "POST":
        responses["409"] = {"description": "the task's state does not allow it", "content": error}
    op: dict[str, Any] = {
        "operationId": route.name,
        "summary": route.summary,
        "tags": [route.tag],
        "parameters": _parameters(route),
        "responses": responses,
    }
    if route.body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(route.body)}}}
    return op


def openapi(routes: list[ApiRoute]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes`` (schemas from the pydantic models)."""
    models: dict[type[BaseModel], str] = {schemas.ErrorOut: "serialization"}
    for route in routes:
        if route.body is not None:
            models[route.body] = "validation"
        if route.response is not None:
            models.setdefault(route.response, "serialization")
    _, top = models_json_schema(
        [(m, mode) for m, mode in models.items()],  # type: ignore[misc]
        ref_template="#/components/schemas/{model}",
    )
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(PREFIX + route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "midbot API",
            "version": __version__,
            "description": "Pharmacist task queues, patient records, signals and audit of one site. "
            "Send `Authorization: Bearer TOKEN` (`midbot tokens create`). A resource of another site "
            'answers 404. Errors are `{"error", "field"}`.',
        },
        "paths": paths,
        "components": {
            "schemas": top.get("$defs", {}),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE},
            },
        },
        "security": [{"bearer": []}, {"session": []}],
    }


async def _openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi(request.app[API_ROUTES]))


# -- wiring ----------------------------------------------------------------------------------------------


def add_api_route(app: web.Application, route: ApiRoute) -> None:
    """Serve one more endpoint under /api/v1 and list it in the OpenAPI document (before startup)."""
    app[API_ROUTES].append(route)
    app.router.add_route(route.method, PREFIX + route.path, _endpoint(route), name=f"api.{route.name}")


def setup_api(app: web.Application) -> None:
    """Register the REST API and /api/v1/openapi.json (a second call does nothing)."""
    if API_ROUTES in app:
        return
    app[API_ROUTES] = []
    app.router.add_get(PREFIX + "/openapi.json", _openapi, name="api.openapi")
    for route in ROUTES:
        add_api_route(app, route)
