"""Helpers for scheduler tests: write sites, patients, prescriptions and fills; a fake outreach sender."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import Fill, Message, Outreach, Patient, Prescription, PrescriptionEvent, Site
from bot.db.worker import DbWorker
from scheduler.sender import SendOutcome


def utc(*args: int) -> datetime:
    """An aware UTC datetime."""
    return datetime(*args, tzinfo=UTC)


async def add_site(
    session: AsyncSession, site_id: str = "S1", tz: str = "America/Chicago", **kw: Any
) -> Site:
    site = Site(
        id=site_id,
        name=kw.pop("name", "Clinic"),
        phone=kw.pop("phone", "+15005550006"),
        time_zone=tz,
        settings=kw.pop("settings", {}),
        **kw,
    )
    session.add(site)
    await session.flush()
    return site


async def add_patient(
    session: AsyncSession, patient_id: str = "P1", site_id: str = "S1", **kw: Any
) -> Patient:
    patient = Patient(
        id=patient_id,
        site_id=site_id,
        first_name="Ana",
        last_name="Ruiz",
        phone=kw.pop("phone", "+13125550100"),
        **kw,
    )
    session.add(patient)
    await session.flush()
    return patient


async def add_rx(
    session: AsyncSession, rx_id: str = "RX1", patient_id: str = "P1", site_id: str = "S1", **kw: Any
) -> Prescription:
    rx = Prescription(
        id=rx_id,
        patient_id=patient_id,
        site_id=site_id,
        drug=kw.pop("drug", "capecitabine"),
        therapy_class=kw.pop("therapy_class", "oncology"),
        payer_type=kw.pop("payer_type", "commercial"),
        status=kw.pop("status", "active"),
        **kw,
    )
    session.add(rx)
    await session.flush()
    return rx


async def add_fill(
    session: AsyncSession, fill_id: str, rx_id: str, on: date, days: int = 28, copay_cents: int = 1000
) -> Fill:
    fill = Fill(
        id=fill_id,
        prescription_id=rx_id,
        dispensed_on=on,
        days_supply=days,
        quantity=days,
        copay_cents=copay_cents,
    )
    session.add(fill)
    await session.flush()
    return fill


async def add_event(session: AsyncSession, rx_id: str, name: str, at: datetime) -> None:
    session.add(PrescriptionEvent(prescription_id=rx_id, name=name, occurred_at=at))
    await session.flush()


async def outreach(session: AsyncSession, **filters: Any) -> list[Outreach]:
    query = select(Outreach).order_by(Outreach.due_at, Outreach.id)
    for name, value in filters.items():
        query = query.where(getattr(Outreach, name) == value)
    return list((await session.scalars(query)).all())


class FakeSender:
    """A sender that writes the Message row before 'sending' (as the real one does) and counts sends."""

    def __init__(
        self,
        sm: async_sessionmaker[AsyncSession],
        *,
        fail: str | None = None,
        unknown: bool = False,
        delay: float = 0.0,
    ) -> None:
        self.sm = sm
        self.fail = fail
        self.unknown = unknown
        self.delay = delay
        self.sends: list[tuple[str, list[int]]] = []
        self.reconciles: list[tuple[str, list[int]]] = []
        self.provider: set[int] = set()  # message ids the 'provider' has

    async def send(self, patient_id: str, outreach_ids: list[int], now: datetime) -> SendOutcome:
        self.sends.append((patient_id, list(outreach_ids)))
        async with self.sm.begin() as session:
            message = Message(
                direction="out",
                kind="outreach",
                patient_id=patient_id,
                from_number="+15005550006",
                to_number="+13125550100",
                body=f"outreach {outreach_ids}",
                created_at=now,
                status="queued",
            )
            session.add(message)
            await session.flush()
            for row in await session.scalars(select(Outreach).where(Outreach.id.in_(outreach_ids))):
                row.message_id = message.id
            message_id = message.id
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail:
            return SendOutcome("failed", message_id, self.fail)
        if self.unknown:
            return SendOutcome("unknown", message_id, "timeout")
        self.provider.add(message_id)
        return SendOutcome("sent", message_id)

    async def reconcile(self, patient_id: str, outreach_ids: list[int], now: datetime) -> SendOutcome | None:
        self.reconciles.append((patient_id, list(outreach_ids)))
        async with self.sm() as session:
            message_id = await session.scalar(
                select(Outreach.message_id).where(
                    Outreach.id.in_(outreach_ids), Outreach.message_id.is_not(None)
                )
            )
        if message_id is None:
            return None
        if message_id in self.provider:
            return SendOutcome("sent", message_id)
        return None


async def add_outreach(
    session: AsyncSession,
    patient_id: str,
    due_at: datetime,
    *,
    rx_id: str | None = None,
    step: str = "run_out-5",
    hours: int = 24,
    **kw: Any,
) -> Outreach:
    """A planned outreach row, as the planner would write it."""
    from datetime import timedelta

    rx_id = rx_id or f"RX{patient_id[1:]}"
    program_id = kw.pop("program_id", "refill")
    row = Outreach(
        idempotency_key=f"{patient_id}:{rx_id}:{program_id}:{step}:{due_at.date().isoformat()}",
        patient_id=patient_id,
        prescription_id=rx_id,
        program_id=program_id,
        kind=kw.pop("kind", "refill_reminder"),
        step=step,
        due_at=due_at,
        deadline_at=due_at + timedelta(hours=hours),
        state=kw.pop("state", "planned"),
        **kw,
    )
    session.add(row)
    await session.flush()
    return row


async def add_outbound(session: AsyncSession, patient_id: str, at: datetime, kind: str = "outreach") -> None:
    """An outbound text already sent to the patient at ``at``."""
    session.add(
        Message(
            direction="out",
            kind=kind,
            patient_id=patient_id,
            from_number="+15005550006",
            to_number="+13125550100",
            body="earlier",
            created_at=at,
            status="delivered",
        )
    )
    await session.flush()


_WORKERS: dict[int, DbWorker] = {}


def worker_for(sm: async_sessionmaker[AsyncSession]) -> DbWorker:
    """The test's database worker for this sessionmaker's engine (closed after the test by conftest)."""
    engine = sm.kw["bind"]
    if id(engine) not in _WORKERS:
        _WORKERS[id(engine)] = DbWorker(engine)
    return _WORKERS[id(engine)]


async def close_workers() -> None:
    """Stop every worker ``worker_for`` started."""
    workers = list(_WORKERS.values())
    _WORKERS.clear()
    for worker in workers:
        await worker.close()
