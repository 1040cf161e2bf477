"""Shared seeding for the staff page, API and browser tests: two sites, their staff, tokens, patients, tasks.

(No tests here; the other test modules import it.)
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.api.routes import setup_api
from bot.app import create_app
from bot.clock import Clock
from bot.db.migrate import upgrade
from bot.db.models import Fill, Message, Patient, Prescription, Site, StaffUser
from bot.db.session import make_engine
from bot.settings import Settings
from bot.staff.auth import create_api_token
from bot.web.routes import setup_web
from tests.store import open_task

PASSWORD = "correct-horse-battery-staple"
# Verification reads the cost from the hash itself, so cheap parameters keep sign-in fast in tests only.
_HASH = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
NORTH_PHONE = "+13125550100"
SOUTH_PHONE = "+16125550100"
PATIENT_PHONE = "+13125551234"
XSS = "<img src=x onerror=alert(1)>"


@dataclass
class Seeded:
    """Ids and secrets the tests use."""

    users: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    tasks: dict[str, int] = field(default_factory=dict)
    messages: dict[str, int] = field(default_factory=dict)


_TEMPLATE: list[Path] = []


async def migrate(settings: Settings) -> None:
    """A migrated database at settings.database_url (a copy of one migrated once per test run)."""
    target = Path(settings.database_url.split(":///", 1)[1])
    if not _TEMPLATE:
        template = Path(tempfile.mkdtemp(prefix="midbot-template-")) / "template.db"
        engine = make_engine(f"sqlite+aiosqlite:///{template}")
        await upgrade(engine)
        await engine.dispose()
        _TEMPLATE.append(template)
    shutil.copyfile(_TEMPLATE[0], target)


def build_app(settings: Settings, clock: Clock) -> web.Application:
    """The real app, with the staff pages and the API (setup is idempotent if the lead wired them)."""
    app = create_app(settings, clock=clock)
    setup_web(app)
    setup_api(app)
    return app


async def _sites_and_staff(session: AsyncSession, seeded: Seeded, now: datetime) -> None:
    session.add(Site(id="north", name="North Oncology", phone=NORTH_PHONE, time_zone="America/Chicago"))
    session.add(Site(id="south", name="South Cancer Care", phone=SOUTH_PHONE, time_zone="America/Chicago"))
    await session.flush()
    staff = {
        "pharmacist": ("north", "pharmacist"),
        "technician": ("north", "technician"),
        "navigator": ("north", "financial_navigator"),
        "admin": ("north", "clinic_admin"),
        "south_pharmacist": ("south", "pharmacist"),
    }
    for key, (site, role) in staff.items():
        user = StaffUser(
            site_id=site, email=f"{key}@{site}.example", name=key.replace("_", " ").title(), role=role,
            password_hash=_HASH, created_at=now,
        )  # fmt: skip
        session.add(user)
        await session.flush()
        seeded.users[key] = user.id
    for site in ("north", "south"):
        _row, token = await create_api_token(session, site_id=site, name=f"{site}-pharmacy-system", now=now)
        seeded.tokens[site] = token


async def _patients(session: AsyncSession, seeded: Seeded, now: datetime) -> None:
    session.add_all(
        [
            Patient(
                id="pat-n1", site_id="north", first_name="Maria", last_name="Lopez", birth_date=date(1951, 3, 14),
                phone=PATIENT_PHONE, language="es", sms_consent=True, detailed_consent=False,
                deliverability={"last_status": "delivered"},
            ),
            Patient(
                id="pat-n2", site_id="north", first_name="Robert", last_name="Hill", birth_date=date(1948, 7, 2),
                phone="+13125559876", language="en", sms_consent=True, detailed_consent=True,
            ),
            Patient(
                id="pat-s1", site_id="south", first_name="Ana", last_name="Ruiz", birth_date=date(1960, 1, 5),
                phone="+16125554321", language="en", sms_consent=True, detailed_consent=True,
            ),
        ]
    )  # fmt: skip
    await session.flush()
    session.add(Prescription(id="rx-n1", patient_id="pat-n1", site_id="north", drug="Capecitabine 500 mg"))
    session.add(Prescription(id="rx-s1", patient_id="pat-s1", site_id="south", drug="Abiraterone"))
    await session.flush()
    today = now.date()
    for n, back in enumerate((70, 40, 12)):
        session.add(
            Fill(id=f"fill-n1-{n}", prescription_id="rx-n1", dispensed_on=today - timedelta(days=back),
                 days_supply=28, quantity=56, copay_cents=2500)
        )  # fmt: skip
    inbound = Message(
        direction="in", kind="patient", patient_id="pat-n1", site_id="north", from_number=PATIENT_PHONE,
        to_number=NORTH_PHONE, body=XSS, status="received", provider_sid="SM" + "1" * 32,
        created_at=now - timedelta(minutes=30),
    )  # fmt: skip
    session.add(inbound)
    await session.flush()
    seeded.messages["inbound"] = inbound.id


async def _tasks(session: AsyncSession, seeded: Seeded, now: datetime) -> None:
    specs: list[tuple[str, dict[str, Any]]] = [
        ("urgent", {"site_id": "north", "queue": "urgent_clinical", "kind": "side_effect",
                    "title": "Severe diarrhea reported", "patient_id": "pat-n1", "priority": 1,
                    "detail": {"severity": "severe"}, "source_message_id": seeded.messages["inbound"]}),
        ("refill", {"site_id": "north", "queue": "refill", "kind": "refill_request",
                    "title": "Refill requested", "patient_id": "pat-n1", "prescription_id": "rx-n1",
                    "source_message_id": seeded.messages["inbound"]}),
        ("financial", {"site_id": "north", "queue": "financial", "kind": "cost_concern",
                       "title": "Worried about the copay", "patient_id": "pat-n2"}),
        ("south", {"site_id": "south", "queue": "refill", "kind": "refill_request",
                   "title": "Refill requested (south)", "patient_id": "pat-s1"}),
    ]  # fmt: skip
    for key, kwargs in specs:
        task = await open_task(session, now=now - timedelta(minutes=20), **kwargs)
        seeded.tasks[key] = task.id


async def seed(sessionmaker: async_sessionmaker[AsyncSession], now: datetime) -> Seeded:
    """Two sites (north, south) with staff of every role, a token each, patients, fills and tasks."""
    seeded = Seeded()
    async with sessionmaker.begin() as session:
        await _sites_and_staff(session, seeded, now)
        await _patients(session, seeded, now)
        await _tasks(session, seeded, now)
    return seeded


def email(key: str) -> str:
    site = "south" if key.startswith("south") else "north"
    return f"{key}@{site}.example"


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form of a page."""
    found = _CSRF.search(html)
    assert found, "no CSRF token in the page"
    return found.group(1)


async def sign_in(client: TestClient, key: str, password: str = PASSWORD) -> str:
    """Sign a seeded user in through the real form; returns the session's CSRF token."""
    page = await client.get("/login")
    assert page.status == 200
    response = await client.post(
        "/login",
        data={"email": email(key), "password": password, "csrf_token": csrf_of(await page.text())},
        allow_redirects=False,
    )
    assert response.status == 303, await response.text()
    queues = await client.get("/queues")
    assert queues.status == 200
    return csrf_of(await queues.text())


def bearer(seeded: Seeded, site: str = "north") -> dict[str, str]:
    """The Authorization header of a site's seeded API token."""
    return {"Authorization": f"Bearer {seeded.tokens[site]}"}
