"""No PHI in the logs when PostgreSQL refuses writes (issue 13): inbound texts, their replies and an API import
fail on constraints added for the test, and every log line written meanwhile holds ids only: no phone number,
name, drug or message body (the session-wide scan in tests/conftest.py covers the rest of the suite)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

from bot.clock import FixedClock
from bot.db.session import make_engine
from bot.staff.auth import create_api_token
from tests import phi
from tests.e2e.conftest import add_patient, running_stack

BODY = "my hands are peeling since the capecitabine, canary-7731"
PHONE = "+13125550181"


async def _refuse_writes(url: str) -> None:
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            # Every inbound text with the canary, every reply, and one patient's import are refused.
            await conn.execute(
                text("ALTER TABLE message ADD CONSTRAINT t_no_canary CHECK (body NOT LIKE '%canary%')")
            )
            await conn.execute(
                text("ALTER TABLE message ADD CONSTRAINT t_no_replies CHECK (direction <> 'out')")
            )
            await conn.execute(
                text("ALTER TABLE patient ADD CONSTRAINT t_no_margarita CHECK (first_name <> 'Margarita')")
            )
    finally:
        await engine.dispose()


async def test_postgresql_write_errors_log_ids_only(
    postgres_url: str, tmp_path: Path, stack_clock: FixedClock
) -> None:
    async with running_stack(tmp_path, stack_clock, database_url=postgres_url) as stack:
        await add_patient(stack, "P1", PHONE)
        async with stack.sessionmaker.begin() as session:
            _row, token = await create_api_token(session, site_id="S1", name="t", now=stack.clock.now())
        await _refuse_writes(postgres_url)
        start = phi.mark()
        statuses = []
        for n in range(3):  # a canary text (refused), and plain texts whose replies are refused
            body = BODY if n == 0 else f"I missed two doses of capecitabine this week, number {n}"
            async with stack.http.post(f"{stack.sim_url}/simulator/inbound",
                                       json={"from": PHONE, "to": "+13125550100", "body": body}) as response:  # fmt: skip
                statuses.append(response.status)
        await asyncio.sleep(0.5)
        await stack.settle()
        patient = {"patient_id": "P9", "site_id": "S1", "first_name": "Margarita", "last_name": "Ruiz",
                   "phone": "+13125550182", "sms_consent": True}  # fmt: skip
        async with stack.http.post(f"{stack.base_url}/api/v1/patients", json=patient,
                                   headers={"Authorization": f"Bearer {token}"}) as response:  # fmt: skip
            import_status = response.status
            answer = await response.text()
        lines = phi.since(start)
    assert import_status >= 400 and "Margarita" not in answer and "+1312555" not in answer
    failures = [line for _, line in lines if "Error" in line or "error" in line or "failed" in line]
    assert failures, "the constraints caused no logged write error; the test proves nothing"
    bodies = [BODY, *(f"I missed two doses of capecitabine this week, number {n}" for n in (1, 2))]
    assert phi.find_phi(lines, bodies) == []
    assert not any("canary" in line for _, line in lines)
