"""The hot path's plumbing: the database thread, group commit, and background work giving way to answers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db.session import make_engine
from bot.db.worker import DbWorker, Priority
from bot.sms.batching import GroupWriter, Pressure


@pytest.fixture
async def plain_engine(any_db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(any_db_url)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE item (id INTEGER PRIMARY KEY, name VARCHAR(20))"))
    yield engine
    await engine.dispose()


def _insert(conn: Connection, item_id: int, fail: bool = False) -> int:
    conn.execute(text("INSERT INTO item (id, name) VALUES (:i, 'x')"), {"i": item_id})
    if fail:
        raise RuntimeError("boom")
    return item_id


def _count(conn: Connection) -> int:
    return int(conn.execute(text("SELECT count(*) FROM item")).scalar_one())


async def test_a_job_commits_on_return_and_rolls_back_on_error(plain_engine: AsyncEngine) -> None:
    worker = DbWorker(plain_engine)
    try:
        assert worker.threaded == (plain_engine.dialect.name == "sqlite")
        assert await worker.run(_insert, 1) == 1
        with pytest.raises(RuntimeError, match="boom"):
            await worker.run(_insert, 2, fail=True)
        assert await worker.run(_count) == 1
    finally:
        await worker.close()
    async with plain_engine.connect() as conn:  # committed for other connections too
        assert (await conn.execute(text("SELECT id FROM item"))).scalars().all() == [1]


async def test_queued_jobs_run_by_priority(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    worker = DbWorker(engine)
    gate = threading.Event()
    order: list[str] = []
    try:
        blocker = asyncio.ensure_future(worker.run_at(Priority.INBOX, lambda _conn: gate.wait(5)))
        await asyncio.sleep(0.05)  # the thread is now held inside the first job
        jobs = [
            asyncio.ensure_future(worker.run_at(priority, lambda _conn, n=name: order.append(n)))
            for priority, name in (
                (Priority.INBOX, "inbox"),
                (Priority.DELIVERY, "delivery"),
                (Priority.ANSWER, "answer"),
                (Priority.INBOX, "inbox-2"),
            )
        ]
        await asyncio.sleep(0.05)
        gate.set()
        await asyncio.gather(blocker, *jobs)
        assert order == ["answer", "delivery", "inbox", "inbox-2"]
    finally:
        gate.set()
        await worker.close()
        await engine.dispose()


async def test_memory_sqlite_runs_through_the_async_engine(tmp_path: Path) -> None:
    engine = make_engine("sqlite+aiosqlite:///:memory:")
    worker = DbWorker(engine)
    assert not worker.threaded  # another connection would not see the same database
    assert await worker.run(lambda conn: conn.execute(text("SELECT 41 + 1")).scalar_one()) == 42
    await worker.close()
    await engine.dispose()


async def test_group_writer_batches_concurrent_items_and_answers_each() -> None:
    batches: list[list[int]] = []

    async def write(items: list[int]) -> list[int]:
        batches.append(items)
        await asyncio.sleep(0.01)
        return [item * 10 for item in items]

    writer: GroupWriter[int, int] = GroupWriter(write, name="test", max_batch=4)
    results = await asyncio.gather(*(writer.submit(i) for i in range(10)))
    assert results == [i * 10 for i in range(10)]
    assert len(batches) < 10 and max(len(b) for b in batches) <= 4
    assert [i for b in batches for i in b] == list(range(10))  # in arrival order
    await writer.close()


async def test_group_writer_fails_only_the_bad_item_and_carries_on() -> None:
    async def write(items: list[str]) -> list[str]:
        if "bad" in items:
            raise ValueError("bad item")
        return items

    writer: GroupWriter[str, str] = GroupWriter(write, name="test", linger=0.01)
    results = await asyncio.gather(writer.submit("good"), writer.submit("bad"), return_exceptions=True)
    assert results[0] == "good" and isinstance(results[1], ValueError)
    assert await writer.submit("later") == "later"
    await writer.close()


async def test_background_work_gives_way_only_while_answers_are_pressed() -> None:
    pressure = Pressure(crowd=2, slow=10.0, recent=0.05, busy_share=0.5, burst_share=0.2)
    loop = asyncio.get_running_loop()

    async def paused(took: float) -> float:
        began = loop.time()
        await pressure.give_way(took)
        return loop.time() - began

    assert not pressure.active and await paused(0.05) < 0.02  # no webhook: no pause
    with pressure.answering(), pressure.answering():
        assert pressure.pressed
        assert 0.15 <= await paused(0.05) < 0.5  # a burst: background keeps a fifth (waits 4x its work)
    with pressure.answering():  # one answer, just now: a steady stream, not a burst
        pass
    assert pressure.active and not pressure.pressed
    assert 0.04 <= await paused(0.05) < 0.3  # background keeps half
    await asyncio.sleep(0.06)
    assert not pressure.active and await paused(0.05) < 0.02


async def test_a_slow_answer_presses_for_a_while() -> None:
    pressure = Pressure(slow=0.01, hold=0.2)
    with pressure.answering():
        await asyncio.sleep(0.02)
    assert pressure.pressed
    await asyncio.sleep(0.25)
    assert not pressure.pressed
