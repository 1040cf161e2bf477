"""Provider outages lose nothing and duplicate nothing (DESIGN 'Delivery under faults'), through the real app
and the simulator's fault modes, on SQLite and PostgreSQL: a failed send stays pending (deferred /
provider_retry for outreach), is retried after a pause and reconciled first, and past its deadline ends
expired / provider_unavailable (with a task for an unsent reply)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from bot.clock import FixedClock
from bot.db.models import Message, Outreach, Task
from bot.jobs import make_dispatcher, run_job
from bot.keys import JOB_CONTEXT
from tests.e2e.conftest import Stack, add_patient, running_stack

PHONES = [f"+131255502{n:02d}" for n in range(10)]


async def _fault(stack: Stack, **fault: Any) -> None:
    async with stack.http.post(f"{stack.sim_url}/simulator/faults", json=fault) as response:
        assert response.status in (200, 201), await response.text()


async def _clear(stack: Stack) -> None:
    async with stack.http.delete(f"{stack.sim_url}/simulator/faults") as response:
        assert response.status in (200, 204)


async def _bodies(stack: Stack, phone: str) -> list[str]:
    return [m["body"] for m in await stack.received(phone)]


async def test_replies_during_an_outage_are_sent_once_after_it(
    tmp_path: Path, stack_clock: FixedClock, any_db_url: str
) -> None:
    async with running_stack(tmp_path, stack_clock, database_url=any_db_url, twilio_max_retries=0) as stack:
        for n, phone in enumerate(PHONES):  # a send rate that does not pace the test (1 a second: 10 s a pass)
            await add_patient(stack, f"P{n}", phone, send_rate=50.0)
        await _fault(stack, status=500, count=4)
        await _fault(stack, status=429, count=3, retry_after=1)
        await _fault(stack, status=503, count=3)
        for phone in PHONES:
            await stack.text(phone, "can I take it with food?")
        async with stack.sessionmaker() as session:
            pending = list(await session.scalars(select(Message).where(Message.status == "pending")))
        assert len(pending) == 10  # nothing was marked failed
        ctx = stack.app[JOB_CONTEXT]
        for minutes in (1, 3, 6):  # the retry job, as the scheduler would run it, after growing pauses
            stack.clock.advance(minutes=minutes)
            await run_job(ctx, "delivery-retry")
        for phone in PHONES:
            assert len(await _bodies(stack, phone)) == 1, phone  # each reply exactly once
        async with stack.sessionmaker() as session:
            left = list(await session.scalars(select(Message.status).where(Message.direction == "out")))
        assert "pending" not in left and "failed" not in left


async def test_a_reply_past_its_deadline_expires_and_a_person_is_told(
    tmp_path: Path, stack_clock: FixedClock
) -> None:
    async with running_stack(tmp_path, stack_clock, twilio_max_retries=0, reply_deadline_minutes=60) as stack:
        await add_patient(stack, "P1", PHONES[0])
        await _fault(stack, status=500, count=1000)
        await stack.text(PHONES[0], "can I take it with food?")
        stack.clock.advance(minutes=61)
        counts = await run_job(stack.app[JOB_CONTEXT], "delivery-retry")
        assert counts["expired"] == 1
        await _clear(stack)
        stack.clock.advance(minutes=5)
        await run_job(stack.app[JOB_CONTEXT], "delivery-retry")
        assert await _bodies(stack, PHONES[0]) == []  # never sent late
        async with stack.sessionmaker() as session:
            kinds = list(await session.scalars(select(Task.kind).where(Task.patient_id == "P1")))
            statuses = list(await session.scalars(select(Message.status).where(Message.direction == "out")))
        assert "reply_not_sent" in kinds and statuses == ["expired"]


async def _due_rows(stack: Stack, count: int) -> None:
    async with stack.sessionmaker.begin() as session:
        for n in range(count):
            await session.execute(
                insert(Outreach).values(
                    idempotency_key=f"P{n}:RX-P{n}:refill:run_out-5:x",
                    patient_id=f"P{n}",
                    prescription_id=f"RX-P{n}",
                    program_id="refill",
                    kind="refill_reminder",
                    step="run_out-5",
                    due_at=stack.clock.now(),
                    deadline_at=stack.clock.now() + timedelta(hours=24),
                    state="planned",
                )  # fmt: skip
            )


async def test_outreach_during_an_outage_waits_and_is_sent_once(
    tmp_path: Path, stack_clock: FixedClock, any_db_url: str
) -> None:
    async with running_stack(tmp_path, stack_clock, database_url=any_db_url, twilio_max_retries=0) as stack:
        for n, phone in enumerate(PHONES):  # a send rate that does not pace the test (1 a second: 10 s a pass)
            await add_patient(stack, f"P{n}", phone, send_rate=50.0)
        await _due_rows(stack, len(PHONES))
        await _fault(stack, status=500, count=1000)
        dispatcher = make_dispatcher(stack.app[JOB_CONTEXT])
        await dispatcher.run_once()
        async with stack.sessionmaker() as session:
            rows = list(await session.scalars(select(Outreach)))
        assert {(r.state, r.reason) for r in rows} == {("deferred", "provider_retry")}
        await _clear(stack)
        for _ in range(3):
            stack.clock.advance(minutes=20)
            await dispatcher.run_once()
        async with stack.sessionmaker() as session:
            rows = list(await session.scalars(select(Outreach)))
        assert {r.state for r in rows} == {"sent"}, {(r.state, r.reason, str(r.due_at)) for r in rows}
        for phone in PHONES:
            assert len(await _bodies(stack, phone)) == 1, phone


async def test_outreach_past_its_deadline_ends_provider_unavailable(
    tmp_path: Path, stack_clock: FixedClock
) -> None:
    async with running_stack(tmp_path, stack_clock, twilio_max_retries=0) as stack:
        await add_patient(stack, "P0", PHONES[0])
        await _due_rows(stack, 1)
        await _fault(stack, status=503, count=1000)
        dispatcher = make_dispatcher(stack.app[JOB_CONTEXT])
        await dispatcher.run_once()
        stack.clock.advance(hours=25)
        await dispatcher.run_once()
        await _clear(stack)
        stack.clock.advance(minutes=30)
        await dispatcher.run_once()
        await run_job(stack.app[JOB_CONTEXT], "delivery-retry")
        async with stack.sessionmaker() as session:
            row = (await session.scalars(select(Outreach))).one()
            texts = list(await session.scalars(select(Message.status).where(Message.direction == "out")))
        assert (row.state, row.reason) == ("expired", "provider_unavailable")
        assert texts == ["expired"] and await _bodies(stack, PHONES[0]) == []


async def test_an_open_circuit_spares_the_provider_during_an_outage(
    tmp_path: Path, stack_clock: FixedClock
) -> None:
    async with running_stack(
        tmp_path, stack_clock, twilio_max_retries=0, twilio_breaker_threshold=3
    ) as stack:
        for n, phone in enumerate(PHONES):
            await add_patient(stack, f"P{n}", phone)
        await _fault(stack, status=503, count=1000)
        for phone in PHONES:
            await stack.text(phone, "can I take it with food?")
        for _ in range(3):  # the retry job inside the cool-down: no call at all
            await run_job(stack.app[JOB_CONTEXT], "delivery-retry")
        async with stack.http.get(f"{stack.sim_url}/simulator/faults") as response:
            calls = 1000 - len((await response.json())["faults"])
        assert calls == 3  # ten replies, three calls: the circuit opened after the third failure
        await _clear(stack)
        for minutes in (1, 3):
            stack.clock.advance(minutes=minutes)
            await run_job(stack.app[JOB_CONTEXT], "delivery-retry")
        for phone in PHONES:
            assert len(await _bodies(stack, phone)) == 1, phone
