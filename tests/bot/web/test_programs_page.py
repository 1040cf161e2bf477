"""The /programs page over HTTP: clinic admins only, the linter's findings beside their lines, the preview,
a paused load that plans nothing until resumed, an upload, bad input named, and every load audited."""

from __future__ import annotations

import re

import aiohttp
from sqlalchemy import select

from bot.db.models import AuditEvent, Outreach, Program, Site
from bot.keys import SESSIONMAKER
from tests.bot.support import sign_in

GOOD = """\
programs:
  - id: refill
    kind: refill_reminder
    trigger:
      run_out: {days_before: [5, 2]}
    templates:
      en: "Hi {first_name}, time to refill. Reply 1 to refill, 2 if you still have enough, 3 to talk to us."
      es: "Hola {first_name}, es hora de resurtir. Responda 1 para resurtir, 2 si aún tiene, 3 para hablar."
"""
BAD = GOOD.replace("Hola {first_name}", "Hola {primer_nombre}")  # line 8


def _form(csrf: str, text: str, action: str, **extra: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    for name, value in {"csrf_token": csrf, "yaml": text, "action": action, **extra}.items():
        form.add_field(name, value)
    return form


async def _audit(client, action: str) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    async with client.server.app[SESSIONMAKER]() as session:
        return list(await session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


async def test_only_clinic_admins_see_or_change_programs(web_client) -> None:
    client, _seeded = web_client
    anonymous = await client.get("/programs", allow_redirects=False)
    assert anonymous.status == 303 and anonymous.headers["Location"] == "/login?next=/programs"
    for role in ("pharmacist", "technician", "navigator"):
        client.session.cookie_jar.clear()
        csrf = await sign_in(client, role)
        page = await client.get("/programs")
        assert page.status == 403 and "Only clinic admins" in await page.text()
        post = await client.post("/programs", data=_form(csrf, GOOD, "load_active"))
        assert post.status == 403
        switch = await client.post(
            "/programs/switch", data={"csrf_token": csrf, "program": "*", "state": "resume"}
        )
        assert switch.status == 403
        assert 'href="/programs"' not in await (await client.get("/queues")).text()
    async with client.server.app[SESSIONMAKER]() as session:
        assert (await session.scalars(select(Program))).all() == []
    client.session.cookie_jar.clear()
    await sign_in(client, "admin")
    page = await client.get("/programs")
    html = await page.text()
    assert page.status == 200 and 'href="/programs"' in html
    # The defaults in words, as the site runs them now.
    assert "5 and 2 days before the supply runs out, 10:00 patient time" in html
    assert "3, 7 and 14 days after the first fill, then every 30 days while the therapy lasts" in html
    assert "3 days after the order is reported not picked up, 10:00 patient time" in html
    assert (
        'id="on-defaults"' in html and "# midbot&#39;s default outreach programs" in html
    )  # in the text area


async def test_check_shows_errors_by_line_then_a_preview_and_load_paused_then_resume(web_client) -> None:
    client, _seeded = web_client
    csrf = await sign_in(client, "admin")
    response = await client.post("/programs", data=_form(csrf, BAD, "check"))
    html = await response.text()
    assert response.status == 400
    assert '<a href="#line-8">Line 8</a>: templates.es: unknown placeholder {primer_nombre}' in html
    line = re.search(r'<li id="line-8" value="8" class="has-error">(.*?)</li>', html, re.S)
    assert line and "Error on line 8: templates.es: unknown placeholder {primer_nombre}" in line.group(1)
    assert 'id="preview"' not in html and "{primer_nombre}" in html  # the text area keeps what was sent
    response = await client.post("/programs", data=_form(csrf, BAD, "load_paused"))
    assert response.status == 400  # an error is never loaded
    async with client.server.app[SESSIONMAKER]() as session:
        assert (await session.scalars(select(Program))).all() == []

    response = await client.post("/programs", data=_form(csrf, GOOD, "check", price="0.01", days="30"))
    html = await response.text()
    assert response.status == 200 and 'id="lint-ok"' in html
    texts = int(re.search(r'id="preview-texts">(\d+)<', html).group(1))  # type: ignore[union-attr]
    segments = int(re.search(r'id="preview-segments">(\d+)<', html).group(1))  # type: ignore[union-attr]
    assert texts == 2 and segments >= 2  # Maria: 5 and 2 days before her supply runs out
    assert f"${segments * 0.01:,.2f} at $0.01 a segment" in html
    assert "Hola Maria, es hora de resurtir." in html  # a sample in Spanish, as she would get it
    assert 'id="tasks-none"' in html  # no outreach history yet
    assert len(await _audit(client, "programs.preview")) == 1

    response = await client.post("/programs", data=_form(csrf, GOOD, "load_paused"), allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/programs?done=loaded_paused"
    html = await (await client.get("/programs?done=loaded_paused")).text()
    assert 'data-id="refill" data-state="paused"' in html and 'id="resume-all"' in html
    async with client.server.app[SESSIONMAKER]() as session:
        assert (await session.scalars(select(Outreach))).all() == []  # paused: nothing planned
        site = await session.get(Site, "north")
        assert site is not None and site.settings["paused_programs"] == ["refill"]

    response = await client.post(
        "/programs/switch",
        data={"csrf_token": csrf, "program": "*", "state": "resume"},
        allow_redirects=False,
    )
    assert response.status == 303 and response.headers["Location"] == "/programs?done=resumed"
    html = await (await client.get("/programs")).text()
    assert 'data-id="refill" data-state="active"' in html
    async with client.server.app[SESSIONMAKER]() as session:
        planned = (await session.scalars(select(Outreach).where(Outreach.state == "planned"))).all()
    assert sorted(o.step for o in planned) == ["run_out-2", "run_out-5"]

    [load] = await _audit(client, "programs.load")
    assert (
        load.actor.startswith("user:") and load.detail["state"] == "paused" and load.detail["source"] == "web"
    )
    assert load.detail["before"].startswith("# midbot's default outreach programs")
    assert load.detail["after"] == GOOD
    assert [e.detail["programs"] for e in await _audit(client, "programs.resume")] == [["refill"]]
    assert "YAML before" in html and "Hi {first_name}, time to refill." in html  # the load history


async def test_an_uploaded_file_replaces_the_text_and_bad_input_is_named(web_client) -> None:
    client, _seeded = web_client
    csrf = await sign_in(client, "admin")
    form = _form(csrf, "ignored: true\n", "check")
    form.add_field("file", GOOD.encode(), filename="lakeside.yaml", content_type="application/x-yaml")
    response = await client.post("/programs", data=form)
    html = await response.text()
    assert (
        response.status == 200 and 'id="uploaded-name">lakeside.yaml<' in html and "ignored: true" not in html
    )
    # Lines keep their numbers through the text area (its first newline is the parser's, not the file's).
    response = await client.post("/programs", data=_form(csrf, "\n# staged for January\n" + BAD, "check"))
    html = await response.text()
    assert response.status == 400 and '<a href="#line-10">Line 10</a>: templates.es' in html
    assert 'aria-describedby="yaml-hint">\n\n# staged for January\nprograms:' in html
    for field, extra in (("price", {"price": "two"}), ("days", {"days": "400"}), ("yaml", {})):
        text = "" if field == "yaml" else GOOD
        response = await client.post("/programs", data=_form(csrf, text, "check", **extra))
        assert response.status == 400
        assert f'id="form-error" data-field="{field}"' in await response.text()
    form = _form(csrf, "", "check")
    form.add_field("file", b"programs: \xff\n", filename="latin1.yaml")
    response = await client.post("/programs", data=form)
    assert response.status == 400 and "not UTF-8" in await response.text()
    response = await client.post("/programs", data=_form("not-the-token", GOOD, "load_active"))
    assert response.status == 403
    response = await client.post(
        "/programs/switch", data={"csrf_token": csrf, "program": "nope", "state": "pause"}
    )
    assert response.status == 400 and "that program is not loaded" in await response.text()
