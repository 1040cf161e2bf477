"""The metrics dashboard: program figures beside benchmarks, as a page and a CSV download (JSON: bot.api)."""

from __future__ import annotations

import csv
import io
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from bot.db.audit import csv_cell
from bot.db.models import Site
from bot.keys import CLOCK, SESSIONMAKER, WEB_JINJA
from bot.staff.auth import BadCredentials, Principal, principal_from_request
from bot.web.charts import ChartPoint, bar_chart_svg, benchmark_words, format_value, month_words
from bot.web.layout import layout_context
from integrations.dispensary.computed import local_date, site_zone
from integrations.dispensary.metrics import (
    Metric,
    metrics_csv,
    monthly_series,
    parse_month,
    program_metrics,
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
CHART_MONTHS = 6
SERIES_FIELDS = ("site_id", "month", "key", "label", "value", "unit", "benchmark", "against_benchmark")
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


def verdict(meets: bool | None) -> str:
    """Whether a figure meets its benchmark, in words (the page and the CSV say the same)."""
    return {True: "meets", False: "misses", None: ""}[meets]


def series_csv(rows: list[Metric], series: dict[str, list[tuple[str, float | None]]], *, site_id: str) -> str:
    """The charts' figures, one row per metric and month (formula-like text neutralised, like every export)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SERIES_FIELDS)
    for metric in rows:
        for month, value in series.get(metric.key, []):
            judged = replace(metric, value=value).meets_benchmark
            cells = (site_id, month, metric.key, metric.label, value, metric.unit, metric.benchmark,
                     verdict(judged))  # fmt: skip
            writer.writerow([csv_cell(cell) for cell in cells])
    return out.getvalue()


@routes.get("/metrics-dashboard.csv")
async def metrics_csv_download(request: web.Request) -> web.Response:
    """The month's metrics as a CSV file; ``?months=6``: the charts' figures, every metric by month."""
    principal = await _page_principal(request)
    month = await _month(request, principal.site_id)
    months_raw = request.query.get("months", "").strip()
    if months_raw and not (months_raw.isdigit() and 1 <= int(months_raw) <= 36):
        raise _bad("months", "months: expected a whole number from 1 to 36")
    rows = await _metrics(request, principal.site_id, month)
    name = _filename(principal.site_id, month, months=int(months_raw) if months_raw else 0)
    if months_raw:
        async with request.app[SESSIONMAKER]() as session:
            series = await monthly_series(
                session, site_id=principal.site_id, months=int(months_raw), now=request.app[CLOCK].now(),
                until=month,
            )  # fmt: skip
        text = series_csv(rows, series, site_id=principal.site_id)
    else:
        text = metrics_csv(rows, site_id=principal.site_id, month=month)
    return web.Response(
        text=text,
        content_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )


def _filename(site_id: str, month: str, *, months: int = 0) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in site_id)
    span = f"-{months}-months" if months else ""
    return f"midbot-metrics-{safe}-{month}{span}.csv"


def _row(metric: Metric, points: list[tuple[str, float | None]]) -> dict[str, Any]:
    """What the page shows for one metric: its words, and a chart whose last column is the table's value."""
    chart = [ChartPoint(m, v, replace(metric, value=v).meets_benchmark) for m, v in points]
    return {
        "metric": metric,
        "value": format_value(metric.value, metric.unit),
        "benchmark": benchmark_words(metric.benchmark, metric.unit, metric.better, metric.strict),
        "verdict": verdict(metric.meets_benchmark),
        "better": "lower is better" if metric.better == "lower" else "higher is better",
        "svg": bar_chart_svg(
            chart,
            key=metric.key,
            label=metric.label,
            unit=metric.unit,
            benchmark=metric.benchmark,
            better=metric.better,
            strict=metric.strict,
        ),  # fmt: skip
        "first": month_words(points[0][0]) if points else "",
    }


@routes.get("/metrics-dashboard")
async def metrics_page(request: web.Request) -> web.Response:
    """One row per metric (this month's value, the benchmark, whether it meets it) and a chart per metric
    of the last six months. The chart's last column is this month: the same figure as the table."""
    principal = await _page_principal(request)
    month = await _month(request, principal.site_id)
    now = request.app[CLOCK].now()
    async with request.app[SESSIONMAKER]() as session:
        site = await session.get(Site, principal.site_id)
        rows = await program_metrics(session, site_id=principal.site_id, month=month, now=now)
        series = await monthly_series(
            session, site_id=principal.site_id, months=CHART_MONTHS, now=now, until=month
        )
    context: dict[str, Any] = {
        "site_id": principal.site_id,
        "site_name": site.name if site else principal.site_id,
        "month": month,
        "month_words": month_words(month),
        "chart_months": CHART_MONTHS,
        "principal": principal,
        "rows": [_row(m, series[m.key]) for m in rows],
    }
    return await _render(request, context, site)


async def _render(request: web.Request, context: dict[str, Any], site: Site | None) -> web.Response:
    """Render inside the staff pages' base.html when they are set up (bot.web.routes), else stand-alone."""
    if WEB_JINJA in request.app and site is not None:
        principal: Principal = context["principal"]
        async with request.app[SESSIONMAKER]() as session:
            context |= await layout_context(session, principal, site) | {"layout": "base.html"}
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
