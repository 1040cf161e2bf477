"""The staff pages in a real browser (Debian's Chromium via Playwright), the whole path on loopback.

The Twilio simulator and midbot run on real TCP ports, wired to each other as in production: a patient texts
through the simulator, which posts the signed webhook to midbot; midbot's replies go through the real twilio
client to the simulator's API. Flow (issue 6): sign in; an inbound SMS becomes a task that appears on the open
queues page without a reload; open it with the keyboard; claim; reply (the simulator's handset receives it);
resolve with an outcome; sign out. A patient's text ``<img src=x onerror=alert(1)>`` shows as text and runs
nothing. Screenshots go to test-output/ (and to docs/screenshots/ with MIDBOT_UPDATE_SCREENSHOTS=1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.db.models import Message, StaffUser, Task
from bot.staff.auth import ROLE_QUEUES
from tests.bot.support import XSS
from tests.bot.web.browser import (
    BROWSER_MARKS,
    JUNE,
    MARIA,
    QUESTION,
    ROBERT,
    STAFF_EMAIL,
    Running,
    open_page,
    screenshot,
    sign_in,
)

pytestmark = BROWSER_MARKS


async def _open_with_keyboard(page: Any, task_id: int) -> None:
    """j down to the task's row (its link takes the focus), then Enter."""
    ids = await page.locator("tr.task-row").evaluate_all("rows => rows.map(r => r.dataset.id)")
    for _ in range(ids.index(str(task_id)) + 1):
        await page.keyboard.press("j")
    row = page.locator(f"tr.task-row[data-id='{task_id}']")
    assert await row.get_attribute("aria-selected") == "true"
    assert await page.evaluate("document.activeElement.className") == "task-link"
    await page.keyboard.press("Enter")


async def _check_reply_box(page: Any) -> None:
    """The live segment counter, and the warning when a text names a drug without detailed consent."""
    body = page.locator("#reply-body")
    await body.fill("Hello")
    assert await page.locator("#segment-counter").inner_text() == "5 characters · GSM-7 · 1 segment"
    await body.fill("a" * 150 + "{}[]~")  # extension characters count two: 160 septets, still one segment
    assert await page.locator("#segment-counter").get_attribute("data-segments") == "1"
    await body.fill("a" * 151 + "{}[]~")
    assert await page.locator("#segment-counter").get_attribute("data-segments") == "2"
    await body.fill("Su CAPECITABINE está lista 🙂")
    assert await page.locator("#segment-counter").get_attribute("data-encoding") == "UCS-2"
    assert await page.locator("#drug-warning").is_visible()
    await body.fill("Su Xeloda está lista")  # the brand name of her capecitabine warns too
    assert await page.locator("#drug-warning").is_visible()


async def test_inbound_sms_becomes_a_task_worked_in_the_browser(
    browser, running: Running, output_dir: Path
) -> None:
    base = running.base_url
    # Before anyone signs in: an emergency text, which must sort on top as an urgent clinical task.
    urgent = await running.task_for(await running.text(ROBERT, "I have chest pain and can't breathe"))
    assert urgent.queue == "urgent_clinical"

    context, page, dialogs, console_errors = await open_page(browser)
    await sign_in(page, base)
    await page.wait_for_selector(f"tr.task-row[data-id='{urgent.id}']")
    await page.evaluate("window.__sameDocument = true")
    assert await page.locator("#live").inner_text() == ""

    # With the queues page open, the patient texts; the task appears without a reload.
    inbound = await running.text(MARIA, QUESTION)
    task = await running.task_for(inbound)
    assert (
        task.status == "open" and task.queue in ROLE_QUEUES["pharmacist"] and task.queue != "urgent_clinical"
    )
    auto_replies = await running.received(MARIA)
    assert len(auto_replies) == 1  # the patient was told a person will answer
    row = page.locator(f"tr.task-row[data-id='{task.id}']")
    await row.wait_for(state="visible")
    assert await page.evaluate("window.__sameDocument") is True
    assert "fresh" in (await row.get_attribute("class") or "")
    assert await row.locator("a.task-link").inner_text() == task.title
    assert await page.locator("#live").inner_text() == "1 new task"
    first = page.locator("tr.task-row").first
    assert await first.get_attribute("data-id") == str(urgent.id)
    assert "urgent" in (await first.get_attribute("class") or "")
    await screenshot(page, output_dir, "queues.png")

    await _open_with_keyboard(page, task.id)
    await page.wait_for_url(f"{base}/tasks/{task.id}")
    assert await page.locator("#task-title").inner_text() == task.title
    assert await page.locator("#masked-phone").inner_text() == "•••-•••-1234"
    source = page.locator(f"#thread .msg.in[data-id='{inbound.id}'] .msg-body")
    assert await source.inner_text() == QUESTION
    assert await page.locator("#thread .msg.out .msg-body").first.inner_text() == auto_replies[0]

    await page.click("#claim")
    await page.wait_for_selector("#flash")
    assert "You claimed this task." in await page.locator("#flash").inner_text()
    await _check_reply_box(page)
    await page.select_option("#snippet", index=1)  # an approved snippet in the patient's language
    assert not await page.locator("#drug-warning").is_visible()
    reply = await page.locator("#reply-body").input_value()
    assert reply.startswith("Le habla su equipo")
    await page.click("#send-reply")
    await page.wait_for_selector("#flash")
    assert "Reply stored and sent." in await page.locator("#flash").inner_text()
    assert await page.locator("#thread .msg.out .msg-body").last.inner_text() == reply
    assert await running.received(MARIA) == [*auto_replies, reply]  # the handset got it
    await screenshot(page, output_dir, "task.png")

    await page.select_option("#outcome", "refill_processed")
    await page.fill("#resolve-note", "Ready for pickup Thursday")
    await page.click("#resolve")
    await page.wait_for_url(f"{base}/queues?done=resolve")
    assert await page.locator(f"tr.task-row[data-id='{task.id}']").count() == 0
    async with running.sessionmaker() as session:
        resolved = await session.get(Task, task.id)
        sent = (
            await session.scalars(select(Message).where(Message.task_id == task.id, Message.kind == "staff"))
        ).all()
        staff = await session.scalar(select(StaffUser).where(StaffUser.email == STAFF_EMAIL))
    assert resolved is not None and resolved.status == "resolved"
    assert (resolved.outcome, resolved.note) == ("refill_processed", "Ready for pickup Thursday")
    assert staff is not None and resolved.assignee_id == staff.id
    assert [(m.body, m.staff_user_id) for m in sent] == [(reply, staff.id)] and sent[0].provider_sid

    await page.click("#sign-out")
    await page.wait_for_url(f"{base}/login")
    assert await page.locator("#password").is_visible()
    await page.goto(f"{base}/queues")
    await page.wait_for_url(f"{base}/login?next=/queues")

    assert dialogs == []
    assert not [e for e in console_errors if "Content Security Policy" in e or "Refused" in e], console_errors
    await context.close()


async def test_markup_texted_by_a_patient_shows_as_text_and_runs_nothing(browser, running: Running) -> None:
    inbound = await running.text(JUNE, XSS)
    task = await running.task_for(inbound)
    context, page, dialogs, _errors = await open_page(browser)
    await sign_in(page, running.base_url)
    await page.locator(f"tr.task-row[data-id='{task.id}'] a.task-link").click()
    await page.wait_for_url(f"{running.base_url}/tasks/{task.id}")
    body = page.locator(f"#thread .msg.in[data-id='{inbound.id}'] .msg-body")
    assert await body.inner_text() == XSS
    assert await page.locator("#thread img").count() == 0
    await page.wait_for_timeout(100)  # a broken image's onerror would have fired by now
    assert dialogs == []
    await context.close()


async def test_wrong_password_shows_a_clear_message(browser, running: Running) -> None:
    context, page, dialogs, _errors = await open_page(browser)
    await page.goto(f"{running.base_url}/login")
    await page.fill("#email", STAFF_EMAIL)
    await page.fill("#password", "not the right password")
    await page.click("button[type=submit]")
    await page.wait_for_selector("#login-error")
    assert "do not match" in await page.locator("#login-error").inner_text()
    assert dialogs == []
    await context.close()
