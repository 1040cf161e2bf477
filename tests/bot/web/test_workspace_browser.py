"""Issue 16, the pharmacist's workspace, in Debian's Chromium against the running app and the Twilio simulator:
the queue row shows who and what they said, an urgent text raises the page title within 5 s, the task page
reads in words, "Show number" reveals with ``tel:`` and an audit row, patient search by last name and last-4
digits, another site's patient is a 404, and at 390 px the queues do not scroll sideways and the claim/reply
controls are in the first screen."""

from __future__ import annotations

import asyncio
import re
import struct
import zlib
from pathlib import Path

from aiohttp import web
from sqlalchemy import select

from bot.db.models import AuditEvent, Message, Task
from bot.keys import BACKGROUND, INBOX
from bot.staff.auth import create_user
from tests.bot.support import PASSWORD, XSS
from tests.bot.web.browser import (
    BROWSER_MARKS,
    JUNE,
    MARIA,
    PHONE_H,
    PHONE_W,
    ROBERT,
    Running,
    add_other_site,
    axe_serious,
    open_page,
    phone_page,
    screenshot,
    sign_in,
)

pytestmark = BROWSER_MARKS
# What must never be visible to a person: Python reprs, raw enums, microsecond timestamps, "120.0".
DEVELOPER_TEXT = [
    re.compile(r"\['|'\]|\{'"),
    re.compile(r"\b(True|False|None)\b"),
    re.compile(r"\b[a-z]+_[a-z_]+\b"),
    re.compile(r"\d{2}:\d{2}:\d{2}\.\d+|\d{4}-\d{2}-\d{2}T\d{2}"),
    re.compile(r"\b\d+\.0\b"),
]


def _developer_text(text: str) -> list[str]:
    return [m.group(0) for pattern in DEVELOPER_TEXT for m in pattern.finditer(text)]


async def test_queue_rows_show_the_words_and_an_urgent_text_raises_the_title(
    browser, running: Running, output_dir: Path
) -> None:
    context, page, dialogs, _errors = await open_page(browser)
    await sign_in(page, running.base_url)
    assert not (await page.title()).startswith("(")
    await page.click("#alerts-toggle")  # opt in to sound and desktop notifications (kept per browser)
    assert await page.get_attribute("#alerts-toggle", "aria-pressed") == "true"
    await page.evaluate(
        "() => { window.__notes = []; window.Notification = function (title) { window.__notes.push(title); };"
        " window.Notification.permission = 'granted'; }"
    )
    markup = await running.task_for(await running.text(JUNE, XSS))
    first = await running.task_for(
        await running.text(ROBERT, "Please have a pharmacist call me about my pills")
    )
    urgent_message = await running.text(ROBERT, "I have trouble breathing since this morning")
    urgent = await running.task_for(urgent_message)
    assert urgent.queue == "urgent_clinical"
    # The page polls every 3 s: the title counts the urgent task within 5 s, without a reload.
    await page.wait_for_function("() => document.title.startsWith('(1 urgent)')", timeout=5_000)
    assert await page.evaluate("window.__notes") == ["midbot: 1 new urgent task"]  # no name, no text in it
    row = page.locator(f"tr.task-row[data-id='{urgent.id}']")
    assert await row.locator(".said q").inner_text() == "I have trouble breathing since this morning"
    assert await row.locator(".patient-link").inner_text() == "Robert Hill"
    assert "born 14 Mar 1951 · phone ending 9876" in await row.locator(".who-cell").inner_text()
    assert await row.locator(".others").inner_text() == "1 other open task"  # his refill question
    assert (
        await page.locator(f"tr.task-row[data-id='{first.id}'] .others").inner_text() == "1 other open task"
    )
    # What a patient typed is text on the row, never markup.
    said = page.locator(f"tr.task-row[data-id='{markup.id}'] .said q")
    assert await said.inner_text() == XSS
    assert await page.locator("#task-rows img").count() == 0 and dialogs == []
    # Keyboard focus survives the 3 s refresh (the rows are rebuilt every time).
    await page.keyboard.press("j")
    focused = await page.evaluate("document.activeElement.closest('tr').dataset.id")
    await page.wait_for_timeout(3_500)
    assert await page.evaluate("document.activeElement.closest('tr').dataset.id") == focused
    assert await page.evaluate("document.activeElement.className") == "task-link"
    await screenshot(page, output_dir, "queues-rows.png")
    await context.close()

    phone, page = await phone_page(browser)
    await sign_in(page, running.base_url)
    widths = await page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1] == PHONE_W, widths  # no horizontal scroll at 390 px
    await phone.close()


async def test_task_page_reads_in_words_and_show_number_is_audited(
    browser, running: Running, output_dir: Path
) -> None:
    task = await running.task_for(await running.text(ROBERT, "I want to hurt myself and I can't breathe"))
    context, page = await phone_page(browser)
    await sign_in(page, running.base_url)
    await page.goto(f"{running.base_url}/tasks/{task.id}")
    assert await page.locator("#task-said q").inner_text() == "I want to hurt myself and I can't breathe"
    visible = await page.locator("body").inner_text()
    assert _developer_text(visible) == [], [
        visible[max(0, visible.find(w) - 80) : visible.find(w) + 40] for w in _developer_text(visible)
    ]
    assert "Self-harm words" in visible and "Urgent clinical" in visible
    # At 390 px the claim button, then the reply box, are in the first screen.
    claim = await page.locator("#claim").bounding_box()
    assert claim is not None and claim["y"] + claim["height"] <= PHONE_H, claim
    assert await page.locator("#reply-locked").is_visible()
    await page.keyboard.press("c")  # the claim shortcut
    await page.wait_for_selector("#flash")
    await screenshot(page, output_dir, "task-phone.png")
    reply = await page.locator("#reply-body").bounding_box()
    assert reply is not None and reply["y"] < PHONE_H, reply
    thread = await page.evaluate(
        "(() => { const t = document.getElementById('thread'); return t.scrollTop + t.clientHeight >= t.scrollHeight - 2; })()"
    )
    assert thread is True  # the newest message is in view

    # A draft survives leaving the page (an expired session lands back here after sign-in).
    await page.fill("#reply-body", "We are calling you now.")
    await page.reload()
    assert await page.locator("#reply-body").input_value() == "We are calling you now."

    await page.click("#show-number")
    link = page.locator("#masked-phone")
    await link.wait_for()
    assert await link.inner_text() == ROBERT and await link.get_attribute("href") == f"tel:{ROBERT}"
    async with running.sessionmaker() as session:
        revealed = list(
            await session.scalars(
                select(AuditEvent).where(
                    AuditEvent.action == "phone_revealed", AuditEvent.patient_id == "pat-2"
                )
            )
        )
    assert len(revealed) == 1 and revealed[0].actor.startswith("user:")
    await context.close()


async def test_patient_search_by_last_name_and_last_four_and_another_sites_patient_is_404(
    browser, running: Running, output_dir: Path
) -> None:
    async with running.sessionmaker.begin() as session:
        await add_other_site(session, "Hill")
    context, page, dialogs, _errors = await open_page(browser)
    await sign_in(page, running.base_url)
    await page.click("nav >> text=Patients")
    await page.fill("#q", "hill")
    await page.click("#search")
    hits = page.locator("#results tr.hit")
    assert await hits.evaluate_all("rows => rows.map(r => r.dataset.id)") == ["pat-2"]  # not south's Ana Hill
    await page.fill("#q", "9876")
    await page.click("#search")
    assert await hits.evaluate_all("rows => rows.map(r => r.dataset.id)") == ["pat-2"]
    await hits.first.locator("a.patient-link").click()
    await page.wait_for_url(f"{running.base_url}/patients/pat-2")
    assert await page.locator("#patient-name").inner_text() == "Robert Hill"
    assert "Abiraterone 250 mg" in await page.locator("#therapy-h + article").inner_text()
    await screenshot(page, output_dir, "patient.png")
    response = await page.goto(f"{running.base_url}/patients/pat-s")
    assert response is not None and response.status == 404
    assert dialogs == []
    await context.close()


async def test_axe_finds_no_serious_or_critical_violations_on_the_staff_pages(
    browser, running: Running, output_dir: Path
) -> None:
    task = await running.task_for(
        await running.text(MARIA, "Me duele mucho la cabeza, necesito hablar con alguien")
    )
    async with running.sessionmaker.begin() as session:
        await create_user(session, site_id="north", email="admin@north.example", role="clinic_admin",
                          password=PASSWORD, now=running.clock.now(), name="Lee Admin", update=True)  # fmt: skip
    context, page, _dialogs, _errors = await open_page(browser)
    base = running.base_url
    found: dict[str, list[str]] = {}
    await page.goto(f"{base}/login")
    found["login"] = await axe_serious(page)
    await page.fill("#email", "admin@north.example")
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/queues")
    found["queues"] = await axe_serious(page)
    for name, path in (("task", f"/tasks/{task.id}"), ("patient", "/patients/pat-1"),
                       ("search", "/patients?q=lopez"), ("metrics", "/metrics-dashboard"), ("audit", "/audit")):  # fmt: skip
        response = await page.goto(f"{base}{path}")
        assert response is not None and response.status == 200, path
        found[name] = await axe_serious(page)  # (metrics.png comes from the charts test, with figures)
    assert found == {name: [] for name in found}, found
    # The check can fail: a form control stripped of its label is a critical violation.
    await page.goto(f"{base}/patients")
    await page.evaluate("() => document.querySelectorAll('label').forEach(l => l.remove())")
    assert any(line.startswith("label:") for line in await axe_serious(page))
    await context.close()


def _png(width: int = 24, height: int = 16) -> bytes:
    """A real (red) PNG the browser decodes, made here: no binary fixture in the repository."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


async def test_an_mms_picture_is_shown_to_staff_through_the_signed_in_proxy(
    browser, running: Running
) -> None:
    fetched: list[str] = []

    async def media(request: web.Request) -> web.Response:  # the provider's media host, on loopback
        fetched.append(request.headers.get("Authorization", ""))
        return web.Response(body=_png(), content_type="image/png")

    host = web.Application()
    host.router.add_get("/media/{name}", media)
    runner = web.AppRunner(host, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/media/rash.png"
    try:
        payload = {"from": ROBERT, "to": "+13125550100", "body": "", "media_urls": [url]}
        async with running.http.post(f"{running.sim_url}/simulator/inbound", json=payload) as response:
            assert response.status == 200 and (await response.json())["webhook_status"] == 200
        await asyncio.wait_for(running.app[INBOX].idle(), timeout=10)
        for _ in range(200):
            if not running.app[BACKGROUND]:
                break
            await asyncio.sleep(0.01)
        async with running.sessionmaker() as session:
            message = await session.scalar(
                select(Message).where(Message.direction == "in").order_by(Message.id.desc())
            )
            assert message is not None and message.media == [url]
            task = await session.scalar(select(Task).where(Task.source_message_id == message.id))
        assert task is not None
        context, page, _dialogs, _errors = await open_page(browser)
        await sign_in(page, running.base_url)
        await page.goto(f"{running.base_url}/tasks/{task.id}")
        image = page.locator(f"#thread .msg[data-id='{message.id}'] img")
        await image.wait_for()
        assert (
            await image.get_attribute("src") == f"/messages/{message.id}/media/0"
        )  # never the provider's URL
        await page.wait_for_function(
            "(id) => { const i = document.querySelector(`#thread .msg[data-id='${id}'] img`); return i && i.complete && i.naturalWidth > 0; }",
            arg=str(message.id),
        )
        assert await image.evaluate("i => [i.naturalWidth, i.naturalHeight]") == [24, 16]
        assert fetched and all(
            h.startswith("Basic ") for h in fetched
        )  # fetched with the account's credentials
        await context.close()
        anonymous = await running.http.get(
            f"{running.base_url}/messages/{message.id}/media/0", allow_redirects=False
        )
        assert anonymous.status == 303  # signed-in staff only
    finally:
        await runner.cleanup()
