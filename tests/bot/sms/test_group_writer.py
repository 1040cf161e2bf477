"""Batch for speed, isolate for safety: a batch that fails is written again item by item."""

from __future__ import annotations

import asyncio

import pytest

from bot.sms.batching import GroupWriter


async def test_one_bad_item_fails_only_its_own_caller() -> None:
    calls: list[list[int]] = []

    async def write(items: list[int]) -> list[int]:
        calls.append(items)
        if 13 in items:
            raise ValueError("cannot store 13")
        return [item * 2 for item in items]

    writer: GroupWriter[int, int] = GroupWriter(write, name="test", max_batch=50)
    results = await asyncio.gather(*(writer.submit(n) for n in range(20)), return_exceptions=True)
    await writer.close()
    assert [r for n, r in enumerate(results) if n != 13] == [n * 2 for n in range(20) if n != 13]
    assert isinstance(results[13], ValueError)
    assert any(len(batch) > 1 for batch in calls)  # it did batch
    assert [13] in calls  # and the bad one was tried alone


async def test_a_single_failure_is_raised_to_its_caller() -> None:
    async def write(items: list[int]) -> list[int]:
        raise RuntimeError("store down")

    writer: GroupWriter[int, int] = GroupWriter(write, name="test")
    with pytest.raises(RuntimeError):
        await writer.submit(1)
    await writer.close()
