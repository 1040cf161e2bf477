"""REST API under /api/v1/: tasks, patients, messages, signals, audit and metrics, and its OpenAPI 3.1 document.

Callers send ``Authorization: Bearer TOKEN`` (a site's API token) or, from the staff pages' own script,
the session cookie plus an ``X-CSRF-Token`` header on every POST. Every query is filtered by the caller's
site, so another site's resource answers 404. Errors are ``{"error": "...", "field": "..."}`` with a 4xx;
every parameter is read through a pydantic model (``bot.api.params``), so a bad one is a 400 naming it.

The route table (``ROUTES``) both registers the handlers and generates the OpenAPI document
(``bot.api.openapi``); other parts add endpoints with ``add_api_route(app, ApiRoute(...))`` before the app
starts.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError
from sqlalchemy import func, select

from bot.api import schemas
from bot.api.base import Answer, ApiCall, ApiRoute, Handler, error_response
from bot.api.openapi import PREFIX, document
from bot.api.params import parse_path, parse_query
from bot.db import audit
from bot.db.models import Signal, Site
from bot.db.signals import signal_to_dict
from bot.db.unit import in_session
from bot.keys import CLOCK, MESSAGING, SESSIONMAKER
from bot.staff.auth import (
    CSRF_HEADER,
    BadCredentials,
    Principal,
    constant_time_equal,
    principal_from_request,
)
from bot.staff.records import list_messages, load_patient_record
from bot.staff.tasks import (
    TaskError,
    TaskInvalid,
    TaskNotFound,
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
from integrations.dispensary.computed import local_date, site_zone
from integrations.dispensary.metrics import program_metrics

__all__ = ["PREFIX", "ROUTES", "Answer", "ApiCall", "ApiRoute", "add_api_route", "openapi", "setup_api"]

_LOGGER = logging.getLogger(__name__)
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# No request body of ours nests deeper than a FHIR Bundle (about 8); deeper is an attack on the parsers.
MAX_JSON_DEPTH = 32
openapi = document  # the name other parts know


# The REST route table the OpenAPI document is built from (kept here, beside the type it holds).
API_ROUTES: web.AppKey[list[ApiRoute]] = web.AppKey("api_routes")


def _validation_error(exc: ValidationError) -> web.Response:
    first = exc.errors()[0]
    loc = ".".join(str(part) for part in first["loc"])
    message = f"{loc}: {first['msg']}" if loc else str(first["msg"])
    return error_response(400, message, loc or None)


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
        return error_response(
            401, "the API token is not valid (send Authorization: Bearer TOKEN)", "Authorization"
        )
    if principal is None:
        return error_response(
            401, "authentication required: send Authorization: Bearer TOKEN", "Authorization"
        )
    if principal.kind == "user" and request.method in _UNSAFE:
        # A signed-in browser must prove the request comes from our own page, not another site.
        supplied = request.headers.get(CSRF_HEADER, "")
        if not constant_time_equal(supplied, principal.csrf_token):
            return error_response(403, "missing or bad CSRF token", CSRF_HEADER)
    return principal


async def _call(request: web.Request, route: ApiRoute, principal: Principal) -> ApiCall:
    """The call a handler gets, with the path, the query string and the body read (or TaskInvalid)."""
    path = parse_path(request.match_info)
    params = parse_query(route.query, request.query) if route.query is not None else None
    body, payload = await _parse_body(request, route) if request.method in _UNSAFE else (None, None)
    app = request.app
    return ApiCall(request, principal, app[CLOCK].now(), app[SESSIONMAKER], body, payload, params, path)


def _endpoint(route: ApiRoute) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        principal = await _authenticate(request)
        if isinstance(principal, web.Response):
            return principal
        if route.audit_only and not principal.can_read_audit:
            return error_response(403, "only clinic admins and API tokens may read this")
        if route.edits_records and not principal.can_edit_records:
            return error_response(403, "only clinic admins, pharmacists and API tokens may change the record")
        try:
            result = await route.handler(await _call(request, route, principal))
        except ValidationError as exc:
            return _validation_error(exc)
        except TaskError as exc:
            return error_response(exc.status, exc.message, exc.field)
        if isinstance(result, web.StreamResponse):
            return result
        return web.json_response(result.model_dump(mode="json"))

    handle.__name__ = route.name
    return handle


def _next(request: web.Request, page: int, size: int, total: int) -> str | None:
    if page * size >= total:
        return None
    return str(request.rel_url.update_query(page=page + 1))


_P = TypeVar("_P", bound=BaseModel)


def _paged(page_model: type[_P], call: ApiCall, q: Any, items: Sequence[BaseModel], total: int) -> _P:
    """One page of a list answer: its items, where it is, the total and the link to the next page."""
    return page_model(
        items=items,
        page=q.page,
        page_size=q.page_size,
        total=total,
        next=_next(call.request, q.page, q.page_size, total),
    )


# -- handlers --------------------------------------------------------------------------------------------


async def _list_tasks(call: ApiCall) -> BaseModel:
    q = call.query(schemas.TaskQuery)
    async with call.sessionmaker.begin() as session:
        tasks, total = await list_tasks(
            session,
            call.principal,
            now=call.now,
            queue=q.queue,
            status=q.status,
            priority=q.priority,
            mine=q.mine,
            unassigned=q.unassigned,
            page=q.page,
            page_size=q.page_size,
        )
    items = [schemas.task_out(t, call.now) for t in tasks]
    return _paged(schemas.TaskPage, call, q, items, total)


async def _get_task(call: ApiCall) -> BaseModel:
    async with call.sessionmaker.begin() as session:
        task = await get_task(session, call.principal, call.path["task_id"])
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
        task_id = call.path["task_id"]
        async with call.sessionmaker.begin() as session:
            await action(session, call.principal, task_id, now=call.now, **kwargs)
            task = await get_task(session, call.principal, task_id)
        return schemas.task_out(task, call.now)

    return handle


async def _reply(call: ApiCall) -> BaseModel | web.StreamResponse:
    assert isinstance(call.body, schemas.ReplyIn)
    channel = call.request.app.get(MESSAGING)
    if channel is None:
        return error_response(503, "SMS sending is not configured on this server")
    task_id = call.path["task_id"]
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
    patient_id = call.path["patient_id"]
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
    q = call.query(schemas.PatientSearchQuery)
    async with call.sessionmaker.begin() as session:
        hits = await search_patients(session, call.principal, q.q, now=call.now, via="api")
    return schemas.PatientSearchOut(
        items=[schemas.PatientHitOut.model_validate(hit, from_attributes=True) for hit in hits]
    )


async def _reveal_phone(call: ApiCall) -> BaseModel:
    async with call.sessionmaker.begin() as session:
        phone = await reveal_phone(session, call.principal, call.path["patient_id"], now=call.now, via="api")
    return schemas.PhoneOut(phone=phone)


async def _messages(call: ApiCall) -> BaseModel:
    q = call.query(schemas.MessageQuery)
    async with call.sessionmaker.begin() as session:
        rows, total = await list_messages(
            session,
            call.principal,
            call.path["patient_id"],
            now=call.now,
            via="api",
            page=q.page,
            page_size=q.page_size,
        )
    return _paged(schemas.MessagePage, call, q, [schemas.message_out(m) for m in rows], total)


async def _signals(call: ApiCall) -> BaseModel:
    q = call.query(schemas.SignalQuery)
    filters = [Signal.site_id == call.principal.site_id]
    if isinstance(q.since, int):
        filters.append(Signal.id > q.since)
    elif q.since is not None:
        filters.append(Signal.created_at >= q.since)
    async with call.sessionmaker.begin() as session:
        total = await session.scalar(select(func.count(Signal.id)).where(*filters)) or 0
        rows = await session.scalars(
            select(Signal)
            .where(*filters)
            .order_by(Signal.id)
            .limit(q.page_size)
            .offset((q.page - 1) * q.page_size)
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
    return _paged(schemas.SignalPage, call, q, items, total)


async def _audit(call: ApiCall) -> BaseModel:
    q = call.query(schemas.AuditQuery)
    async with call.sessionmaker.begin() as session:
        events, total = await audit.list_events(
            session,
            site_id=call.principal.site_id,
            since=q.since,
            action=q.action,
            limit=q.page_size,
            offset=(q.page - 1) * q.page_size,
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
    return _paged(schemas.AuditPage, call, q, items, total)


async def _metrics(call: ApiCall) -> BaseModel:
    q = call.query(schemas.MetricsQuery)
    site_id = call.principal.site_id
    if q.site is not None and q.site != site_id:
        raise TaskNotFound("site not found", "site")  # another site's figures: as if it did not exist
    async with call.sessionmaker() as session:
        month = q.month or local_date(call.now, site_zone(await session.get(Site, site_id))).strftime("%Y-%m")
        rows = await program_metrics(session, site_id=site_id, month=month, now=call.now)
    metrics = [schemas.MetricOut(**m.as_dict(), meets_benchmark=m.meets_benchmark) for m in rows]
    return schemas.MetricsOut(site_id=site_id, month=month, metrics=metrics)


# -- the route table -------------------------------------------------------------------------------------

_CONFLICT = Answer(409, "the task's state does not allow it (resolved, claimed by someone else, refused)")
_FORBIDDEN = Answer(403, "the caller's role does not work this queue")


def _link(operation: str, **parameters: str) -> dict[str, Any]:
    return {"operationId": operation, "parameters": parameters}


_TASK_LINKS = {
    verb: _link(operation, task_id="$response.body#/id")
    for verb, operation in (("get", "getTask"), ("claim", "claimTask"), ("release", "releaseTask"),
                            ("reply", "replyToTask"), ("resolve", "resolveTask"), ("call", "logCall"),
                            ("snooze", "snoozeTask"), ("move", "moveTask"))
}  # fmt: skip


def _action(verb: str, name: str, summary: str, handler: Handler, **kw: Any) -> ApiRoute:
    return ApiRoute(
        "POST",
        f"/tasks/{{task_id}}/{verb}",
        handler,
        name,
        summary,
        response=kw.pop("response", schemas.TaskOut),
        answers=(_FORBIDDEN, _CONFLICT, *kw.pop("answers", ())),
        **kw,
    )


ROUTES: list[ApiRoute] = [
    ApiRoute(
        "GET",
        "/tasks",
        _list_tasks,
        "listTasks",
        "List the caller's tasks, most urgent first",
        response=schemas.TaskPage,
        query=schemas.TaskQuery,
        answers=(Answer(403, "the caller's role does not work the queue asked for"),),
        links={
            "getFirstTask": _link("getTask", task_id="$response.body#/items/0/id"),
            "claimFirstTask": _link("claimTask", task_id="$response.body#/items/0/id"),
            "getFirstPatient": _link("getPatient", patient_id="$response.body#/items/0/patient_id"),
        },
    ),
    ApiRoute(
        "GET",
        "/tasks/{task_id}",
        _get_task,
        "getTask",
        "A task with its timeline",
        response=schemas.TaskDetailOut,
        answers=(_FORBIDDEN,),
        links={k: v for k, v in _TASK_LINKS.items() if k != "get"}
        | {"getPatient": _link("getPatient", patient_id="$response.body#/patient_id")},
    ),
    _action("claim", "claimTask", "Claim a task", _task_action(claim_task), links=_TASK_LINKS),
    _action(
        "release",
        "releaseTask",
        "Give a claimed task back to its queue",
        _task_action(release_task),
        links=_TASK_LINKS,
    ),
    _action(
        "reply",
        "replyToTask",
        "Text the task's patient",
        _reply,
        body=schemas.ReplyIn,
        response=schemas.ReplyOut,
        answers=(Answer(503, "SMS sending is not configured on this server"),),
    ),
    _action(
        "resolve",
        "resolveTask",
        "Resolve a task with an outcome code (note required for other)",
        _task_action(resolve_task, outcome="outcome", note="note"),
        body=schemas.ResolveIn,
    ),
    _action(
        "snooze",
        "snoozeTask",
        "Hide a task until a time",
        _task_action(snooze_task, until="until"),
        body=schemas.SnoozeIn,
    ),
    _action(
        "move",
        "moveTask",
        "Hand a task to another queue",
        _task_action(move_task, queue="queue"),
        body=schemas.MoveIn,
        links=_TASK_LINKS,
    ),
    _action(
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
        links={"listMessages": _link("listPatientMessages", patient_id="$response.body#/id")},
    ),
    ApiRoute(
        "GET",
        "/patients",
        _search_patients,
        "searchPatients",
        "Find the site's patients by name, id or the last 4 digits of the phone (audited)",
        response=schemas.PatientSearchOut,
        tag="patients",
        query=schemas.PatientSearchQuery,
        links={
            "getFirstPatient": _link("getPatient", patient_id="$response.body#/items/0/id"),
            "revealFirstPhone": _link("revealPatientPhone", patient_id="$response.body#/items/0/id"),
        },
    ),
    ApiRoute(
        "POST",
        "/patients/{patient_id}/phone",
        _reveal_phone,
        "revealPatientPhone",
        "A patient's full phone number (writes a phone_revealed audit event)",
        response=schemas.PhoneOut,
        tag="patients",
    ),
    ApiRoute(
        "GET",
        "/patients/{patient_id}/messages",
        _messages,
        "listPatientMessages",
        "A patient's SMS thread, oldest first (audited)",
        response=schemas.MessagePage,
        tag="patients",
        query=schemas.MessageQuery,
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
        query=schemas.SignalQuery,
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
        query=schemas.AuditQuery,
    ),
    ApiRoute(
        "GET",
        "/metrics",
        _metrics,
        "getMetrics",
        "The program's figures of a month beside their benchmarks (NCODA where there is one)",
        response=schemas.MetricsOut,
        tag="metrics",
        query=schemas.MetricsQuery,
        answers=(Answer(404, "site is not the caller's"),),
    ),
]


# -- wiring ----------------------------------------------------------------------------------------------


async def _openapi(request: web.Request) -> web.Response:
    return web.json_response(document(request.app[API_ROUTES]))


@web.middleware
async def _api_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Under /api/v1, an unknown path or method is a JSON error like every other (405 keeps its Allow)."""
    try:
        return await handler(request)
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as exc:
        if not request.path.startswith(PREFIX + "/"):
            raise
        if isinstance(exc, web.HTTPNotFound):
            return error_response(404, "no such endpoint (see /api/v1/openapi.json)", "path")
        response = error_response(405, f"{request.method} is not allowed here", "method")
        response.headers["Allow"] = exc.headers.get("Allow", "")
        return response


def add_api_route(app: web.Application, route: ApiRoute) -> None:
    """Serve one more endpoint under /api/v1 and list it in the OpenAPI document (before startup)."""
    app[API_ROUTES].append(route)
    app.router.add_route(route.method, PREFIX + route.path, _endpoint(route), name=f"api.{route.name}")


def setup_api(app: web.Application) -> None:
    """Register the REST API and /api/v1/openapi.json (a second call does nothing)."""
    if API_ROUTES in app:
        return
    app[API_ROUTES] = []
    app.middlewares.append(_api_errors)
    app.router.add_get(PREFIX + "/openapi.json", _openapi, name="api.openapi")
    for route in ROUTES:
        add_api_route(app, route)
