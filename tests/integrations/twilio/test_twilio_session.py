"""TwilioClient sends over the session it is given, never opens or closes one, and keeps its backoff formula."""

from __future__ import annotations

import random
from types import SimpleNamespace

import aiohttp
import pytest
import twilio.http.async_http_client as twilio_async
from aiohttp.test_utils import TestServer

from integrations.twilio import TwilioClient
from tests.integrations.twilio.test_twilio_client import inject
from tests.integrations.twilio.twilio_helpers import ACCOUNT, PATIENT, SERVICE_NUMBER, TOKEN, Sleeps, base_url


def counting_session() -> tuple[aiohttp.ClientSession, list[str]]:
    seen: list[str] = []

    async def on_start(
        _s: aiohttp.ClientSession, _c: SimpleNamespace, params: aiohttp.TraceRequestStartParams
    ) -> None:
        seen.append(params.method)

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    return aiohttp.ClientSession(trace_configs=[trace]), seen


async def test_requests_go_over_the_given_session_which_stays_open(
    simulator: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_own_session(*_a: object, **_k: object) -> None:
        raise AssertionError("the twilio library opened a ClientSession of its own")

    monkeypatch.setattr(twilio_async, "ClientSession", no_own_session)
    session, seen = counting_session()
    async with session:
        async with TwilioClient(
            session=session, account_sid=ACCOUNT, auth_token=TOKEN, base_url=base_url(simulator)
        ) as client:
            sent = await client.send(to=PATIENT, body="hi", from_=SERVICE_NUMBER)
            await client.fetch(sent.sid)
        assert seen == ["POST", "GET"]
        assert not session.closed  # the client's exit left it for its owner
        await client.close()
        async with session.get(simulator.make_url("/simulator/messages")) as resp:
            assert resp.status == 200


async def test_backoff_is_full_jitter_from_the_injected_rng(simulator: TestServer, sleeps: Sleeps) -> None:
    await inject(simulator, {"status": 503, "count": 3})
    async with aiohttp.ClientSession() as session:
        client = TwilioClient(
            session=session,
            account_sid=ACCOUNT,
            auth_token=TOKEN,
            base_url=base_url(simulator),
            sleep=sleeps,
            rng=random.Random(42),
        )
        await client.send(to=PATIENT, body="hi", from_=SERVICE_NUMBER)
    expected = random.Random(42)
    assert sleeps.delays == [expected.uniform(0.0, 0.5 * 2**n) for n in range(3)]
