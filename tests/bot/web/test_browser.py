"""The staff pages in a real browser (Debian's Chromium via Playwright), the whole path on loopback.

The Twilio simulator and midbot run on real TCP ports, wired to each other as in production: a patient texts
through the simulator, which posts the signed webhook to midbot; midbot's replies go through the real twilio
client to the simulator's API. Flow (issue 6): sign in; an inbound SMS becomes a task that appears on the open
queues page without a reload; open it with the keyboard; claim; reply (the simulator's handset receives it);
resolve with an outcome; sign out. A patient's text ``<img src=x onerror=alert(1)>`` shows as text and runs
nothing. Screenshots go to test-output/ (and to docs/screenshots/ with MIDBOT_UPDATE_SCREENSHOTS=1).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import create_app
from bot.clock import FixedClock
from bot.db.models import Fill, Message, Patient, Prescription, Site, StaffUser, Task
from bot.keys import BACKGROUND, INBOX, SESSIONMAKER
from bot.settings import Settings
from bot.staff.auth import ROLE_QUEUES, create_user
from integrations.twilio.simulator.app import SimulatorConfig, start_simulator
from tests.bot.support import PASSWORD, XSS, migrate

CHROMIUM = os.environ.get("MIDBOT_TEST_CHROMIUM") or shutil.which("chromium")
pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM, reason="no chromium binary (apt-get install chromium, or set MIDBOT_TEST_CHROMIUM)"
    ),
    pytest.mark.asyncio(loop_scope="module"),
]
ACCOUNT = "AC" + "b" * 32
AUTH = "browser-test-auth-token"
TIMEOUT_MS = 10_000
SITE_PHONE = "+13125550100"
MARIA = "+13125551234"  # Spanish, has not agreed to detailed messages: the drug warning applies
ROBERT = "+13125559876"  # English, detailed messages agreed
JUNE = "+13125554444"  # English; sends the markup
STAFF_EMAIL = "rph@north.example"
QUESTION = "¿Cuándo está lista mi receta?"  # "when is my prescription ready?"
SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"


def bound_socket() -> socket.socket:
    """A listening-ready socket on a free loopback port, held open so no other process can take the port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def browser() -> AsyncIterator[Any]:
    """One headless Chromium for the module."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        launched = await pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        yield launched
        await launched.close()


@dataclass
class Running:
    """midbot and the Twilio simulator, each on a real port, and a handset's view of them."""

    base_url: str
    sim_url: str
    app: web.Application
    http: aiohttp.ClientSession
    clock: FixedClock

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        return self.app[SESSIONMAKER]

    async def text(self, phone: str, body: str) -> Message:
        """The patient texts the site through the simulator (signed webhook); returns the stored message."""
        payload = {"from": phone, "to": SITE_PHONE, "body": body}
        async with self.http.post(f"{self.sim_url}/simulator/inbound", json=payload) as response:
            assert response.status == 200, await response.text()
            answer = await response.json()
        assert answer["webhook_status"] == 200, answer  # midbot took the signed webhook
        await asyncio.wait_for(self.app[INBOX].idle(), timeout=10)  # processed: reply sent, task opened
        for _ in range(200):
            if not self.app[BACKGROUND]:
                break
            await asyncio.sleep(0.01)
        async with self.sessionmaker() as session:
            message = await session.scalar(select(Message).where(Message.provider_sid == answer["sid"]))
        assert message is not None and message.body == body
        return message

    async def task_for(self, message: Message) -> Task:
        """The task the inbound message opened."""
        async with self.sessionmaker() as session:
            task = await session.scalar(select(Task).where(Task.source_message_id == message.id))
        assert task is not None, f"message {message.id} opened no task"
        return task

    async def received(self, phone: str) -> list[str]:
        """Bodies of the texts the simulator delivered to this handset from midbot, oldest first."""
        async with self.http.get(f"{self.sim_url}/simulator/messages", params={"to": phone}) as response:
            data = await response.json()
        items = data["messages"] if isinstance(data, dict) else data
        return [m["body"] for m in items if m["to"] == phone and m.get("direction", "out").startswith("out")]


async def _seed(sessionmaker: async_sessionmaker[AsyncSession], now: datetime) -> None:
    """One site, three patients on oral oncolytics, and a pharmacist created the way `midbot users` does."""
    async with sessionmaker.begin() as session:
        session.add(
            Site(id="north", name="North Oncology Pharmacy", phone=SITE_PHONE, time_zone="America/Chicago")
        )
        await session.flush()
        people = [("pat-1", "Maria", "Lopez", MARIA, "es", False, "Capecitabine 500 mg"),
                  ("pat-2", "Robert", "Hill", ROBERT, "en", True, "Abiraterone 250 mg"),
                  ("pat-3", "June", "Park", JUNE, "en", True, "Palbociclib 125 mg")]  # fmt: skip
        for pid, first, last, phone, language, detailed, drug in people:
            session.add(Patient(id=pid, site_id="north", first_name=first, last_name=last, phone=phone,
                                birth_date=date(1951, 3, 14), language=language, sms_consent=True,
                                detailed_consent=detailed))  # fmt: skip
            await session.flush()
            session.add(Prescription(id=f"rx-{pid}", patient_id=pid, site_id="north", drug=drug,
                                     therapy_class="oncology", payer_type="commercial", status="active"))  # fmt: skip
            await session.flush()
            for n, back in enumerate((68, 40, 12)):
                session.add(Fill(id=f"fill-{pid}-{n}", prescription_id=f"rx-{pid}", days_supply=28, quantity=56,
                                 dispensed_on=now.date() - timedelta(days=back), copay_cents=2500))  # fmt: skip
        await create_user(session, site_id="north", email=STAFF_EMAIL, role="pharmacist", password=PASSWORD,
                          now=now, name="Dana Reyes", update=True)  # fmt: skip


@pytest_asyncio.fixture(loop_scope="module")
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    clock = FixedClock(datetime(2026, 11, 24, 16, 0, tzinfo=UTC))  # Tuesday 10:00 in Chicago
    sock = bound_socket()  # midbot's port is known before the app exists: the simulator signs for that URL
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    sim_runner, sim_url = await start_simulator(
        SimulatorConfig(account_sid=ACCOUNT, auth_token=AUTH, webhook_url=f"{base_url}/twilio/inbound",
                        callback_delays=(0.0, 0.0), seed=3),
        "127.0.0.1", 0,
    )  # fmt: skip
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path}/browser.db", public_base_url=base_url,
        twilio_api_base_url=sim_url, twilio_account_sid=ACCOUNT, twilio_auth_token=AUTH, run_dispatcher=False,
        log_format="text", twilio_timeout_seconds=5,
    )  # fmt: skip
    await migrate(settings)
    app = create_app(settings, clock=clock)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    await _seed(app[SESSIONMAKER], clock.now())
    async with aiohttp.ClientSession() as http:
        yield Running(base_url, sim_url, app, http, clock)
    await runner.cleanup()
    await sim_runner.cleanup()


async def _page(browser: Any) -> tuple[Any, Any, list[str], list[str]]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    dialogs: list[str] = []
    console_errors: list[str] = []

    async def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)  # a script ran: the test fails below
        await dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
    return context, page, dialogs, console_errors


async def _sign_in(page: Any, base_url: str) -> None:
    await page.goto(f"{base_url}/login")
    await page.fill("#email", STAFF_EMAIL)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base_url}/queues")


async def _screenshot(page: Any, output_dir: Path, name: str) -> None:
    """Into test-output/ always; into docs/screenshots/ for the README only when asked to."""
    path = output_dir / name
    await page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    if os.environ.get("MIDBOT_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, SCREENSHOTS / name)


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

    context, page, dialogs, console_errors = await _page(browser)
    await _sign_in(page, base)
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
    await _screenshot(page, output_dir, "queues.png")

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
    await _screenshot(page, output_dir, "task.png")

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
    context, page, dialogs, _errors = await _page(browser)
    await _sign_in(page, running.base_url)
    await page.locator(f"tr.task-row[data-id='{task.id}'] a.task-link").click()
    await page.wait_for_url(f"{running.base_url}/tasks/{task.id}")
    body = page.locator(f"#thread .msg.in[data-id='{inbound.id}'] .msg-body")
    assert await body.inner_text() == XSS
    assert await page.locator("#thread img").count() == 0
    await page.wait_for_timeout(100)  # a broken image's onerror would have fired by now
    assert dialogs == []
    await context.close()


async def test_wrong_password_shows_a_clear_message(browser, running: Running) -> None:
    context, page, dialogs, _errors = await _page(browser)
    await page.goto(f"{running.base_url}/login")
    await page.fill("#email", STAFF_EMAIL)
    await page.fill("#password", "not the right password")
    await page.click("button[type=submit]")
    await page.wait_for_selector("#login-error")
    assert "do not match" in await page.locator("#login-error").inner_text()
    assert dialogs == []
    await context.close()
