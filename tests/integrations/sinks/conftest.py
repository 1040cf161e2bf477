"""Fixtures for the signal sink tests: a migrated store with two patients and signals to push."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.db.models import Message, Patient, Prescription, Site, Task
from bot.db.session import make_sessionmaker
from bot.settings import Settings
from tests.store import record_signal

T0 = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
SECRET = "test-webhook-secret"


async def seed_people(session: AsyncSession) -> None:
    """Two sites, a patient at each, a prescription for the first."""
    session.add_all(
        [
            Site(id="s1", name="Site One", phone="+15550000001", time_zone="America/Chicago"),
            Site(id="s2", name="Site Two", phone="+15550000002", time_zone="America/New_York"),
        ]
    )
    await session.flush()
    session.add_all(
        [
            Patient(id="p1", site_id="s1", first_name="Ana", last_name="Diaz", phone="+15551110001"),
            Patient(id="p2", site_id="s2", first_name="Bo", last_name="Lee", phone="+15551110002"),
        ]
    )
    await session.flush()
    session.add(Prescription(id="rx1", patient_id="p1", site_id="s1", drug="capecitabine"))
    await session.flush()


async def add_signals(maker: async_sessionmaker[AsyncSession], count: int, start: int = 0) -> list[int]:
    """Record ``count`` refill signals; returns their ids."""
    ids = []
    async with maker.begin() as session:
        for i in range(start, start + count):
            signal = await record_signal(
                session,
                patient_id="p1" if i % 2 == 0 else "p2",
                site_id="s1" if i % 2 == 0 else "s2",
                kind="refill_confirmed",
                source="patient",
                occurred_at=T0 + timedelta(minutes=i),
                created_at=T0 + timedelta(minutes=i),
                value={"n": i},
                dedupe_key=f"test:{i}",
            )
            assert signal is not None
            ids.append(signal.id)
    return ids


async def add_symptom_with_message(maker: async_sessionmaker[AsyncSession]) -> tuple[int, int, int]:
    """An inbound message, the urgent task it opened and the side-effect signal it produced."""
    async with maker.begin() as session:
        message = Message(
            direction="in", patient_id="p1", site_id="s1", from_number="+15551110001",
            to_number="+15550000001", body="bad diarrhea, 6 times today", status="received", created_at=T0,
        )  # fmt: skip
        session.add(message)
        await session.flush()
        task = Task(
            site_id="s1", patient_id="p1", prescription_id="rx1", queue="urgent_clinical", kind="side_effect",
            priority=1, title="Severe diarrhea reported", due_by=T0 + timedelta(hours=1),
            source_message_id=message.id, created_at=T0,
        )  # fmt: skip
        session.add(task)
        await session.flush()
        signal = await record_signal(
            session, patient_id="p1", site_id="s1", kind="side_effect", source="patient", occurred_at=T0,
            created_at=T0, value={"symptom": "diarrhea", "severity": "severe"}, prescription_id="rx1",
            source_message_id=message.id, dedupe_key=f"msg:{message.id}:0:side_effect",
        )  # fmt: skip
        assert signal is not None
        return signal.id, message.id, task.id


@dataclass
class FakeSleep:
    """Records the backoff delays instead of waiting."""

    delays: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def fake_sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
async def maker(engine: AsyncEngine) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A sessionmaker on the migrated SQLite store, seeded with sites and patients."""
    sm = make_sessionmaker(engine)
    async with sm.begin() as session:
        await seed_people(session)
    yield sm


def sink_settings(settings: Settings, **overrides: object) -> Settings:
    return settings.model_copy(update=overrides)
