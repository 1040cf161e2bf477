"""The metrics dashboard page, its CSV and the JSON API: signed-in only, the caller's site only."""

from __future__ import annotations

import csv
import io
import re

import pytest
from aiohttp import web

from bot.api.routes import setup_api
from bot.app import error_middleware, security_headers_middleware
from bot.db.migrate import upgrade
from bot.db.session import make_engine, make_sessionmaker
from bot.keys import CLOCK, SESSIONMAKER, SETTINGS
from bot.settings import Settings
from bot.staff.auth import SESSION_COOKIE, create_api_token, create_user, start_session
from bot.web.metrics import setup_metrics_page

from .conftest import seed_people
from .test_program_metrics import NOW, _seed_october


@pytest.fixture(params=["stand-alone"])
async def client(request, aiohttp_client, settings: Settings, clock):
    engine = make_engine(settings.database_url)
    await upgrade(engine)
    maker = make_sessionmaker(engine)
    async with maker.begin() as session:
        await seed_people(session)
        await _seed_october(session)
        user, _ = await create_user(
            session, site_id="s1", email="rx@example.org", role="pharmacist", password="correct horse battery"
        )
        cookie, _ = await start_session(session, user, now=NOW, max_age_minutes=60)
        _, token = await create_api_token(session, site_id="s1", name="ehr", now=NOW)
        _, other = await create_api_token(session, site_id="s2", name="other", now=NOW)
    clock.set(NOW)
    # Only what the metrics routes need (the full create_app also wires messaging, tested elsewhere).
    app = web.Application(middlewares=[security_headers_middleware, error_middleware])
    app[SETTINGS], app[CLOCK], app[SESSIONMAKER] = settings, clock, maker

    async def dispose(_app: web.Application) -> None:
        await engine.dispose()

    app.on_cleanup.append(dispose)
    if request.param == "staff-pages":
        from bot.web.routes import setup_web

        setup_web(app)
    setup_metrics_page(app)
    setup_metrics_page(app)  # idempotent
    setup_api(app)  # GET /api/v1/metrics
    test_client = await aiohttp_client(app)
    test_client.tokens = {"s1": token, "s2": other}
    test_client.cookie = cookie
    return test_client


async def test_pages_need_sign_in(client) -> None:
    page = await client.get("/metrics-dashboard", allow_redirects=False)
    assert page.status == 302 and page.headers["Location"].startswith("/login")
    download = await client.get("/metrics-dashboard.csv", allow_redirects=False)
    assert download.status == 302
    api = await client.get("/api/v1/metrics")
    assert api.status == 401 and "error" in await api.json()
    bad = await client.get("/api/v1/metrics", headers={"Authorization": "Bearer mbt_nope"})
    assert bad.status == 401


async def test_dashboard_shows_each_metric_with_benchmark_and_chart(client, output_dir) -> None:
    page = await client.get("/metrics-dashboard?month=2026-10", cookies={SESSION_COOKIE: client.cookie})
    assert page.status == 200 and page.content_type == "text/html"
    html = await page.text()
    (output_dir / "metrics-dashboard.html").write_text(html, encoding="utf-8")  # for people to look at
    for key in ("primary_abandonment", "time_to_fill", "mean_pdc", "pdc_adherent", "secondary_abandonment",
                "outreach_response", "sla_compliance", "opt_out"):  # fmt: skip
        assert f'id="metric-{key}"' in html and f'id="chart-{key}"' in html
    assert html.count("<svg") == 8 and "<script" not in html
    assert '<td class="value" data-label="This month">50%</td>' in html
    assert '<td class="value" data-label="This month">2 days</td>' in html
    assert "&lt; 5%" in html and "&gt; 90%" in html and "≥ 71.6%" in html
    assert "NCODA MID &lt; 5% (industry 20%)" in html
    assert html.count("Misses the benchmark") == 5  # in words, not colour only
    # Each chart's last column is the month in the table: the reply rate reads the same in both.
    for key in ("outreach_response", "primary_abandonment", "time_to_fill", "opt_out"):
        row = re.search(rf'id="metric-{key}".*?<td class="value"[^>]*>([^<]*)</td>', html, re.S)
        chart = re.search(rf'id="chart-svg-{key}".*?</svg>', html, re.S)
        assert row and chart, key
        labels = re.findall(r'class="value" data-month="([0-9-]+)"[^>]*>([^<]*)</text>', chart.group(0))
        assert labels[-1][0] == "2026-10", key
        assert labels[-1][1].replace(" d", " days") == row.group(1), key
    assert 'value="2026-10"' in html
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


async def test_dashboard_defaults_to_this_month_and_refuses_a_bad_one(client) -> None:
    cookies = {SESSION_COOKIE: client.cookie}
    page = await client.get("/metrics-dashboard", cookies=cookies)
    assert page.status == 200 and 'value="2026-11"' in await page.text()
    bad = await client.get("/metrics-dashboard?month=october", cookies=cookies)
    assert bad.status == 400 and (await bad.json())["field"] == "month"


async def test_csv_download(client) -> None:
    response = await client.get(
        "/metrics-dashboard.csv?month=2026-10", cookies={SESSION_COOKIE: client.cookie}
    )
    assert response.status == 200 and response.content_type == "text/csv"
    assert 'filename="midbot-metrics-s1-2026-10.csv"' in response.headers["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(await response.text())))
    assert len(table) == 8 and table[0]["value"] == "50.0"
    cookies = {SESSION_COOKIE: client.cookie}
    series = await client.get("/metrics-dashboard.csv?month=2026-10&months=6", cookies=cookies)
    assert 'filename="midbot-metrics-s1-2026-10-6-months.csv"' in series.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(await series.text())))
    assert len(rows) == 8 * 6 and rows[5] == {
        "site_id": "s1", "month": "2026-10", "key": "primary_abandonment", "label": "Primary abandonment",
        "value": "50.0", "unit": "%", "benchmark": "5.0", "against_benchmark": "misses",
    }  # fmt: skip
    bad = await client.get("/metrics-dashboard.csv?months=0", cookies=cookies)
    assert bad.status == 400 and (await bad.json())["field"] == "months"


async def test_api_returns_the_tokens_site_only(client) -> None:
    auth = {"Authorization": f"Bearer {client.tokens['s1']}"}
    response = await client.get("/api/v1/metrics?month=2026-10", headers=auth)
    assert response.status == 200
    body = await response.json()
    assert body["site_id"] == "s1" and body["month"] == "2026-10"
    first = body["metrics"][0]
    assert (
        first["key"] == "primary_abandonment" and first["value"] == 50.0 and first["meets_benchmark"] is False
    )
    other = await client.get("/api/v1/metrics?site=s2&month=2026-10", headers=auth)
    assert other.status == 404 and (await other.json())["field"] == "site"
    s2 = await client.get(
        "/api/v1/metrics?month=2026-10", headers={"Authorization": f"Bearer {client.tokens['s2']}"}
    )
    assert s2.status == 200 and (await s2.json())["metrics"][0]["n"] == 0
    bad = await client.get("/api/v1/metrics?month=2026-1", headers=auth)
    assert bad.status == 400 and (await bad.json()) == {"error": "month: expected YYYY-MM", "field": "month"}


@pytest.mark.parametrize("client", ["staff-pages"], indirect=True)
async def test_dashboard_inside_the_staff_pages_layout(client) -> None:
    page = await client.get("/metrics-dashboard?month=2026-10", cookies={SESSION_COOKIE: client.cookie})
    assert page.status == 200
    html = await page.text()
    assert 'id="sign-out"' in html and "Site One" in html and "rx@example.org" in html  # their base.html
    assert html.count("<svg") == 8 and 'id="metric-opt_out"' in html
    assert page.headers["Cache-Control"] == "no-store"
