"""The staff pages' browser harness, shared by every browser test: one headless Chromium (Debian's, via
Playwright) per module, and midbot and the Twilio simulator on real loopback ports wired to each other as in
production (the simulator signs webhooks for midbot's URL; midbot's replies go through the real twilio client).
Fixtures `browser` and `running` reach the tests through conftest.py; the helpers are imported by name."""

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
from bot.db.models import Fill, Message, Patient, Prescription, Site, Task
from bot.keys import BACKGROUND, INBOX, SESSIONMAKER
from bot.settings import Settings
from bot.staff.auth import create_user
from integrations.twilio.simulator.app import SimulatorConfig, start_simulator
from tests.bot.support import PASSWORD, migrate

CHROMIUM = os.environ.get("MIDBOT_TEST_CHROMIUM") or shutil.which("chromium")
BROWSER_MARKS = [
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
ADMIN = "admin@north.example"
PHONE_W, PHONE_H = 390, 844


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


async def open_page(browser: Any) -> tuple[Any, Any, list[str], list[str]]:
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


async def sign_in(page: Any, base_url: str, email: str = STAFF_EMAIL, landing: str = "/queues") -> None:
    """Through the login form, as a person does; waits for the page the sign-in lands on."""
    await page.goto(f"{base_url}/login")
    await page.fill("#email", email)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base_url}{landing}")


async def screenshot(page: Any, output_dir: Path, name: str) -> None:
    """Into test-output/ always; into docs/screenshots/ for the README only when asked to."""
    path = output_dir / name
    await page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    if os.environ.get("MIDBOT_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, SCREENSHOTS / name)


async def phone_page(browser: Any) -> tuple[Any, Any]:
    context = await browser.new_context(viewport={"width": PHONE_W, "height": PHONE_H}, is_mobile=True)
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    return context, page


async def axe_serious(page: Any) -> list[str]:
    """axe-core (shipped inside the axe-playwright-python wheel, nothing fetched) on the page as it is now:
    the serious and critical violations, as "rule: target" lines."""
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(page)
    return [
        f"{v['id']}: {node['target']}"
        for v in results.response["violations"]
        if v.get("impact") in ("serious", "critical")
        for node in v["nodes"]
    ]


async def add_admin(running: Running, name: str = "Lee Admin") -> int:
    """A clinic admin of site north (ADMIN), created the way `midbot users` does; returns the user id."""
    async with running.sessionmaker.begin() as session:
        user, _ = await create_user(session, site_id="north", email=ADMIN, role="clinic_admin", password=PASSWORD,
                                    now=running.clock.now(), name=name, update=True)  # fmt: skip
        return user.id


async def add_other_site(session: AsyncSession, last_name: str) -> None:
    """Site south with one patient, pat-s (Ana ``last_name``): what a north user must never see."""
    session.add(Site(id="south", name="South Cancer Care", phone="+16125550100", time_zone="America/Chicago"))
    await session.flush()
    session.add(Patient(id="pat-s", site_id="south", first_name="Ana", last_name=last_name, phone="+16125551111",
                        birth_date=date(1960, 1, 5), language="en"))  # fmt: skip
    await session.flush()
