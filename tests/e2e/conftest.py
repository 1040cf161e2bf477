"""The whole stack on loopback: the Twilio simulator and midbot, each on a real TCP port."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import create_app
from bot.clock import FixedClock
from bot.db.migrate import upgrade
from bot.db.models import Fill, Patient, Prescription, Site
from bot.db.session import make_engine
from bot.keys import BACKGROUND, INBOX, SESSIONMAKER
from bot.logs import AccessLog
from bot.settings import Settings
from integrations.twilio.simulator.app import SimulatorConfig, start_simulator

SITE_PHONE = "+13125550100"
AUTH_TOKEN = "e2e-auth-token"
ACCOUNT = "AC" + "e2e".ljust(32, "0")
BLOCKED_PHONE = "+13125550666"  # the simulator answers 21610 for it, as if the handset opted out at Twilio


def free_port() -> int:
    """A port free now, for a subprocess to bind (in-process servers take a ``listening_socket``: no race)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening_socket() -> socket.socket:
    """A socket bound and listening on a free loopback port, for ``web.SockSite``: nobody can take the port
    between choosing it and serving on it (parallel test runs on one machine do)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


@dataclass
class Stack:
    """A running midbot + simulator pair and helpers to drive them like a handset would."""

    app: web.Application
    base_url: str
    sim_url: str
    http: aiohttp.ClientSession
    clock: FixedClock
    settings: Settings

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        return self.app[SESSIONMAKER]

    async def text(
        self, phone: str, body: str, sid: str | None = None, media: list[str] | None = None
    ) -> dict[str, Any]:
        """A patient texts midbot through the simulator (signed webhook); returns the simulator's answer."""
        payload: dict[str, Any] = {"from": phone, "to": SITE_PHONE, "body": body}
        if sid:
            payload["sid"] = sid
        if media:
            payload["media_urls"] = media
        async with self.http.post(f"{self.sim_url}/simulator/inbound", json=payload) as response:
            assert response.status == 200, await response.text()
            answer = await response.json()
        await self.settle()
        return answer

    async def settle(self) -> None:
        """Wait until the inbox has processed what was stored and background deliveries are done."""
        # A bound, not a speed check: a loaded CI machine can take seconds per dialog; a stuck inbox still fails.
        await asyncio.wait_for(self.app[INBOX].idle(), timeout=30)
        for _ in range(200):
            if len(self.app[BACKGROUND]) == 0:
                return
            await asyncio.sleep(0.01)

    async def received(self, phone: str) -> list[dict[str, Any]]:
        """Texts the simulator got from midbot for this handset, oldest first."""
        async with self.http.get(f"{self.sim_url}/simulator/messages", params={"to": phone}) as response:
            data = await response.json()
        items = data["messages"] if isinstance(data, dict) else data
        return [m for m in items if m.get("direction", "outbound").startswith("out") and m["to"] == phone]

    async def wait_received(self, phone: str, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Poll until the handset has at least ``count`` texts from midbot."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            got = await self.received(phone)
            if len(got) >= count or asyncio.get_running_loop().time() > deadline:
                return got
            await asyncio.sleep(0.05)

    async def count(self, model: type, *where: Any) -> int:
        async with self.sessionmaker() as session:
            return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


@pytest.fixture
def stack_clock() -> FixedClock:
    """Tuesday 2026-11-24 16:00 UTC = 10:00 in Chicago: inside business hours and the sending window."""
    return FixedClock(datetime(2026, 11, 24, 16, 0, tzinfo=UTC))


@asynccontextmanager
async def running_stack(tmp_path: Any, clock: FixedClock, **overrides: Any) -> AsyncIterator[Stack]:
    """midbot (the real app, ``create_app``) and the simulator on loopback; ``overrides`` are Settings."""
    sock = listening_socket()
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    sim_runner, sim_url = await start_simulator(
        SimulatorConfig(
            account_sid=ACCOUNT,
            auth_token=AUTH_TOKEN,
            webhook_url=f"{base_url}/twilio/inbound",
            callback_delays=(0.0, 0.0),
            blocklist=frozenset({BLOCKED_PHONE}),
        ),
        "127.0.0.1",
        0,
    )
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path}/e2e.db",
        "public_base_url": base_url,
        "twilio_api_base_url": sim_url,
        "twilio_account_sid": ACCOUNT,
        "twilio_auth_token": AUTH_TOKEN,
        "run_dispatcher": False,
        "log_format": "text",
        "twilio_timeout_seconds": 5,
    }
    settings = Settings(_env_file=None, **{**values, **overrides})  # type: ignore[call-arg]
    engine = make_engine(settings.database_url)
    await upgrade(engine)
    await engine.dispose()
    app = create_app(settings, clock=clock)
    runner = web.AppRunner(app, access_log_class=AccessLog)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    try:
        async with aiohttp.ClientSession() as http:
            yield Stack(
                app=app, base_url=base_url, sim_url=sim_url, http=http, clock=clock, settings=settings
            )
    finally:
        await runner.cleanup()
        await sim_runner.cleanup()


@pytest.fixture
async def stack(tmp_path, stack_clock: FixedClock) -> AsyncIterator[Stack]:  # type: ignore[no-untyped-def]
    async with running_stack(tmp_path, stack_clock) as running:
        yield running


SeedPatient = Callable[..., Awaitable[Patient]]


async def add_patient(
    stack: Stack,
    pid: str = "P1",
    phone: str = "+13125550123",
    language: str = "en",
    *,
    drug: str = "capecitabine",
    copay: int = 2500,
    payer: str = "commercial",
    site_settings: dict[str, Any] | None = None,
    dispensed_on: date = date(2026, 10, 30),
    send_rate: float = 1.0,
) -> Patient:
    """Create the site (once, sending ``send_rate`` texts a second) and a patient on capecitabine with one fill."""
    async with stack.sessionmaker.begin() as session:
        if await session.get(Site, "S1") is None:
            session.add(
                Site(
                    id="S1",
                    name="Lakeside Pharmacy",
                    phone=SITE_PHONE,
                    time_zone="America/Chicago",
                    settings=dict(site_settings or {}),
                    send_rate=send_rate,
                )
            )
            await session.flush()
        patient = Patient(
            id=pid,
            site_id="S1",
            first_name="Ana",
            last_name="Ruiz",
            phone=phone,
            language=language,
            birth_date=date(1950, 1, 2),
            sms_consent=True,
        )
        session.add(patient)
        await session.flush()
        session.add(
            Prescription(
                id=f"RX-{pid}",
                patient_id=pid,
                site_id="S1",
                drug=drug,
                therapy_class="oncology",
                payer_type=payer,
                status="active",
            )
        )
        await session.flush()
        session.add(
            Fill(
                id=f"F-{pid}",
                prescription_id=f"RX-{pid}",
                dispensed_on=dispensed_on,
                days_supply=28,
                quantity=56,
                copay_cents=copay,
            )
        )
    return patient


@pytest.fixture
def seed(stack: Stack) -> SeedPatient:
    """``add_patient`` on the test's stack."""

    async def make(*args: Any, **kwargs: Any) -> Patient:
        return await add_patient(stack, *args, **kwargs)

    return make
