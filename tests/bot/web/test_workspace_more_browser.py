"""Issue 16, the rest of the workspace in Debian's Chromium: the metrics charts (without JavaScript too), the
audit trail in names and local time, the inbox, the site switcher of a network admin, saved views and bulk
actions, and a typed reply that survives an expired session. axe-core on each of these pages."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.db.models import Fill, Message, Prescription, StaffSession, StaffUser, Task
from bot.staff.auth import create_user
from bot.staff.network import grant_site
from tests.bot.support import PASSWORD, XSS
from tests.bot.web.browser import (
    ADMIN,
    BROWSER_MARKS,
    JUNE,
    MARIA,
    PHONE_H,
    PHONE_W,
    ROBERT,
    SITE_PHONE,
    STAFF_EMAIL,
    TIMEOUT_MS,
    Running,
    add_admin,
    add_other_site,
    axe_serious,
    open_page,
    phone_page,
    screenshot,
    sign_in,
)

pytestmark = BROWSER_MARKS


def _text(patient: str, phone: str, direction: str, at: datetime, kind: str, body: str = "") -> Message:
    ours, theirs = SITE_PHONE, phone
    return Message(direction=direction, kind=kind, patient_id=patient, site_id="north",
                   from_number=theirs if direction == "in" else ours, to_number=ours if direction == "in" else theirs,
                   body=body, status="delivered" if direction == "out" else "received", created_at=at)  # fmt: skip


async def _seed_months(running: Running) -> None:
    """Six months of outreach and replies; November: 7 of 12 texts answered (58.3%, as in the issue)."""
    now = running.clock.now()
    people = [("pat-1", MARIA), ("pat-2", ROBERT), ("pat-3", JUNE)]
    answered = {"2026-06": (4, 4), "2026-07": (4, 3), "2026-08": (4, 2), "2026-09": (4, 3),
                "2026-10": (6, 5), "2026-11": (12, 7)}  # fmt: skip
    rows: list[Any] = []
    for month, (sent, replies) in answered.items():
        start = datetime.fromisoformat(f"{month}-02T16:00").replace(tzinfo=UTC)
        for n in range(sent):
            pid, phone = people[n % 3]
            at = start + timedelta(days=n, minutes=n)
            rows.append(_text(pid, phone, "out", at, "outreach", "Time to refill. Reply 1 to refill."))
            if n < replies:
                rows.append(_text(pid, phone, "in", at + timedelta(minutes=20), "patient", "1"))
    async with running.sessionmaker.begin() as session:
        session.add_all([m for m in rows if m.created_at < now])
        for n, (written, filled) in enumerate(
            [(date(2026, 11, 2), date(2026, 11, 3)), (date(2026, 11, 5), date(2026, 11, 9))]
        ):
            session.add(Prescription(id=f"rx-new-{n}", patient_id="pat-3", site_id="north", drug="Palbociclib 125 mg",
                                     therapy_class="oncology", payer_type="commercial", status="active",
                                     written_on=written))  # fmt: skip
            await session.flush()
            session.add(Fill(id=f"fill-new-{n}", prescription_id=f"rx-new-{n}", dispensed_on=filled, days_supply=28,
                             quantity=56, copay_cents=0))  # fmt: skip
        # Older fills, so PDC periods reach PQA's 91 days: Maria always on time, Robert 28 days late once.
        for pid, backs in (("pat-1", (124, 96)), ("pat-2", (124,))):
            for back in backs:
                session.add(Fill(id=f"fill-{pid}-old-{back}", prescription_id=f"rx-{pid}", days_supply=28, quantity=56,
                                 dispensed_on=now.date() - timedelta(days=back), copay_cents=2500))  # fmt: skip
        # Tasks due in October and November: resolved in time, late, or still open past due.
        for due, resolved in (("2026-10-06", "2026-10-06"), ("2026-10-14", "2026-10-16"), ("2026-11-03", "2026-11-03"),
                              ("2026-11-10", "2026-11-10"), ("2026-11-17", None)):  # fmt: skip
            at = datetime.fromisoformat(f"{due}T18:00").replace(tzinfo=UTC)
            session.add(Task(site_id="north", queue="refill", kind="refill_request", title="Refill requested",
                             priority=3, due_by=at, created_at=at - timedelta(hours=20),
                             status="resolved" if resolved else "open", outcome="refill_processed" if resolved else None,
                             resolved_at=datetime.fromisoformat(f"{resolved}T17:00").replace(tzinfo=UTC) if resolved else None))  # fmt: skip


async def test_metrics_charts_agree_with_the_table_flag_misses_in_words_and_need_no_script(
    browser, running: Running, output_dir: Path
) -> None:
    await _seed_months(running)
    context, page, _dialogs, _errors = await open_page(browser)
    missing: list[str] = []
    page.on(
        "response", lambda r: missing.append(r.url) if r.status >= 400 and "favicon" not in r.url else None
    )
    await sign_in(page, running.base_url)
    await page.click("nav >> text=Metrics")
    await page.wait_for_url(f"{running.base_url}/metrics-dashboard")
    table_value = await page.locator("#metric-outreach_response td.value").inner_text()
    assert table_value == "58.3%"  # 7 of 12 November texts answered within 72 h
    chart = page.locator("#chart-svg-outreach_response")
    labels = await chart.locator("text.value").all_text_contents()
    assert labels == [
        "100%",
        "75%",
        "50%",
        "75%",
        "83.3%",
        "58.3%",
    ]  # June .. November; the last is the table's
    bars = await chart.locator("rect.bar").evaluate_all("bs => bs.map(b => b.getBBox().height)")
    assert bars[-1] == pytest.approx(bars[0] * 0.583, rel=0.01) and bars[-1] > 0  # drawn as 58.3%, not 0
    axis = await chart.locator("text[text-anchor=end]").all_text_contents()
    assert axis[:5] == ["0%", "25%", "50%", "75%", "100%"]
    # Below benchmark (70%) in words: in the table, and on each month's column in the chart.
    assert await page.locator("#metric-outreach_response td.verdict").inner_text() == "Misses the benchmark"
    assert await chart.locator("text.flag").all_text_contents() == ["misses", "misses"]  # August and November
    assert await page.locator("#metric-time_to_fill td.value").inner_text() == "2.5 days"
    assert "< 2 days" in await page.locator("#metric-time_to_fill td.benchmark").inner_text()
    assert "≥ 71.6%" in await page.locator("#metric-pdc_adherent td.benchmark").inner_text()
    assert "> 90%" in await page.locator("#metric-mean_pdc td.benchmark").inner_text()
    assert await axe_serious(page) == []
    await screenshot(page, output_dir, "metrics.png")
    async with page.expect_download() as download:
        await page.click("#csv-series")
    saved = await (await download.value).path()
    figures = Path(saved).read_text(encoding="utf-8").splitlines()
    assert "north,2026-11,outreach_response,Outreach replied to within 72 h,58.3,%,70.0,misses" in figures
    assert missing == []  # everything the page loads is ours and there (no CDN)
    await context.close()

    # The charts are drawn by the server: with JavaScript off they are all there and visible.
    plain = await browser.new_context(
        viewport={"width": PHONE_W, "height": PHONE_H}, java_script_enabled=False
    )
    page = await plain.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    await sign_in(page, running.base_url)
    await page.goto(f"{running.base_url}/metrics-dashboard")
    assert await page.locator("svg.chart-svg").count() == 8
    box = await page.locator("#chart-svg-outreach_response").bounding_box()
    assert box is not None and box["width"] > 300 and box["x"] + box["width"] <= PHONE_W
    widths = await page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], widths  # no sideways scroll at 390 px
    await plain.close()


async def test_audit_names_failed_sign_ins_filters_and_local_time(browser, running: Running) -> None:
    await add_admin(running)
    context, page, _dialogs, _errors = await open_page(browser)
    await page.goto(f"{running.base_url}/login")
    await page.fill("#email", STAFF_EMAIL)
    await page.fill("#password", "not the password at all")
    await page.click("button[type=submit]")
    await page.wait_for_selector("#login-error")
    await sign_in(page, running.base_url)  # Dana, then she opens a patient
    await page.goto(f"{running.base_url}/patients/pat-2")
    await page.click("#sign-out")
    await sign_in(page, running.base_url, ADMIN)
    await page.click("nav >> text=Audit")
    assert (
        "times are North Oncology Pharmacy's local time (America/Chicago, CST)"
        in await page.locator("#audit-count").inner_text()
    )
    visible = await page.locator("#audit-table").inner_text()
    assert "user:" not in visible and "Dana Reyes" in visible and "Lee Admin" in visible
    await page.click("#failed-sign-ins")
    rows = page.locator("#audit-table tbody tr.event")
    assert await rows.count() == 1
    assert await rows.locator(".who").inner_text() == "Dana Reyes"
    assert await rows.locator(".what").inner_text() == "Sign-in failed"
    assert "wrong password" in await rows.locator(".detail-words").inner_text()
    assert await rows.locator(".when").inner_text() == "Tue 24 Nov 2026 10:00:00 CST"  # 16:00 UTC
    await page.goto(f"{running.base_url}/audit")
    await page.select_option("#f-actor", label="Dana Reyes")
    await page.fill("#f-patient", "pat-2")
    await page.fill("#f-from", "2026-11-24")
    await page.fill("#f-to", "2026-11-24")
    await page.click("#f-apply")
    await page.wait_for_url(re.compile(r".*/audit\?actor=user%3A\d+.*patient=pat-2.*"))
    whats = set(await page.locator("#audit-table tbody tr.event .what").all_inner_texts())
    assert whats and whats <= {"Opened a patient's record", "Read a patient's messages"}, whats
    assert set(await page.locator("#audit-table tbody tr.event .who").all_inner_texts()) == {"Dana Reyes"}
    assert await axe_serious(page) == []
    await context.close()


async def test_inbox_lists_conversations_newest_first_escaped_and_links_to_the_patient(
    browser, running: Running, output_dir: Path
) -> None:
    await running.text(JUNE, XSS)
    await running.text(ROBERT, "Can I take my pills with food?")
    context, page, dialogs, _errors = await open_page(browser)
    await sign_in(page, running.base_url)
    await page.click("nav >> text=Inbox")
    await page.wait_for_url(f"{running.base_url}/inbox")
    rows = page.locator("#inbox tr.conversation")
    assert await rows.evaluate_all("rs => rs.map(r => r.dataset.patient)") == ["pat-2", "pat-3"]
    # The latest message of each: the automatic answer each of them got, newest first.
    assert (await rows.first.locator(".direction").inner_text()) == "We sent"
    await page.check("#inbox-waiting")
    await page.click("text=Apply")
    await page.wait_for_url(re.compile(r".*/inbox\?days=30&waiting=1"))
    assert await rows.count() == 0  # both were answered by the bot
    async with running.sessionmaker.begin() as session:  # a minute later she writes again, not yet answered
        session.add(
            _text("pat-3", JUNE, "in", running.clock.now() + timedelta(minutes=1), "patient", XSS + " again")
        )
    await page.reload()
    assert await rows.evaluate_all("rs => rs.map(r => r.dataset.patient)") == ["pat-3"]
    assert await rows.first.locator(".said q").inner_text() == XSS + " again"
    assert await page.locator("#inbox img").count() == 0 and dialogs == []
    assert await axe_serious(page) == []
    await rows.first.locator("a.patient-link").click()
    await page.wait_for_url(f"{running.base_url}/patients/pat-3")
    assert await page.locator("#patient-name").inner_text() == "June Park"
    await context.close()


async def test_a_network_admin_switches_sites_and_a_single_site_user_gets_404(
    browser, running: Running
) -> None:
    async with running.sessionmaker.begin() as session:
        await add_other_site(session, "Ruiz")
        task = Task(site_id="south", queue="refill", kind="refill_request", title="Refill requested",
                    patient_id="pat-s", priority=3, due_by=running.clock.now() + timedelta(hours=20),
                    created_at=running.clock.now())  # fmt: skip
        session.add(task)
    await add_admin(running)
    async with running.sessionmaker.begin() as session:
        await grant_site(session, email=ADMIN, site_id="south")
    context, page, _dialogs, _errors = await open_page(browser)
    await sign_in(page, running.base_url, ADMIN)
    response = await page.goto(f"{running.base_url}/patients/pat-s")
    assert response is not None and response.status == 404  # not before switching
    await page.goto(f"{running.base_url}/queues")
    assert await page.locator("#site-switch option").all_inner_texts() == [
        "North Oncology Pharmacy",
        "South Cancer Care",
    ]
    await page.select_option("#site-switch", "south")
    await page.click("#switch-site")
    await page.wait_for_url(f"{running.base_url}/queues")
    assert await page.locator("#site-switch").input_value() == "south"
    assert await page.locator("#task-rows .patient-link").all_inner_texts() == ["Ana Ruiz"]
    assert await axe_serious(page) == []  # the queues page with the site switcher
    response = await page.goto(f"{running.base_url}/patients/pat-s")
    assert response is not None and response.status == 200
    response = await page.goto(f"{running.base_url}/patients/pat-2")
    assert response is not None and response.status == 404  # one site at a time
    await context.close()

    context, page, _dialogs, _errors = await open_page(browser)
    await sign_in(page, running.base_url)  # Dana works north only
    assert await page.locator("#site-switch").count() == 0
    await context.add_cookies([{"name": "midbot_site", "value": "south", "url": running.base_url}])
    response = await page.goto(f"{running.base_url}/patients/pat-s")
    assert response is not None and response.status == 404  # a forged choice changes nothing
    await context.close()


async def test_saved_views_bulk_assign_and_assign_to_a_colleague(browser, running: Running) -> None:
    first = await running.task_for(await running.text(ROBERT, "Please have a pharmacist call me"))
    second = await running.task_for(await running.text(MARIA, "¿Cuándo está lista mi receta?"))
    async with running.sessionmaker.begin() as session:
        colleague, _ = await create_user(session, site_id="north", email="tech@north.example", role="technician",
                                         password=PASSWORD, now=running.clock.now(), name="Sam Tech")  # fmt: skip
    context, page, _dialogs, _errors = await open_page(browser)
    await sign_in(page, running.base_url)
    await page.check("input[name=unassigned]")
    await page.click("text=Apply")
    await page.wait_for_url(re.compile(r".*/queues\?.*unassigned=1.*"))
    await page.fill("#view-name", "Nobody's yet")
    await page.click("#save-view-button")
    await page.wait_for_selector("#flash")
    assert await page.locator("#saved-views .view-link").all_inner_texts() == ["Nobody's yet"]
    assert await page.locator("#saved-views .view-link").get_attribute("aria-current") == "page"
    assert await axe_serious(page) == []  # with saved views and the bulk form
    await page.goto(f"{running.base_url}/queues")  # remembered for Dana, on any device she signs in on
    await page.click("#saved-views >> text=Nobody's yet")
    await page.wait_for_url(re.compile(r".*unassigned=1"))
    assert await page.locator("input[name=unassigned]").is_checked()

    for task in (first, second):
        await page.check(f"tr.task-row[data-id='{task.id}'] input[name=task]")
    await page.select_option("#bulk-action", "assign")
    await page.select_option("#bulk-assignee", label="Sam Tech (Technician)")
    await page.click("#bulk-apply")
    await page.wait_for_selector("#flash")
    assert "Done for the selected tasks." in await page.locator("#flash").inner_text()
    assert await page.locator("tr.task-row").count() == 0  # both claimed now: not in the unclaimed view
    async with running.sessionmaker() as session:
        assignees = set(
            await session.scalars(select(Task.assignee_id).where(Task.id.in_([first.id, second.id])))
        )
    assert assignees == {colleague.id}

    await page.goto(f"{running.base_url}/tasks/{first.id}")
    dana = await _user_id(running, STAFF_EMAIL)
    await page.select_option("#assignee", str(dana))
    await page.click("#assign")
    await page.wait_for_selector("#flash")
    assert await page.locator("#flash").inner_text() == "Task assigned."
    timeline = await page.locator(".timeline").inner_text()
    assert (
        "assigned to Sam Tech by Dana Reyes" in timeline
        and "assigned to Dana Reyes by Dana Reyes" in timeline
    )
    assert await page.locator("#reply-body").is_visible()  # hers now: she may reply
    assert await axe_serious(page) == []  # the task page with "Assign to a colleague"
    await context.close()


async def _user_id(running: Running, email: str) -> int:
    async with running.sessionmaker() as session:
        found = await session.scalar(select(StaffUser.id).where(StaffUser.email == email))
    assert found is not None
    return int(found)


async def test_a_typed_reply_survives_an_expired_session_and_is_dropped_once_sent(
    browser, running: Running
) -> None:
    task = await running.task_for(await running.text(ROBERT, "Please have a pharmacist call me"))
    context, page = await phone_page(browser)
    await sign_in(page, running.base_url)
    await page.goto(f"{running.base_url}/tasks/{task.id}")
    await page.click("#claim")
    await page.wait_for_selector("#flash")
    draft = "Hi Robert, we will call you at 2 pm about your refill."
    await page.fill("#reply-body", draft)
    async with running.sessionmaker.begin() as session:  # the session ends while she types
        await session.execute(
            update(StaffSession).values(expires_at=running.clock.now() - timedelta(minutes=1))
        )
    await page.click("#send-reply")
    await page.wait_for_selector("#sign-in-again")
    assert "Your session has ended" in await page.locator("main").inner_text()
    assert draft not in await running.received(ROBERT)  # nothing was sent
    await page.click("#sign-in-again")
    await page.wait_for_url(f"{running.base_url}/login?next=/tasks/{task.id}")
    await page.fill("#email", STAFF_EMAIL)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{running.base_url}/tasks/{task.id}")
    assert await page.locator("#reply-body").input_value() == draft  # kept on this device
    await page.click("#send-reply")
    await page.wait_for_selector("#flash")
    assert "Reply stored and sent." in await page.locator("#flash").inner_text()
    assert (await running.received(ROBERT))[-1] == draft
    key = f"midbot-draft-task-{task.id}"
    assert await page.evaluate("(k) => window.localStorage.getItem(k)", key) is None  # dropped once sent
    await page.goto(f"{running.base_url}/tasks/{task.id}")
    assert await page.locator("#reply-body").input_value() == ""
    await context.close()
