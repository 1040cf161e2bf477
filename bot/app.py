"""The aiohttp application factory."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
from aiohttp import web

from bot import health
from bot.clock import Clock, SystemClock
from bot.db.session import make_engine, make_sessionmaker
from bot.keys import CLOCK, ENGINE, HTTP, JOBS, SESSIONMAKER, SETTINGS
from bot.logs import REQUEST_ID
from bot.settings import Settings

__all__ = ["create_app"]

_LOGGER = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Tag each request (and its log lines) with an id, echoed in X-Request-Id."""
    rid = request.headers.get("X-Request-Id", "")[:64] or secrets.token_hex(8)
    token = REQUEST_ID.set(rid)
    try:
        response = await handler(request)
    finally:
        REQUEST_ID.reset(token)
    response.headers["X-Request-Id"] = rid
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn unexpected errors into a JSON 500 without a traceback in the body; HTTP errors pass."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception:
        _LOGGER.exception("unhandled error on %s %s", request.method, request.path)
        return web.json_response({"error": "internal error", "request_id": REQUEST_ID.get()}, status=500)


@web.middleware
async def security_headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """CSP that forbids inline script, and the usual hardening headers on every response."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
        _harden(response)
        raise
    _harden(response)
    return response


def _harden(response: web.StreamResponse) -> None:
    if response.prepared:
        return
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")


def _database_ctx(settings: Settings) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        app[ENGINE] = engine
        app[SESSIONMAKER] = make_sessionmaker(engine)
        yield
        await engine.dispose()

    return ctx


async def _http_ctx(app: web.Application) -> AsyncIterator[None]:
    app[HTTP] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
    yield
    await app[HTTP].close()


def create_app(settings: Settings, clock: Clock | None = None) -> web.Application:
    """Build the midbot web application: store, HTTP client, webhooks, API, pages, dispatcher."""
    app = web.Application(
        middlewares=[request_id_middleware, security_headers_middleware, error_middleware],
        client_max_size=8 * 1024 * 1024,
    )
    app[SETTINGS] = settings
    app[CLOCK] = clock or SystemClock()
    app[JOBS] = []
    app.cleanup_ctx.append(_database_ctx(settings))
    app.cleanup_ctx.append(_http_ctx)
    app.add_routes(health.routes)
    for setup in _subsystems():
        setup(app)
    return app


def _subsystems() -> list[Callable[[web.Application], None]]:
    """The parts that plug routes and background jobs into the app, in dependency order."""
    from bot import services
    from bot.api.imports import setup_imports
    from bot.api.routes import setup_api
    from bot.web.metrics import setup_metrics_page
    from bot.web.routes import setup_escalation, setup_web
    from integrations.dispensary.sinks import setup_sinks

    return [
        services.setup_messaging,
        setup_web,
        setup_api,
        setup_imports,
        setup_metrics_page,
        setup_escalation,
        setup_sinks,
        services.setup_dispatch,
        services.setup_jobs,
    ]
