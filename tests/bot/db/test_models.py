"""The schema carries the invariants: migrations create it on SQLite and PostgreSQL, constraints hold."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError

from bot.db.migrate import current_revision, head_revision, upgrade
from bot.db.models import Message, Outreach, Patient, Site
from bot.db.session import make_engine, make_sessionmaker

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


async def _migrated(url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(url)
    await upgrade(engine)
    await upgrade(engine)  # idempotent
    return engine


async def _seed(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    async with sessionmaker.begin() as session:
        session.add(
            Site(id="S1", name="Site", phone="+13125550100", time_zone="America/Chicago", settings={})
        )
        await session.flush()
        session.add(
            Patient(
                id="P1",
                site_id="S1",
                first_name="A",
                last_name="B",
                phone="+13125550101",
                birth_date=date(1950, 1, 1),
            )
        )


async def test_migrations_reach_head_and_create_tables(any_db_url: str) -> None:
    engine = await _migrated(any_db_url)
    try:
        assert await current_revision(engine) == head_revision()
        async with engine.connect() as conn:
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        assert {
            "site",
            "patient",
            "prescription",
            "fill",
            "program",
            "outreach",
            "message",
            "conversation",
            "task",
            "signal",
            "staff_user",
            "audit_event",
        } <= tables
    finally:
        await engine.dispose()


async def test_duplicate_message_sid_is_rejected(any_db_url: str) -> None:
    engine = await _migrated(any_db_url)
    sessionmaker = make_sessionmaker(engine)
    try:
        await _seed(sessionmaker)
        async with sessionmaker.begin() as session:
            session.add(Message(direction="in", from_number="+1", to_number="+2", provider_sid="SM1"))
        with pytest.raises(IntegrityError):
            async with sessionmaker.begin() as session:
                session.add(Message(direction="in", from_number="+1", to_number="+2", provider_sid="SM1"))
        async with sessionmaker() as session:
            assert len((await session.scalars(select(Message))).all()) == 1
    finally:
        await engine.dispose()


async def test_duplicate_outreach_key_is_rejected(any_db_url: str) -> None:
    engine = await _migrated(any_db_url)
    sessionmaker = make_sessionmaker(engine)

    def row() -> Outreach:
        return Outreach(
            idempotency_key="P1:RX1:refill:run_out-2:2026-11-30",
            patient_id="P1",
            program_id="refill",
            kind="refill_reminder",
            step="run_out-2",
            due_at=NOW,
            deadline_at=NOW + timedelta(hours=24),
        )

    try:
        await _seed(sessionmaker)
        async with sessionmaker.begin() as session:
            session.add(row())
        with pytest.raises(IntegrityError):
            async with sessionmaker.begin() as session:
                session.add(row())
    finally:
        await engine.dispose()


async def test_times_come_back_aware_utc(any_db_url: str) -> None:
    engine = await _migrated(any_db_url)
    sessionmaker = make_sessionmaker(engine)
    try:
        await _seed(sessionmaker)
        async with sessionmaker() as session:
            patient = await session.scalar(select(Patient))
        assert patient is not None and patient.created_at.tzinfo is not None
        assert patient.created_at.utcoffset() == timedelta(0)
    finally:
        await engine.dispose()


async def test_foreign_keys_are_enforced(any_db_url: str) -> None:
    engine = await _migrated(any_db_url)
    sessionmaker = make_sessionmaker(engine)
    try:
        with pytest.raises(IntegrityError):
            async with sessionmaker.begin() as session:
                session.add(Patient(id="P9", site_id="NOPE", first_name="A", last_name="B", phone="+1"))
    finally:
        await engine.dispose()
