"""The staff pages in a real browser (Debian's Chromium via Playwright) against the app on a real TCP port.

Flow: sign in; a new task appears on the queues page without a reload; open it with the keyboard; claim;
reply (stored and received by the Twilio simulator); resolve with an outcome; sign out. A patient's text
``<img src=x onerror=alert(1)>`` shows as text and runs nothing.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from sqlalchemy import select

from bot.clock import FixedClock
from bot.db.models import Message, Task
from bot.keys import SESSIONMAKER
from bot.settings import Settings
from bot.tasks import open_task
from integrations.twilio.simulator.app import SimulatorConfig, start_simulator

try:  # tests/bot is not a package: its modules import each other by name
    from test_web_support import PASSWORD, PATIENT_PHONE, XSS, Seeded, build_app, email, migrate, seed
except ImportError:  # pragma: no cover - if tests/bot becomes a package
    from tests.bot.test_web_support import (
        PASSWORD,
        PATIENT_PHONE,
        XSS,
        Seeded,
        build_app,
        email,
        migrate,
        seed,
    )

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
    """The app and the simulator, each on a real port."""

    base_url: str
    sim_url: str
    app: web.Application
    seeded: Seeded
    clock: FixedClock


@pytest_asyncio.fixture(loop_scope="module")
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    clock = FixedClock(datetime(2026, 11, 24, 16, 0, tzinfo=UTC))  # 10:00 in Chicago
    port = free_port()
    sim_runner, sim_url = await start_simulator(
        SimulatorConfig(account_sid=ACCOUNT, auth_token=AUTH, callback_delays=(0.0, 0.0), seed=3)
    )
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path}/browser.db",
        public_base_url=f"http://127.0.0.1:{port}", twilio_api_base_url=sim_url, twilio_account_sid=ACCOUNT,
        twilio_auth_token=AUTH, run_dispatcher=False, log_format="text", twilio_timeout_seconds=5,
    )  # fmt: skip
    await migrate(settings)
    app = build_app(settings, clock)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    seeded = await seed(app[SESSIONMAKER], clock.now())
    yield Running(f"http://127.0.0.1:{port}", sim_url, app, seeded, clock)
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


async def _sign_in(page: Any, base_url: str, key: str) -> None:
    await page.goto(f"{base_url}/login")
    await page.fill("#email", email(key))
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base_url}/queues")


async def test_sign_in_work_a_task_and_sign_out(browser, running: Running, output_dir: Path) -> None:
    context, page, dialogs, console_errors = await _page(browser)
    base = running.base_url
    await _sign_in(page, base, "pharmacist")
    await page.wait_for_selector(".queue-card[data-queue='urgent_clinical']")
    await page.evaluate("window.__sameDocument = true")

    # A new task (whose title carries the patient's text) appears without a reload.
    title = f"Question: {XSS}"
    async with running.app[SESSIONMAKER].begin() as session:
        task = await open_task(session, site_id="north", queue="clinical", kind="question", title=title,
                               now=running.clock.now(), patient_id="pat-n1", priority=2,
                               source_message_id=running.seeded.messages["inbound"])  # fmt: skip
        task_id = task.id
    row = page.locator(f"tr.task-row[data-id='{task_id}']")
    await row.wait_for(state="visible", timeout=TIMEOUT_MS)
    assert await page.evaluate("window.__sameDocument") is True
    assert await row.locator("a.task-link").inner_text() == title
    first = page.locator("tr.task-row").first
    assert "urgent" in (await first.get_attribute("class") or "")
    assert await page.locator("#live").inner_text() == "1 new task"
    await page.screenshot(path=str(output_dir / "queues.png"), full_page=True)

    # Keyboard: j selects the urgent row, j again the new task, Enter opens it.
    await page.keyboard.press("j")
    await page.keyboard.press("j")
    assert await page.evaluate("document.activeElement.textContent") == title
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"{base}/tasks/{task_id}")

    # The patient's text is shown as text, and nothing ran.
    thread = page.locator("#thread .msg.in .msg-body").first
    assert await thread.inner_text() == XSS
    assert await page.locator("#task-title").inner_text() == title
    assert await page.locator("#masked-phone").inner_text() == "•••-•••-1234"

    await page.click("#claim")
    await page.wait_for_selector("#flash")
    assert "You claimed this task." in await page.locator("#flash").inner_text()

    # The live segment counter and the drug warning (no detailed consent).
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
    await page.select_option("#snippet", index=1)
    assert not await page.locator("#drug-warning").is_visible()
    snippet_text = await body.input_value()
    assert snippet_text.startswith("Le habla su equipo")
    await page.click("#send-reply")
    await page.wait_for_selector("#flash")
    assert "Reply stored and sent." in await page.locator("#flash").inner_text()
    assert await page.locator("#thread .msg.out .msg-body").last.inner_text() == snippet_text
    await page.screenshot(path=str(output_dir / "task.png"), full_page=True)

    async with running.app[SESSIONMAKER]() as session:
        stored = await session.scalar(select(Message).where(Message.task_id == task_id))
    assert stored is not None and stored.body == snippet_text
    assert stored.staff_user_id == running.seeded.users["pharmacist"]
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{running.sim_url}/simulator/messages", params={"to": PATIENT_PHONE}
        ) as response:
            data = await response.json()
    items = data["messages"] if isinstance(data, dict) else data
    assert snippet_text in [m["body"] for m in items if m["to"] == PATIENT_PHONE]

    # Resolve with an outcome: back to the queues, the task is gone from the list.
    await page.select_option("#outcome", "advice_given")
    await page.fill("#resolve-note", "Explained when to take it")
    await page.click("#resolve")
    await page.wait_for_url(f"{base}/queues?done=resolve")
    assert await page.locator(f"tr.task-row[data-id='{task_id}']").count() == 0
    async with running.app[SESSIONMAKER]() as session:
        resolved = await session.get(Task, task_id)
    assert resolved is not None and resolved.status == "resolved" and resolved.outcome == "advice_given"

    await page.click("#sign-out")
    await page.wait_for_url(f"{base}/login")
    await page.goto(f"{base}/queues")
    await page.wait_for_url(f"{base}/login?next=/queues")

    assert dialogs == []
    assert not [e for e in console_errors if "Content Security Policy" in e or "Refused" in e], console_errors
    await context.close()


async def test_wrong_password_shows_a_clear_message(browser, running: Running) -> None:
    context, page, dialogs, _errors = await _page(browser)
    await page.goto(f"{running.base_url}/login")
    await page.fill("#email", email("pharmacist"))
    await page.fill("#password", "not the right password")
    await page.click("button[type=submit]")
    await page.wait_for_selector("#login-error")
    assert "do not match" in await page.locator("#login-error").inner_text()
    assert dialogs == []
    await context.close()
