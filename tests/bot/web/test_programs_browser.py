"""Issue 17, /programs in Debian's Chromium against the running app: a clinic admin uploads a YAML with one bad
placeholder, sees the error on its line, fixes it, previews, loads it paused, resumes it, loads an edit; the
audit trail shows both loads with the YAML before and after; a pharmacist gets 403; axe-core finds no serious
or critical violation; at 390 px nothing scrolls sideways."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from bot.db.models import AuditEvent, Outreach
from tests.bot.web.browser import (
    ADMIN,
    BROWSER_MARKS,
    PHONE_H,
    PHONE_W,
    STAFF_EMAIL,
    TIMEOUT_MS,
    Running,
    add_admin,
    axe_serious,
    open_page,
    screenshot,
    sign_in,
)

pytestmark = BROWSER_MARKS
FIXED = """\
programs:
  - id: refill
    kind: refill_reminder
    trigger:
      run_out: {days_before: [5, 2]}
    templates:
      en: "Hi {first_name}, time to refill. Reply 1 to refill, 2 if you still have enough, 3 to talk to us."
      es: "Hola {first_name}, es hora de resurtir. Responda 1 para resurtir, 2 si aún tiene, 3 para hablar."
"""
BROKEN = FIXED.replace("Hi {first_name}", "Hi {first_nam}")  # line 7


async def test_an_admin_fixes_a_bad_placeholder_previews_loads_paused_and_resumes(
    browser, running: Running, output_dir: Path
) -> None:
    await add_admin(running)
    base = running.base_url
    context, page, dialogs, console_errors = await open_page(browser)
    await sign_in(page, base, ADMIN)
    await page.click("nav >> text=Programs")
    await page.wait_for_url(f"{base}/programs")
    assert (
        "5 and 2 days before the supply runs out, 10:00 patient time"
        in await page.locator("#programs").inner_text()
    )

    await page.set_input_files("#file", files=[{"name": "lakeside.yaml", "mimeType": "application/x-yaml",
                                                "buffer": BROKEN.encode()}])  # fmt: skip
    await page.click("#check")
    await page.wait_for_selector("#lint-errors")
    assert (
        "Line 7: templates.en: unknown placeholder {first_nam}"
        in await page.locator("#lint-errors").inner_text()
    )
    line = page.locator("#line-7")
    assert "has-error" in (await line.get_attribute("class") or "")
    assert "Error on line 7: templates.en: unknown placeholder {first_nam}" in await line.inner_text()
    assert await page.locator("#preview").count() == 0
    found = {"errors": await axe_serious(page)}
    await page.click("#lint-errors a[href='#line-7']")  # the link goes to the line
    assert await page.evaluate("location.hash") == "#line-7"

    # Fix it in the text area (the upload is in it now) and check again: no error, and the preview.
    text = await page.locator("#yaml").input_value()
    assert text == BROKEN
    await page.fill("#yaml", text.replace("{first_nam}", "{first_name}"))
    await page.fill("#price", "0.01")
    await page.click("#check")
    await page.wait_for_selector("#preview")
    assert await page.locator("#lint-ok").is_visible()
    # Three patients, each 5 days before their supply runs out (the 2-day reminders fall after 14 days).
    assert await page.locator("#preview-texts").inner_text() == "3"
    samples = await page.locator(".samples").all_inner_texts()
    assert any("Hola Maria, es hora de resurtir." in s for s in samples)
    assert "at $0.01 a segment" in await page.locator("#preview-cost").inner_text()
    found["preview"] = await axe_serious(page)
    await screenshot(page, output_dir, "programs-preview.png")

    await page.click("#load-paused")
    await page.wait_for_selector("#flash")
    assert "paused" in await page.locator("#flash").inner_text()
    card = page.locator("#programs li[data-id='refill']")
    assert await card.get_attribute("data-state") == "paused"
    async with running.sessionmaker() as session:
        assert (await session.scalars(select(Outreach))).all() == []  # nothing planned while paused
    found["paused"] = await axe_serious(page)

    await page.click("button[aria-label='Resume refill']")
    await page.wait_for_selector("#flash")
    assert "Resumed" in await page.locator("#flash").inner_text()
    assert await card.get_attribute("data-state") == "active"
    async with running.sessionmaker() as session:
        steps = sorted(
            (await session.scalars(select(Outreach.step).where(Outreach.state == "planned"))).all()
        )
    assert steps == ["run_out-2"] * 3 + ["run_out-5"] * 3

    # An edit, loaded active: the audit trail holds both loads, each with the YAML before and after.
    edited = FIXED.replace("[5, 2]", "[5]")
    await page.fill("#yaml", edited)
    await page.click("#load-active")
    await page.wait_for_selector("#flash")
    assert "5 days before the supply runs out" in await card.locator(".schedule").inner_text()
    history = page.locator("#history li.load")
    assert await history.count() == 2
    await history.first.locator("summary", has_text="YAML after").click()
    assert await history.first.locator("pre.after").inner_text() == edited
    await page.goto(f"{base}/audit?action=programs.load")
    rows = page.locator("table.audit tbody tr")
    assert await rows.count() == 2
    shown = sorted(
        await rows.all_inner_texts(), key=lambda row: "[5]" in row
    )  # the first load, then the edit
    assert "before: # midbot's default outreach programs" in shown[0] and "after: programs:" in shown[0]
    assert "before: programs:" in shown[1] and "[5, 2]" in shown[1] and "[5]}" in shown[1]
    async with running.sessionmaker() as session:
        loads = (await session.scalars(select(AuditEvent).where(AuditEvent.action == "programs.load")
                                       .order_by(AuditEvent.id))).all()  # fmt: skip
    assert [(e.detail["before"] == FIXED, e.detail["after"]) for e in loads][1] == (True, edited)
    assert loads[0].detail["after"] == FIXED and loads[0].detail["state"] == "paused"
    assert found == {name: [] for name in found}, found
    assert dialogs == [] and not [e for e in console_errors if "Refused" in e], console_errors
    await context.close()


async def test_a_pharmacist_gets_403_and_the_page_works_at_390_px(browser, running: Running) -> None:
    await add_admin(running)
    context, page, _dialogs, _errors = await open_page(browser)
    await sign_in(page, running.base_url)  # the seeded pharmacist
    response = await page.goto(f"{running.base_url}/programs")
    assert response is not None and response.status == 403
    assert "Only clinic admins" in await page.locator("main").inner_text()
    assert await page.locator("nav >> text=Programs").count() == 0
    assert STAFF_EMAIL in await page.locator("header").inner_text()
    await context.close()

    phone = await browser.new_context(viewport={"width": PHONE_W, "height": PHONE_H}, is_mobile=True)
    page = await phone.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    await sign_in(page, running.base_url, ADMIN)
    await page.goto(f"{running.base_url}/programs")
    await page.fill("#yaml", BROKEN)
    await page.click("#check")
    await page.wait_for_selector("#lint-errors")
    await page.fill("#yaml", FIXED)
    await page.click("#check")
    await page.wait_for_selector("#preview")
    widths = await page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1] == PHONE_W, (
        widths
    )  # no sideways scroll at 390 px, preview and listing shown
    assert await axe_serious(page) == []
    await phone.close()
