"""A provider fault window during dispatch and during patients' replies loses nothing and duplicates nothing:
HTTP 500, 429 with Retry-After, connection refused (the provider's port really closed) and a hang past the
client's timeout, each on SQLite and PostgreSQL, through the real app, the simulator and the real jobs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select, update

from bot.clock import FixedClock
from bot.db.models import Message, Outreach, Site
from bot.jobs import make_dispatcher, run_job
from bot.keys import JOB_CONTEXT
from tests.e2e.conftest import Stack, add_patient, running_stack
from tests.e2e.proxy import Proxy
from tests.e2e.test_provider_faults import _bodies, _clear, _due_rows, _fault

PHONES = [f"+131255503{n:02d}" for n in range(4)]
Window = Callable[[Stack, Proxy], Awaitable[None]]


async def _http_500(stack: Stack, _proxy: Proxy) -> None:
    await _fault(stack, status=500, count=1000)


async def _http_429(stack: Stack, _proxy: Proxy) -> None:
    await _fault(stack, status=429, count=1000, retry_after=1)


async def _refused(_stack: Stack, proxy: Proxy) -> None:
    await proxy.down()


async def _hang(stack: Stack, _proxy: Proxy) -> None:
    # Every send of the window hangs past the client's 1 s timeout (the simulator keeps the message).
    await _fault(stack, hang_seconds=3, count=2 * len(PHONES))


async def _recover(stack: Stack, proxy: Proxy) -> None:
    await proxy.up()
    await _clear(stack)


@pytest.mark.parametrize(
    "window", [_http_500, _http_429, _refused, _hang], ids=["500", "429", "refused", "hang"]
)
async def test_a_fault_window_during_dispatch_and_replies_loses_and_duplicates_nothing(
    tmp_path: Path, stack_clock: FixedClock, any_db_url: str, window: Window
) -> None:
    proxy = Proxy()
    await proxy.up()
    try:
        async with running_stack(
            tmp_path,
            stack_clock,
            database_url=any_db_url,
            twilio_api_base_url=proxy.url,
            twilio_max_retries=0,
            twilio_timeout_seconds=1,
        ) as stack:
            proxy.target_port = int(urlsplit(stack.sim_url).port or 0)
            for n, phone in enumerate(PHONES):
                await add_patient(stack, f"P{n}", phone)
            async with stack.sessionmaker.begin() as session:  # a short code's rate: the test is not paced
                await session.execute(update(Site).values(send_rate=30.0))
            await _due_rows(stack, len(PHONES))
            await window(stack, proxy)
            for phone in PHONES:  # inbound still arrives; the replies meet the fault
                await stack.text(phone, "can I take it with food?")
            dispatcher = make_dispatcher(stack.app[JOB_CONTEXT])
            await dispatcher.run_once()
            await stack.settle()
            async with stack.sessionmaker() as session:
                out = list(await session.scalars(select(Message.status).where(Message.direction == "out")))
            assert "failed" not in out and "expired" not in out, out  # nothing given up on
            await _recover(stack, proxy)
            for _ in range(3):  # the jobs, as the scheduler runs them, past the leases and the backoff
                stack.clock.advance(minutes=20)
                await dispatcher.run_once()
                await run_job(stack.app[JOB_CONTEXT], "delivery-retry")
                await stack.settle()
            async with stack.sessionmaker() as session:
                rows = list(await session.scalars(select(Outreach)))
                out = list(await session.scalars(select(Message.status).where(Message.direction == "out")))
            assert {r.state for r in rows} == {"sent"}, {(r.state, r.reason) for r in rows}
            assert not {"pending", "sending", "failed", "expired"} & set(out), out
            for phone in PHONES:
                bodies = await _bodies(stack, phone)
                assert len(bodies) == 2, (phone, bodies)  # the reminder and the reply, each exactly once
    finally:
        await proxy.down()
