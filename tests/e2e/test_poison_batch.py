"""One bad webhook never sinks its batch-mates: 30 concurrent signed webhooks, three of them with values the
store cannot keep as given (a NUL byte, a 25-digit NumSegments, an over-long MessageSid), on SQLite and
PostgreSQL. Every innocent one is answered 200 and stored once; the bad ones are stored cleaned or refused 4xx."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select

from bot.clock import FixedClock
from bot.db.models import Message
from integrations.twilio.signature import sign
from tests.e2e.conftest import AUTH_TOKEN, SITE_PHONE, add_patient, running_stack


async def test_thirty_concurrent_webhooks_with_three_bad_ones(
    tmp_path: Path, stack_clock: FixedClock, any_db_url: str
) -> None:
    async with running_stack(tmp_path, stack_clock, database_url=any_db_url) as stack:
        await add_patient(stack, "P1", "+13125550171")
        url = f"{stack.base_url}/twilio/inbound"
        forms = []
        for n in range(30):
            form = {"MessageSid": f"SM{n:032d}", "From": f"+1312555{1000 + n:04d}", "To": SITE_PHONE,
                    "Body": f"thanks {n}", "NumSegments": "1", "NumMedia": "0"}  # fmt: skip
            forms.append(form)
        forms[5]["Body"] = "bad\x00body"
        forms[11]["NumSegments"] = "9" * 25
        forms[17]["MessageSid"] = "SM" + "x" * 80

        async def post(form: dict[str, str]) -> int:
            headers = {"X-Twilio-Signature": sign(AUTH_TOKEN, url, form)}
            async with stack.http.post(url, data=form, headers=headers) as response:
                return response.status

        statuses = await asyncio.gather(*(post(form) for form in forms))
        await stack.settle()
        assert 500 not in statuses
        assert statuses[17] == 400  # not a provider id: refused, named
        assert all(status == 200 for n, status in enumerate(statuses) if n != 17)
        async with stack.sessionmaker() as session:
            stored = {
                m.provider_sid: m
                for m in await session.scalars(select(Message).where(Message.direction == "in"))
            }
        assert len(stored) == 29 and all(m.processed_at is not None for m in stored.values())
        assert stored[forms[5]["MessageSid"]].body == "badbody" and stored[forms[5]["MessageSid"]].cleaned
        assert stored[forms[11]["MessageSid"]].segments == 1 and stored[forms[11]["MessageSid"]].cleaned
        assert not stored[forms[0]["MessageSid"]].cleaned
        # A replay of every good webhook stores nothing twice.
        await asyncio.gather(*(post(form) for n, form in enumerate(forms) if n != 17))
        async with stack.sessionmaker() as session:
            again = list(await session.scalars(select(Message.id).where(Message.direction == "in")))
        assert len(again) == 29
