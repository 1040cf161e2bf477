"""What an API endpoint is: its route (served and documented from one description), the call a handler gets, errors.

``ApiRoute`` names the pydantic models of an endpoint — query string, body, answer — and every other answer it
can give (``Answer``); ``bot.api.routes`` serves it and ``bot.api.openapi`` documents it from the same fields.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.api import schemas
from bot.staff.auth import Principal

__all__ = ["Answer", "ApiCall", "ApiRoute", "Handler", "error_response"]

Q = TypeVar("Q", bound=BaseModel)


@dataclass(slots=True)
class ApiCall:
    """What a handler gets: the request, the caller, the validated parameters and body, and the clock."""

    request: web.Request
    principal: Principal
    now: datetime
    sessionmaker: async_sessionmaker[AsyncSession]
    body: BaseModel | None = None
    payload: Any = None  # the raw JSON body, for endpoints that take one object or a list
    params: BaseModel | None = None  # the query string, read by the route's ``query`` model
    path: dict[str, Any] = field(default_factory=dict)  # the path parameters, typed (bot.api.params)

    def query(self, model: type[Q]) -> Q:
        """The query string as the route's model."""
        assert isinstance(self.params, model), f"the route reads its query as {type(self.params).__name__}"
        return self.params


Handler = Callable[[ApiCall], Awaitable[BaseModel | web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Answer:
    """One more answer an endpoint gives, for the OpenAPI document (an error is ``ErrorOut`` unless named)."""

    status: int
    description: str
    model: type[BaseModel] | None = None
    media_type: str = "application/json"


@dataclass(frozen=True, slots=True)
class ApiRoute:
    """One endpoint: how it is served and how the OpenAPI document describes it.

    Every endpoint may answer 400 (a bad parameter or body) and 401 (no or bad credentials); a POST also 403 (a
    signed-in browser without the CSRF header) and 413 (a body over the size limit); a route with path
    parameters 404. ``answers`` adds the others it gives (409, 422, 503, a second kind of 200).
    """

    method: str
    path: str  # below PREFIX, e.g. "/tasks/{task_id}"; path parameters are typed in bot.api.params.PATH_TYPES
    handler: Handler
    name: str
    summary: str
    body: type[BaseModel] | None = None  # validated into ApiCall.body
    response: type[BaseModel] | None = None
    query: type[BaseModel] | None = None  # read into ApiCall.params
    tag: str = "tasks"
    audit_only: bool = False  # clinic admins and API tokens only
    edits_records: bool = False  # changes patients, prescriptions or fills: Principal.can_edit_records only
    answers: tuple[Answer, ...] = ()
    body_doc: type[BaseModel] | None = None  # documents a body the handler reads itself (ApiCall.payload)
    links: dict[str, dict[str, Any]] = field(default_factory=dict)  # OpenAPI links of the 200 answer


def error_response(status: int, message: str, field_name: str | None = None) -> web.Response:
    """The JSON error every 4xx of the API is: ``{"error", "field"}`` (a 401 also says how to authenticate)."""
    body = schemas.ErrorOut(error=message, field=field_name).model_dump()
    response = web.json_response(body, status=status)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="midbot"'
    return response
