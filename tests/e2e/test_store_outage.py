"""While the store cannot write (a database restart), webhooks are answered 503 with Retry-After, never
200: Twilio sends them again, and once the store is back they are stored, once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from bot.clock import FixedClock
from bot.db.models import Message
from bot.db.worker import DbWorker
from integrations.twilio.signature import sign
from tests.e2e.conftest import AUTH_TOKEN, SITE_PHONE, Stack, add_patient, running_stack


async def _post(stack: Stack, path: str, form: dict[str, str]) -> tuple[int, dict[str, str]]:
    url = f"{stack.base_url}{path}"
    headers = {"X-Twilio-Signature": sign(AUTH_TOKEN, url, form)}
    async with stack.http.post(url, data=form, headers=headers) as response:
        await response.read()
        return response.status, dict(response.headers)


async def test_webhooks_during_a_store_outage_are_refused_for_a_retry_then_stored_once(
    tmp_path: Path, stack_clock: FixedClock, any_db_url: str, monkeypatch: Any
) -> None:
    async with running_stack(tmp_path, stack_clock, database_url=any_db_url) as stack:
        await add_patient(stack, "P1", "+13125550401")
        await stack.text("+13125550401", "can I take it with food?")
        async with stack.sessionmaker() as session:
            reply = (await session.scalars(select(Message).where(Message.direction == "out"))).one()
        status_form = {"MessageSid": str(reply.provider_sid), "MessageStatus": "delivered"}
        inbound_form = {"MessageSid": "SM" + "7" * 32, "From": "+13125550401", "To": SITE_PHONE,
                        "Body": "thanks", "NumSegments": "1", "NumMedia": "0"}  # fmt: skip
        real_run_at = DbWorker.run_at

        async def down(self: DbWorker, priority: int, fn: Any) -> Any:
            raise OperationalError("INSERT", {}, ConnectionRefusedError("the database is restarting"))

        monkeypatch.setattr(DbWorker, "run_at", down)
        for path, form in (("/twilio/status", status_form), ("/twilio/inbound", inbound_form)):
            status, headers = await _post(stack, path, form)
            assert (status, headers.get("Retry-After")) == (503, "5"), path
        monkeypatch.setattr(DbWorker, "run_at", real_run_at)
        assert (await _post(stack, "/twilio/status", status_form))[0] == 204  # Twilio's retry
        assert (await _post(stack, "/twilio/inbound", inbound_form))[0] == 200
        await stack.settle()
        async with stack.sessionmaker() as session:
            reply = await session.get(Message, reply.id)  # type: ignore[assignment]
            inbound = list(
                await session.scalars(select(Message).where(Message.provider_sid == "SM" + "7" * 32))
            )
        assert reply.status == "delivered" and len(inbound) == 1 and inbound[0].processed_at is not None
