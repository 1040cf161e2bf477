"""Staff pages: queues, the task page (escaped, masked, audited), CSRF on every form, roles, audit and CSV."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from sqlalchemy import select

from bot.clock import FixedClock
from bot.db.audit import events_csv
from bot.db.models import AuditEvent, Task
from bot.keys import SESSIONMAKER
from tests.bot.support import PATIENT_PHONE, XSS, csrf_of, sign_in
from tests.store import open_task

TEMPLATES = Path(__file__).resolve().parents[3] / "bot" / "web" / "templates"
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
INLINE_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.I)  # inside a tag, not escaped text


async def test_pages_need_sign_in(web_client) -> None:
    client, seeded = web_client
    for path in ("/queues", f"/tasks/{seeded.tasks['refill']}", "/audit", "/queues.json"):
        response = await client.get(path, allow_redirects=False)
        assert response.status == 303 and response.headers["Location"].startswith("/login?next=")
    post = await client.post(f"/tasks/{seeded.tasks['refill']}/claim", data={"csrf_token": "x"})
    assert post.status == 403
    # After an expired session, back to the form's page once signed in again (drafts: task.js).
    assert f'href="/login?next=/tasks/{seeded.tasks["refill"]}" id="sign-in-again"' in await post.text()


async def test_queues_page_shows_counts_and_urgent_first(web_client, clock: FixedClock) -> None:
    client, seeded = web_client
    await sign_in(client, "pharmacist")
    response = await client.get("/queues")
    html = await response.text()
    assert response.headers["Content-Security-Policy"].count("script-src 'self'") == 1
    assert not INLINE_SCRIPT.search(html) and not INLINE_HANDLER.search(html)
    rows = re.findall(r'<tr class="task-row([^"]*)" data-id="(\d+)"', html)
    assert [int(task_id) for _cls, task_id in rows] == [seeded.tasks["urgent"], seeded.tasks["refill"]]
    assert "urgent" in rows[0][0] and "urgent" not in rows[1][0]
    assert seeded.tasks["financial"] not in [int(t) for _c, t in rows]  # not a pharmacist's queue
    assert 'data-queue="financial"' not in html
    # Issue 16: the full name and a distinguishing detail (birth date, phone ending), never the whole number.
    assert "Maria Lopez" in html and "born 14 Mar 1951 · phone ending 1234" in html
    assert PATIENT_PHONE not in html

    data = await (await client.get("/queues.json")).json()
    urgent = next(s for s in data["summary"] if s["queue"] == "urgent_clinical")
    assert urgent["count"] == 1 and urgent["urgent"] == 1 and urgent["oldest"] == "20 min"
    clock.advance(hours=1)  # the urgent task is now past its 1 h SLA
    data = await (await client.get("/queues.json")).json()
    assert next(s for s in data["summary"] if s["queue"] == "urgent_clinical")["breached"] == 1
    assert data["tasks"][0]["overdue"] is True

    async with client.server.app[SESSIONMAKER].begin() as session:
        new = await open_task(session, site_id="north", queue="clinical", kind="question", title="New question",
                              now=clock.now(), patient_id="pat-n2")  # fmt: skip
    data = await (await client.get("/queues.json")).json()
    assert new.id in [t["id"] for t in data["tasks"]]
    only = await (await client.get("/queues.json?queue=clinical")).json()
    assert [t["id"] for t in only["tasks"]] == [new.id]
    mine = await (await client.get("/queues.json?mine=1")).json()
    assert mine["tasks"] == []
    bad = await client.get("/queues.json?queue=financial")
    assert bad.status == 400 and (await bad.json())["field"] == "queue"


async def test_task_page_masks_escapes_and_is_audited(web_client) -> None:
    client, seeded = web_client
    await sign_in(client, "pharmacist")
    response = await client.get(f"/tasks/{seeded.tasks['refill']}")
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    html = await response.text()
    assert "•••-•••-1234" in html and PATIENT_PHONE not in html and "5551234" not in html
    assert "14 Mar 1951" in html and "Spanish" in html and "not agreed" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and XSS not in html
    assert "Capecitabine 500 mg" in html and "PDC" in html
    # Brand and generic names both warn (issue 16: the warning missed brand names such as Xeljanz).
    assert 'data-drugs="[&#34;Capecitabine 500 mg&#34;, &#34;capecitabine&#34;, &#34;xeloda&#34;]"' in html
    assert not INLINE_SCRIPT.search(html) and not INLINE_HANDLER.search(html)
    assert html.count('name="csrf_token"') >= 7  # sign-out + every action form
    assert 'id="reply-locked"' in html and 'id="reply-body"' not in html  # claim first, then reply
    async with client.server.app[SESSIONMAKER]() as session:
        actions = list(
            await session.scalars(
                select(AuditEvent.action).where(AuditEvent.target == f"task:{seeded.tasks['refill']}")
            )
        )
    assert {"patient.view", "patient.messages", "task.view"} <= set(actions)


async def test_every_task_form_is_csrf_protected(web_client) -> None:
    client, seeded = web_client
    csrf = await sign_in(client, "pharmacist")
    task_id = seeded.tasks["refill"]
    for action, data in (("claim", {}), ("resolve", {"outcome": "duplicate"}), ("call", {"note": "hi"})):
        missing = await client.post(f"/tasks/{task_id}/{action}", data=data)
        assert missing.status == 403, action
        bad = await client.post(f"/tasks/{task_id}/{action}", data=data | {"csrf_token": "nope" * 8})
        assert bad.status == 403, action
    async with client.server.app[SESSIONMAKER]() as session:
        task = await session.get(Task, task_id)
        assert task is not None and task.status == "open"

    claimed = await client.post(f"/tasks/{task_id}/claim", data={"csrf_token": csrf}, allow_redirects=False)
    assert claimed.status == 303 and claimed.headers["Location"] == f"/tasks/{task_id}?done=claim"
    page = await (await client.get(claimed.headers["Location"])).text()
    assert "You claimed this task." in page and 'id="release"' in page


async def test_form_errors_name_the_field_and_keep_the_page(web_client) -> None:
    client, seeded = web_client
    csrf = await sign_in(client, "pharmacist")
    task_id = seeded.tasks["refill"]
    response = await client.post(f"/tasks/{task_id}/resolve", data={"csrf_token": csrf, "outcome": "other"})
    assert response.status == 400
    html = await response.text()
    assert 'data-field="note"' in html and "note is required" in html
    snooze = await client.post(f"/tasks/{task_id}/snooze", data={"csrf_token": csrf, "until": "soon"})
    assert snooze.status == 400 and 'data-field="until"' in await snooze.text()
    past = await client.post(
        f"/tasks/{task_id}/snooze", data={"csrf_token": csrf, "until": "2020-01-01T09:00"}
    )
    assert past.status == 400
    later = await client.post(
        f"/tasks/{task_id}/snooze",
        data={"csrf_token": csrf, "until": "2026-11-25T09:00"},
        allow_redirects=False,
    )
    assert later.status == 303
    async with client.server.app[SESSIONMAKER]() as session:
        task = await session.get(Task, task_id)
        assert task is not None and task.status == "snoozed"
        assert (
            task.snoozed_until is not None and task.snoozed_until.isoformat() == "2026-11-25T15:00:00+00:00"
        )

    resolved = await client.post(
        f"/tasks/{task_id}/resolve",
        data={"csrf_token": csrf, "outcome": "refill_processed"},
        allow_redirects=False,
    )
    assert resolved.status == 303 and resolved.headers["Location"] == "/queues?done=resolve"


async def test_technicians_cannot_resolve_urgent_tasks(web_client) -> None:
    client, seeded = web_client
    csrf = await sign_in(client, "technician")
    urgent = seeded.tasks["urgent"]
    page = await (await client.get(f"/tasks/{urgent}")).text()
    assert 'id="resolve-form"' not in page and "Only a pharmacist can resolve" in page
    refused = await client.post(
        f"/tasks/{urgent}/resolve", data={"csrf_token": csrf, "outcome": "advice_given"}
    )
    assert refused.status == 403
    claim = await client.post(f"/tasks/{urgent}/claim", data={"csrf_token": csrf}, allow_redirects=False)
    assert claim.status == 303  # a technician may still work it


async def test_audit_page_and_csv_export_are_for_clinic_admins(web_client) -> None:
    client, seeded = web_client
    csrf = await sign_in(client, "pharmacist")
    await client.get(f"/tasks/{seeded.tasks['refill']}")
    assert (await client.get("/audit")).status == 403
    assert (await client.get("/audit.csv")).status == 403
    await client.post("/logout", data={"csrf_token": csrf})

    await sign_in(client, "admin")
    page = await client.get("/audit?action=patient.view")
    assert page.status == 200
    html = await page.text()
    # Names and words, not ``user:1`` and ``patient.view``; times in the site's zone, with the zone shown.
    assert "Opened a patient&#39;s record" in html and '<td class="who">Pharmacist</td>' in html
    assert f'<td class="who">user:{seeded.users["pharmacist"]}</td>' not in html
    assert "(America/Chicago, CST)" in html and '<th scope="col">When (CST)</th>' in html
    export = await client.get("/audit.csv?action=patient.view")
    assert export.status == 200 and export.content_type == "text/csv"
    assert "attachment" in export.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(await export.text())))
    assert rows and {r["action"] for r in rows} == {"patient.view"}
    assert rows[0]["patient_id"] == "pat-n1" and rows[0]["target"] == f"task:{seeded.tasks['refill']}"
    assert all(r["patient_id"] != "pat-s1" for r in rows)
    async with client.server.app[SESSIONMAKER]() as session:
        exports = list(await session.scalars(select(AuditEvent).where(AuditEvent.action == "audit.export")))
    assert len(exports) == 1 and exports[0].actor == f"user:{seeded.users['admin']}"
    assert (await client.get("/audit?since=yesterday")).status == 400


def test_csv_cells_cannot_become_formulas() -> None:
    event = AuditEvent(id=1, actor="=HYPERLINK(1)", site_id="north", action="task.view", patient_id="+1",
                       target="@x", detail={"k": "-2"})  # fmt: skip
    from datetime import UTC, datetime

    event.at = datetime(2026, 11, 24, tzinfo=UTC)
    row = next(csv.DictReader(io.StringIO(events_csv([event]))))
    assert row["actor"] == "'=HYPERLINK(1)" and row["patient_id"] == "'+1" and row["target"] == "'@x"


def test_templates_have_no_inline_script_or_handlers() -> None:
    templates = sorted(TEMPLATES.glob("*.html"))
    assert len(templates) >= 5, TEMPLATES  # the check reads the real templates, not an empty folder
    for template in templates:
        source = template.read_text()
        assert not INLINE_SCRIPT.search(source), template.name
        assert not INLINE_HANDLER.search(source), template.name
        assert "|safe" not in source, template.name


async def test_static_assets_are_served(web_client) -> None:
    client, _seeded = web_client
    for name in ("app.css", "queues.js", "task.js"):
        response = await client.get(f"/static/staff/{name}")
        assert response.status == 200, name
        assert len(await response.read()) > 500


async def test_login_page_has_the_contract_fields(web_client) -> None:
    client, _seeded = web_client
    html = await (await client.get("/login")).text()
    for name in ("email", "password", "csrf_token"):
        assert f'name="{name}"' in html
    assert csrf_of(html)


async def test_a_task_without_a_patient_and_the_resolved_filter(web_client, clock: FixedClock) -> None:
    client, _seeded = web_client
    csrf = await sign_in(client, "pharmacist")
    async with client.server.app[SESSIONMAKER].begin() as session:
        task = await open_task(session, site_id="north", queue="general", kind="unknown_sender",
                               title="Text from a number not on file", now=clock.now())  # fmt: skip
    page = await client.get(f"/tasks/{task.id}")
    assert page.status == 200
    html = await page.text()
    assert "No patient on file" in html and 'id="reply-form"' not in html
    done = await client.post(
        f"/tasks/{task.id}/resolve",
        data={"csrf_token": csrf, "outcome": "wrong_number"},
        allow_redirects=False,
    )
    assert done.status == 303
    resolved = await (await client.get("/queues.json?status=resolved")).json()
    assert [t["id"] for t in resolved["tasks"]] == [task.id]
    current = await (await client.get("/queues.json")).json()
    assert task.id not in [t["id"] for t in current["tasks"]]
    assert (await client.get("/tasks/999999")).status == 404
