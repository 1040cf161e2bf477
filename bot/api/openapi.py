"""The OpenAPI 3.1 document of the REST API, built from the route table and the pydantic models the handlers use.

Each operation lists every answer it gives: 200 (its response model; a page carries ``page``, ``page_size``,
``total`` and ``next``), then the errors — 400 and 401 everywhere, 403, 404 and 413 where they happen (see
``ApiRoute``), and the route's own ``answers`` (409, 422, 503, a FHIR ``batch-response``).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from bot import __version__
from bot.api import schemas
from bot.api.base import Answer, ApiRoute
from bot.api.params import path_schema, query_parameters
from bot.staff.auth import SESSION_COOKIE

__all__ = ["PREFIX", "answers", "document"]

PREFIX = "/api/v1"
_PATH_PARAM = re.compile(r"{(\w+)}")
_UNAUTHORIZED = Answer(401, "no or bad credentials (the WWW-Authenticate header says how to send them)")
_WWW_AUTHENTICATE = {"WWW-Authenticate": {"description": 'Bearer realm="midbot"', "schema": {"type": "string"}}}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _path_names(route: ApiRoute) -> list[str]:
    return _PATH_PARAM.findall(route.path)


def _parameters(route: ApiRoute) -> list[dict[str, Any]]:
    params = [
        {"name": name, "in": "path", "required": True, "schema": path_schema(name)} for name in _path_names(route)
    ]
    return params + (query_parameters(route.query) if route.query is not None else [])


def answers(route: ApiRoute) -> list[Answer]:
    """Every answer ``route`` gives, the 200 first."""
    found = [Answer(200, "OK", route.response)]
    found.append(Answer(400, "a parameter or the body is not valid (`field` names it)"))
    found.append(_UNAUTHORIZED)
    post = route.method == "POST"
    if post or route.audit_only or route.edits_records:
        why = "only clinic admins and tokens may" if route.audit_only else "the caller's role may not"
        found.append(Answer(403, f"{why} do this" + (", or the CSRF header is missing" if post else "")))
    if _path_names(route):
        found.append(Answer(404, "not found at the caller's site (another site's is not found either)"))
    if post:
        found.append(Answer(413, "the body is over the size limit (8 MiB)"))
    return found + list(route.answers)


def _responses(route: ApiRoute) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for answer in answers(route):
        model = answer.model or (schemas.ErrorOut if answer.status >= 400 else None)
        entry = responses.setdefault(str(answer.status), {"description": answer.description, "content": {}})
        if entry["description"] != answer.description:
            entry["description"] += f"; {answer.description}"
        if model is not None:
            entry["content"][answer.media_type] = {"schema": _ref(model)}
        if answer.status == 401:
            entry["headers"] = _WWW_AUTHENTICATE
    if route.links:
        responses["200"]["links"] = route.links
    return responses


def _operation(route: ApiRoute) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": route.name,
        "summary": route.summary,
        "tags": [route.tag],
        "parameters": _parameters(route),
        "responses": _responses(route),
    }
    body = route.body or route.body_doc
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    return op


def _models(routes: list[ApiRoute]) -> dict[type[BaseModel], JsonSchemaMode]:
    models: dict[type[BaseModel], JsonSchemaMode] = {schemas.ErrorOut: "serialization"}
    for route in routes:
        for body in (route.body, route.body_doc):
            if body is not None:
                models[body] = "validation"
        for answer in answers(route):
            if answer.model is not None:
                models.setdefault(answer.model, "serialization")
    return models


def document(routes: list[ApiRoute]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes`` (schemas from the pydantic models)."""
    _, top = models_json_schema(
        list(_models(routes).items()),
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
            "description": "Pharmacist task queues, patient records, imports, signals and audit of one site. "
            "Send `Authorization: Bearer TOKEN` (`midbot tokens create`). A resource of another site "
            'answers 404. Errors are `{"error", "field"}` (`field` names the parameter, body field or header '
            "at fault); FHIR errors are an OperationOutcome. Lists are pages: `items`, `page`, `page_size`, "
            "`total` and `next` (the URL of the next page, or null).",
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
