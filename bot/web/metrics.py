"""The metrics dashboard: program figures beside benchmarks, as a page and a CSV download (JSON: bot.api)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from markupsafe import Markup

from bot.db.models import Site
from bot.keys import CLOCK, SESSIONMAKER, WEB_JINJA
from bot.staff.auth import BadCredentials, Principal, principal_from_request
from integrations.dispensary.computed import local_date, site_zone
from integrations.dispensary.metrics import (
    Metric,
    metrics_csv,
    monthly_series,
    parse_month,
    program_metrics,
    sparkline_svg,
)

__all__ = ["setup_metrics_page"]

_LOGGER = logging.getLogger(__name__)
_TEMPLATES = Path(__file__).parent / "templates"
# Used only when the staff pages' base.html is not there (the page still renders on its own).
_FALLBACK_LAYOUT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{% block title %}{% endblock %} · midbot</title></head>
<body><main id="main">{% block main %}{% endblock %}</main></body></html>"""
_FALLBACK_NAME = "_metrics_layout.html"
_OWN_ENV = web.AppKey("metrics_jinja_env", jinja2.Environment)
routes = web.RouteTableDef()


def _own_env() -> jinja2.Environment:
    loader = jinja2.ChoiceLoader(
        [jinja2.FileSystemLoader(_TEMPLATES), jinja2.DictLoader({_FALLBACK_NAME: _FALLBACK_LAYOUT})]
    )
    return jinja2.Environment(loader=loader, autoescape=True)


def _bad(field: str, message: str, status: int = 400) -> web.HTTPException:
    body = json.dumps({"error": message, "field": field})
    cls = web.HTTPNotFound if status == 404 else web.HTTPBadRequest
    return cls(text=body, content_type="application/json")


async def _principal(request: web.Request, *, allow_token: bool) -> Principal | None:
    try:
        return await principal_from_request(request, allow_token=allow_token)
    except BadCredentials:
        return None


async def _month(request: web.Request, site_id: str) -> str:
    """The ?month= value, validated (400 naming the field), else this month in the site's time zone."""
    month = request.query.get("month", "").strip()
    if month:
        try:
            parse_month(month)
        except ValueError:
            raise _bad("month", "month: expected YYYY-MM") from None
        return month
    async with request.app[SESSIONMAKER]() as session:
        site = await session.get(Site, site_id)
    return local_date(request.app[CLOCK].now(), site_zone(site)).strftime("%Y-%m")


async def _metrics(request: web.Request, site_id: str, month: str) -> list[Metric]:
    async with request.app[SESSIONMAKER]() as session:
        return await program_metrics(session, site_id=site_id, month=month, now=request.app[CLOCK].now())


async def _page_principal(request: web.Request) -> Principal:
    principal = await _principal(request, allow_token=False)
    if principal is None:
        raise web.HTTPFound(f"/login?next={request.path}")
    return principal


@routes.get("/metrics-dashboard.csv")
async def metrics_csv_download(request: web.Request) -> web.Response:
    """The month's metrics as a CSV file."""
    principal = await _page_principal(request)
    month = await _month(request, principal.site_id)
    rows = await _metrics(request, principal.site_id, month)
    return web.Response(
        text=metrics_csv(rows, site_id=principal.site_id, month=month),
        content_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{_filename(principal.site_id, month)}"'},
    )


def _filename(site_id: str, month: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in site_id)
    return f"midbot-metrics-{safe}-{month}.csv"


@routes.get("/metrics-dashboard")
async def metrics_page(request: web.Request) -> web.Response:
    """One row per metric: this month's value, the benchmark and a six-month chart."""
    principal = await _page_principal(request)
    month = await _month(request, principal.site_id)
    now = request.app[CLOCK].now()
    async with request.app[SESSIONMAKER]() as session:
        site = await session.get(Site, principal.site_id)
        rows = await program_metrics(session, site_id=principal.site_id, month=month, now=now)
        series = await monthly_series(session, site_id=principal.site_id, months=6, now=now, until=month)
    context: dict[str, Any] = {
        "site_id": principal.site_id,
        "month": month,
        "principal": principal,
        "rows": [
            {"metric": m, "svg": Markup(sparkline_svg([v for _, v in series[m.key]], m.benchmark))}
            for m in rows
        ],
    }
    return _render(request, context, site)


def _render(request: web.Request, context: dict[str, Any], site: Site | None) -> web.Response:
    """Render inside the staff pages' base.html when they are set up (bot.web.routes), else stand-alone."""
    if WEB_JINJA in request.app and site is not None:
        from bot.web import routes as staff

        principal: Principal = context["principal"]
        context |= {
            "layout": "base.html",
            "site": site,
            "csrf": principal.csrf_token,
            "role_label": staff.ROLE_LABELS.get(principal.role, principal.role),
            "static": staff.STATIC_PREFIX,
        }
        response = aiohttp_jinja2.render_template("metrics.html", request, context, app_key=WEB_JINJA)
    else:
        html = request.app[_OWN_ENV].get_template("metrics.html").render(context | {"layout": _FALLBACK_NAME})
        response = web.Response(text=html, content_type="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


def setup_metrics_page(app: web.Application) -> None:
    """Add GET /metrics-dashboard and /metrics-dashboard.csv (behind sign-in; GET /api/v1/metrics is bot.api's)."""
    if _OWN_ENV in app:  # already set up (idempotent, so wiring it twice is harmless)
        return
    app[_OWN_ENV] = _own_env()
    app.add_routes(routes)
