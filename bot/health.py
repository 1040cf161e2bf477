"""Liveness and readiness endpoints."""

from __future__ import annotations

import logging

from aiohttp import web
from sqlalchemy import text

from bot.db.migrate import current_revision, head_revision
from bot.keys import ENGINE

__all__ = ["routes"]

_LOGGER = logging.getLogger(__name__)
routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(_request: web.Request) -> web.Response:
    """The process is up and serving."""
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """The database answers and its schema is at the migration head this build ships."""
    engine = request.app[ENGINE]
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        current = await current_revision(engine)
    except Exception as exc:  # any driver error means not ready
        _LOGGER.warning("readiness: database unreachable: %s", type(exc).__name__)
        return web.json_response({"status": "unavailable", "database": "unreachable"}, status=503)
    head = head_revision()
    body = {
        "status": "ok" if current == head else "unavailable",
        "database": "ok",
        "migration": current,
        "head": head,
    }
    return web.json_response(body, status=200 if current == head else 503)
