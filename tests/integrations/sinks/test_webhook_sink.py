"""The signed webhook sink: retries, exactly-once delivery, dead letters, replay, signatures, leases."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from datetime import timedelta

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr
from sqlalchemy import select

from bot.db.models import DeadLetter, SinkCursor
from bot.settings import Settings
from integrations.dispensary.sinks import (
    SinkNotConfigured,
    WebhookSink,
    configured_sinks,
    push_signals,
    replay_dead_letters,
    sign,
    verify_signature,
)

from .conftest import SECRET, T0, FakeSleep, add_signals


@dataclass
class Receiver:
    """A webhook receiver that fails on purpose, verifies signatures and dedupes by signal id."""

    fail_first: int = 0
    fail_status: int = 500
    always: int | None = None
    delay_first: float = 0.0
    calls: int = 0
    bad_signatures: int = 0
    accepted: list[int] = field(default_factory=list)  # ids in 2xx deliveries, duplicates kept
    stored: dict[int, dict] = field(default_factory=dict)  # what a deduping receiver keeps

    async def handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        body = await request.read()
        ok = verify_signature(
            SECRET, request.headers["X-Midbot-Timestamp"], body, request.headers["X-Midbot-Signature"]
        )
        if not ok:
            self.bad_signatures += 1
            return web.json_response({"error": "bad signature"}, status=401)
        if self.delay_first and self.calls == 1:
            await asyncio.sleep(self.delay_first)
        if self.always is not None:
            return web.json_response({"error": "nope"}, status=self.always)
        if self.calls <= self.fail_first:
            return web.json_response({"error": "down"}, status=self.fail_status)
        for signal in json.loads(body)["signals"]:
            self.accepted.append(signal["id"])
            self.stored.setdefault(signal["id"], signal)
        return web.json_response({"ok": True})


async def _serve(aiohttp_server, receiver: Receiver) -> str:
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    server = await aiohttp_server(app)
    return str(server.make_url("/hook"))


def _settings(settings: Settings, url: str) -> Settings:
    return settings.model_copy(update={"signal_webhook_url": url, "signal_webhook_secret": SecretStr(SECRET)})


async def _cursor(maker) -> int:
    async with maker() as session:
        row = await session.get(SinkCursor, "webhook")
        return row.last_signal_id if row else 0


async def test_flaky_receiver_gets_every_signal_exactly_once(
    aiohttp_server, maker, settings: Settings, fake_sleep: FakeSleep
) -> None:
    receiver = Receiver(fail_first=3)
    cfg = _settings(settings, await _serve(aiohttp_server, receiver))
    ids = await add_signals(maker, 5)
    async with aiohttp.ClientSession() as http:
        report = await push_signals(maker, http, cfg, sink="webhook", sleep=fake_sleep, batch_size=2)
        assert report.sent == 5 and report.dead_lettered == 0 and report.batches == 3
        assert report.attempts == 3 + 3  # first batch: 3 failures + 1 success; then one try each
        assert fake_sleep.delays == [1.0, 2.0, 4.0]  # exponential backoff
        assert sorted(receiver.stored) == ids
        assert receiver.accepted == ids  # nothing sent twice after a success, and in order
        assert receiver.bad_signatures == 0
        assert await _cursor(maker) == ids[-1]

        # Caught up: a second run sends nothing at all.
        calls = receiver.calls
        again = await push_signals(maker, http, cfg, sink="webhook", sleep=fake_sleep)
        assert again.sent == 0 and receiver.calls == calls

        # New signals resume from the cursor.
        more = await add_signals(maker, 2, start=5)
        third = await push_signals(maker, http, cfg, sink="webhook", sleep=fake_sleep)
        assert third.sent == 2 and receiver.accepted == ids + more
    async with maker() as session:
        assert (await session.scalars(select(DeadLetter))).all() == []
        cursor = await session.get(SinkCursor, "webhook")
        assert cursor.lease_owner is None  # the lease is released after a run


async def test_down_receiver_dead_letters_then_replay_delivers(
    aiohttp_server, maker, settings: Settings, fake_sleep: FakeSleep
) -> None:
    receiver = Receiver(always=503)
    cfg = _settings(settings, await _serve(aiohttp_server, receiver))
    ids = await add_signals(maker, 3)
    async with aiohttp.ClientSession() as http:
        report = await push_signals(
            maker, http, cfg, sink="webhook", sleep=fake_sleep, batch_size=2, max_attempts=3
        )
        assert report.sent == 0 and report.dead_lettered == 3 and report.attempts == 6
        assert fake_sleep.delays == [1.0, 2.0, 1.0, 2.0]
        assert await _cursor(maker) == ids[-1]  # the cursor moved on: later signals are not blocked
        async with maker() as session:
            letters = (await session.scalars(select(DeadLetter).order_by(DeadLetter.signal_id))).all()
        assert [d.signal_id for d in letters] == ids
        assert all(d.status == "dead" and d.attempts == 3 and "503" in d.last_error for d in letters)

        # Still down: the replay keeps them dead and counts the attempts.
        failed = await replay_dead_letters(maker, http, cfg, sink="webhook", sleep=fake_sleep, max_attempts=1)
        assert failed.sent == 0 and failed.errors

        receiver.always = None
        replay = await replay_dead_letters(maker, http, cfg, sink="webhook", sleep=fake_sleep)
        assert replay.sent == 3
        assert receiver.accepted == ids
        async with maker() as session:
            letters = (await session.scalars(select(DeadLetter).order_by(DeadLetter.signal_id))).all()
        assert [d.status for d in letters] == ["replayed"] * 3
        assert [d.attempts for d in letters] == [5, 5, 5]  # 3 pushed + 1 failed replay + 1 good replay

        # Nothing left to replay.
        nothing = await replay_dead_letters(maker, http, cfg, sink="webhook", sleep=fake_sleep)
        assert nothing.sent == 0 and nothing.batches == 0


async def test_client_error_is_dead_lettered_without_retries(
    aiohttp_server, maker, settings: Settings, fake_sleep: FakeSleep
) -> None:
    receiver = Receiver(always=422)
    cfg = _settings(settings, await _serve(aiohttp_server, receiver))
    await add_signals(maker, 2)
    async with aiohttp.ClientSession() as http:
        report = await push_signals(maker, http, cfg, sink="webhook", sleep=fake_sleep)
    assert report.attempts == 1 and report.dead_lettered == 2 and fake_sleep.delays == []
    assert "422" in report.errors[0]


async def test_timeout_is_retried(aiohttp_server, maker, settings: Settings, fake_sleep: FakeSleep) -> None:
    receiver = Receiver(delay_first=0.5)
    url = await _serve(aiohttp_server, receiver)
    ids = await add_signals(maker, 1)
    async with aiohttp.ClientSession() as http:
        sink = WebhookSink(http, url, SECRET, timeout=0.1)
        report = await push_signals(maker, http, settings, sink=sink, sleep=fake_sleep)
    assert report.sent == 1 and report.attempts == 2 and fake_sleep.delays == [1.0]
    assert receiver.accepted == ids


async def test_wrong_secret_is_refused_by_the_receiver(
    aiohttp_server, maker, settings: Settings, fake_sleep: FakeSleep
) -> None:
    receiver = Receiver()
    url = await _serve(aiohttp_server, receiver)
    await add_signals(maker, 1)
    async with aiohttp.ClientSession() as http:
        sink = WebhookSink(http, url, "not-the-secret")
        report = await push_signals(maker, http, settings, sink=sink, sleep=fake_sleep)
    assert receiver.bad_signatures == 1 and receiver.accepted == [] and report.dead_lettered == 1


async def test_a_held_lease_skips_the_run_until_it_expires(
    aiohttp_server, maker, settings: Settings, fake_sleep: FakeSleep, clock
) -> None:
    receiver = Receiver()
    cfg = _settings(settings, await _serve(aiohttp_server, receiver))
    await add_signals(maker, 2)
    async with maker.begin() as session:
        session.add(
            SinkCursor(sink="webhook", last_signal_id=0, lease_owner="other:1", lease_expires_at=clock.now())
        )
    clock.set(clock.now() - timedelta(seconds=1))  # the other process's lease is still live
    async with aiohttp.ClientSession() as http:
        skipped = await push_signals(maker, http, cfg, sink="webhook", sleep=fake_sleep, clock=clock)
        assert skipped.skipped and skipped.sent == 0 and receiver.calls == 0
        clock.advance(seconds=2)  # it expired (the other process died)
        done = await push_signals(maker, http, cfg, sink="webhook", sleep=fake_sleep, clock=clock)
    assert done.sent == 2 and not done.skipped


async def test_concurrent_pushes_never_send_twice(
    aiohttp_server, maker, settings: Settings, fake_sleep: FakeSleep
) -> None:
    receiver = Receiver()
    cfg = _settings(settings, await _serve(aiohttp_server, receiver))
    ids = await add_signals(maker, 6)
    async with aiohttp.ClientSession() as http:
        reports = await asyncio.gather(
            *[
                push_signals(maker, http, cfg, sink="webhook", sleep=fake_sleep, batch_size=2)
                for _ in range(3)
            ]
        )
    assert sum(r.sent for r in reports) == 6
    assert sorted(receiver.accepted) == ids and len(receiver.accepted) == len(set(receiver.accepted))


def test_signature_recipe_and_verification() -> None:
    body = b'{"signals":[{"id":1}]}'
    now = 1_800_000_000
    header = sign(SECRET, now, body)
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), f"{now}.".encode() + body, hashlib.sha256).hexdigest()
    assert header == f"sha256={expected}"
    assert verify_signature(SECRET, str(now), body, header, now=now + 10)
    assert verify_signature(SECRET, now, body.decode(), header, now=now)
    assert not verify_signature(SECRET, str(now), body + b" ", header, now=now)  # tampered body
    assert not verify_signature("other", str(now), body, header, now=now)  # wrong secret
    assert not verify_signature(SECRET, str(now), body, header, now=now + 301)  # stale
    assert not verify_signature(SECRET, str(now), body, header, tolerance=5, now=now - 6)  # from the future
    assert not verify_signature(SECRET, "yesterday", body, header, now=now)
    assert not verify_signature(SECRET, str(now), body, "", now=now)
    assert not verify_signature("", str(now), body, sign("", now, body), now=now)  # no secret, no trust
    assert verify_signature(SECRET, str(int(time.time())), body, sign(SECRET, int(time.time()), body))


async def test_configuration_errors(maker, settings: Settings) -> None:
    assert configured_sinks(settings) == []
    async with aiohttp.ClientSession() as http:
        with pytest.raises(SinkNotConfigured, match="MIDBOT_SIGNAL_WEBHOOK_URL"):
            await push_signals(maker, http, settings, sink="webhook")
        no_secret = settings.model_copy(update={"signal_webhook_url": "http://127.0.0.1:9/hook"})
        with pytest.raises(SinkNotConfigured, match="MIDBOT_SIGNAL_WEBHOOK_SECRET"):
            await push_signals(maker, http, no_secret, sink="webhook")
        with pytest.raises(SinkNotConfigured, match="MIDBOT_FHIR_BASE_URL"):
            await push_signals(maker, http, settings, sink="fhir")
        with pytest.raises(ValueError, match="sink"):
            await push_signals(maker, http, settings, sink="carrier-pigeon")
    both = settings.model_copy(update={"signal_webhook_url": "http://x", "fhir_base_url": "http://y"})
    assert configured_sinks(both) == ["webhook", "fhir"]


async def test_unreachable_receiver_is_retried_then_dead_lettered(
    maker, settings: Settings, fake_sleep: FakeSleep, unused_tcp_port: int
) -> None:
    cfg = _settings(settings, f"http://127.0.0.1:{unused_tcp_port}/hook")
    await add_signals(maker, 1)
    async with aiohttp.ClientSession() as http:
        report = await push_signals(maker, http, cfg, sink="webhook", sleep=fake_sleep, max_attempts=2)
    assert report.dead_lettered == 1 and "unreachable" in report.errors[0] and fake_sleep.delays == [1.0]
    assert T0  # the seed time is what the signals carry
