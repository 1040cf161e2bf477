"""Recording signals: dedupe on both databases, the since-watermark and the export shape."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.migrate import upgrade
from bot.db.models import Patient, Prescription, Signal, Site
from bot.db.session import make_engine, make_sessionmaker
from bot.db.signals import signal_to_dict, signals_since
from tests.store import record_signal

AT = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


async def _seed(session: AsyncSession) -> None:
    session.add(Site(id="s1", name="Site 1", phone="+15550000001", time_zone="America/Chicago"))
    session.add(Site(id="s2", name="Site 2", phone="+15550000002", time_zone="America/Chicago"))
    await session.flush()
    session.add(Patient(id="p1", site_id="s1", first_name="A", last_name="B", phone="+15551110001"))
    session.add(Patient(id="p2", site_id="s2", first_name="C", last_name="D", phone="+15551110002"))
    await session.flush()
    session.add(Prescription(id="rx1", patient_id="p1", site_id="s1", drug="capecitabine"))
    await session.flush()


async def test_dedupe_key_records_once_on_any_database(any_db_url: str) -> None:
    engine = make_engine(any_db_url)
    await upgrade(engine)
    maker = make_sessionmaker(engine)
    try:
        async with maker.begin() as session:
            await _seed(session)
            first = await record_signal(
                session,
                patient_id="p1",
                site_id="s1",
                kind="refill_confirmed",
                source="patient",
                occurred_at=AT,
                prescription_id="rx1",
                dedupe_key="refill:rx1:2026-11-24",
                value={"choice": 1},
            )
            again = await record_signal(
                session,
                patient_id="p1",
                site_id="s1",
                kind="refill_confirmed",
                source="patient",
                occurred_at=AT + timedelta(minutes=5),
                dedupe_key="refill:rx1:2026-11-24",
            )
            # No key: every call stores a row.
            a = await record_signal(
                session, patient_id="p1", site_id="s1", kind="missed_dose", source="patient", occurred_at=AT
            )
            b = await record_signal(
                session, patient_id="p1", site_id="s1", kind="missed_dose", source="patient", occurred_at=AT
            )
        assert first is not None and first.id > 0 and first.value == {"choice": 1}
        assert again is None
        assert a is not None and b is not None and a.id != b.id
        # A separate transaction, as a concurrent job would do, still dedupes and leaves the session usable.
        async with maker.begin() as session:
            third = await record_signal(
                session,
                patient_id="p1",
                site_id="s1",
                kind="refill_confirmed",
                source="patient",
                occurred_at=AT,
                dedupe_key="refill:rx1:2026-11-24",
            )
            assert third is None
            count = await session.scalar(select(func.count()).select_from(Signal))
        assert count == 3
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"kind": "bogus"}, "kind"),
        ({"source": "robot"}, "source"),
        ({"occurred_at": datetime(2026, 1, 1)}, "occurred_at"),
    ],
)
async def test_bad_values_are_refused_with_the_field_named(engine, kwargs: dict, field: str) -> None:
    maker = make_sessionmaker(engine)
    async with maker.begin() as session:
        await _seed(session)
        args = {"patient_id": "p1", "site_id": "s1", "kind": "missed_dose", "source": "patient"}
        args["occurred_at"] = AT
        args.update(kwargs)
        with pytest.raises(ValueError, match=f"^{field}"):
            await record_signal(session, **args)


async def test_signals_since_pages_filters_and_exports(engine) -> None:
    maker = make_sessionmaker(engine)
    async with maker.begin() as session:
        await _seed(session)
        for i in range(5):
            await record_signal(
                session,
                patient_id="p1" if i % 2 == 0 else "p2",
                site_id="s1" if i % 2 == 0 else "s2",
                kind="side_effect",
                source="patient",
                occurred_at=AT + timedelta(hours=i),
                created_at=AT + timedelta(hours=i),
                value={"symptom": "nausea", "grade": i % 5},
                source_message_id=None,
            )
    async with maker() as session:
        everything = await signals_since(session)
        ids = [s.id for s in everything]
        assert ids == sorted(ids) and len(ids) == 5
        page = await signals_since(session, since_id=ids[1], limit=2)
        assert [s.id for s in page] == ids[2:4]
        site2 = await signals_since(session, site_id="s2")
        assert {s.site_id for s in site2} == {"s2"} and len(site2) == 2
        late = await signals_since(session, since_time=AT + timedelta(hours=3))
        assert [s.id for s in late] == ids[3:]
        with pytest.raises(ValueError, match="since"):
            await signals_since(session, since_id=-1)
        with pytest.raises(ValueError, match="limit"):
            await signals_since(session, limit=0)
    shape = signal_to_dict(everything[0])
    assert shape == {
        "id": ids[0],
        "patient_id": "p1",
        "prescription_id": None,
        "site_id": "s1",
        "kind": "side_effect",
        "value": {"symptom": "nausea", "grade": 0},
        "source": "patient",
        "source_message_id": None,
        "occurred_at": "2026-11-24T15:00:00Z",
        "created_at": "2026-11-24T15:00:00Z",
    }
