"""Inbound order under load: an emergency is handled ahead of a backlog of routine texts, and two replicas
on one PostgreSQL keep each number's texts in the order they were stored."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import Connection, select, text

from bot.clock import FixedClock
from bot.db.models import Message, Task
from bot.keys import INBOX
from bot.sms import inbox as inbox_module
from bot.sms.handling import BatchResult
from bot.sms.inbox import Inbox
from integrations.twilio.signature import sign
from tests.e2e.conftest import AUTH_TOKEN, SITE_PHONE, Stack, add_patient, running_stack

ROUTINE = 2000
PATIENTS = 50


def _phone(n: int) -> str:
    return f"+1312555{2000 + n:04d}"


async def _post(http: aiohttp.ClientSession, base_url: str, public_url: str, form: dict[str, str]) -> int:
    headers = {"X-Twilio-Signature": sign(AUTH_TOKEN, f"{public_url}/twilio/inbound", form)}
    async with http.post(f"{base_url}/twilio/inbound", data=form, headers=headers) as response:
        await response.read()
        return response.status


def _form(sid: int, phone: str, body: str) -> dict[str, str]:
    return {"MessageSid": f"SM{sid:032d}", "From": phone, "To": SITE_PHONE, "Body": body, "NumSegments": "1",
            "NumMedia": "0"}  # fmt: skip


async def test_an_emergency_behind_two_thousand_routine_texts_is_handled_first(
    tmp_path: Path, stack_clock: FixedClock, monkeypatch: Any
) -> None:
    gate = asyncio.Event()
    order: list[int] = []
    real_process = Inbox._process

    async def gated(self: Inbox, message_ids: list[int]) -> set[int]:
        await gate.wait()  # the inbox is busy elsewhere: a backlog forms behind it
        order.extend(message_ids)
        return await real_process(self, message_ids)

    monkeypatch.setattr(Inbox, "_process", gated)
    async with running_stack(tmp_path, stack_clock) as stack:
        for n in range(PATIENTS + 1):
            await add_patient(stack, f"P{n}", _phone(n))
        limit = asyncio.Semaphore(32)

        async def post(form: dict[str, str]) -> int:
            async with limit:
                return await _post(stack.http, stack.base_url, stack.base_url, form)

        routine = [_form(k, _phone(k % PATIENTS), f"thanks, got it {k}") for k in range(ROUTINE)]
        assert set(await asyncio.gather(*(post(form) for form in routine))) == {200}
        emergency = _form(ROUTINE, _phone(PATIENTS), "my husband cant breathe and his lips are blue")
        assert await post(emergency) == 200
        gate.set()
        await _settled(stack)
        async with stack.sessionmaker() as session:
            emergency_id = await session.scalar(
                select(Message.id).where(Message.provider_sid == emergency["MessageSid"])
            )
            urgent = await session.scalar(
                select(Task.id).where(Task.queue == "urgent_clinical", Task.patient_id == f"P{PATIENTS}")
            )
            unprocessed = await session.scalar(
                select(Message.id).where(Message.direction == "in", Message.processed_at.is_(None)).limit(1)
            )
        assert urgent is not None and unprocessed is None
        assert len(order) == ROUTINE + 1
        # Only the batches the two workers already held (and the emergency's own) went before it.
        assert order.index(int(emergency_id or 0)) < 3 * 16


async def _settled(stack: Stack) -> None:
    await asyncio.wait_for(stack.app[INBOX].idle(), timeout=120)
    await stack.settle()


async def test_two_replicas_on_postgres_keep_each_numbers_order(
    tmp_path: Path, stack_clock: FixedClock, postgres_url: str, monkeypatch: Any
) -> None:
    real_batch = inbox_module.process_batch

    def recorded(conn: Connection, message_ids: Any, now: Any, **kw: Any) -> BatchResult:
        result = real_batch(conn, message_ids, now, **kw)
        if result.processed:  # in the same transaction: the sequence numbers follow the handling order
            conn.execute(
                text("INSERT INTO handled (message_id) VALUES (:m)"), [{"m": m} for m in result.processed]
            )
        return result

    monkeypatch.setattr(inbox_module, "process_batch", recorded)
    public = "http://midbot.test"
    async with (
        running_stack(tmp_path / "a", stack_clock, database_url=postgres_url, public_base_url=public) as one,
        running_stack(tmp_path / "b", stack_clock, database_url=postgres_url, public_base_url=public) as two,
    ):
        async with one.sessionmaker.begin() as session:
            await session.execute(text("CREATE TABLE handled (seq serial PRIMARY KEY, message_id int)"))
        for n in range(PATIENTS):
            await add_patient(one, f"P{n}", _phone(n))
        replicas = (one, two)
        sid = 0
        for turn in range(10):  # each round is stored before the next: the order every number's texts have
            forms = []
            for n in range(PATIENTS):
                forms.append((replicas[(turn + n) % 2], _form(sid, _phone(n), f"ok thanks {turn}")))
                sid += 1
            statuses = await asyncio.gather(*(_post(r.http, r.base_url, public, form) for r, form in forms))
            assert set(statuses) == {200}
        for replica in replicas:
            await _settled(replica)
        async with one.sessionmaker() as session:
            handled = [
                (row[0], row[1], row[2])
                for row in await session.execute(
                    text(
                        "SELECT h.seq, m.from_number, m.id FROM handled h JOIN message m ON m.id = h.message_id"
                        " ORDER BY h.seq"
                    )
                )
            ]
            unprocessed = await session.scalar(
                select(Message.id).where(Message.direction == "in", Message.processed_at.is_(None)).limit(1)
            )
    assert unprocessed is None
    assert len(handled) == 10 * PATIENTS and len({m for _, _, m in handled}) == 10 * PATIENTS  # each once
    by_number: dict[str, list[int]] = defaultdict(list)
    for _seq, number, message_id in handled:
        by_number[number].append(message_id)
    assert all(ids == sorted(ids) for ids in by_number.values()), {
        n: ids for n, ids in by_number.items() if ids != sorted(ids)
    }
