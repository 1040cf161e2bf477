"""TwilioClient (the real twilio library) against the simulator: sends, retries, errors, reconciliation."""

from __future__ import annotations

import asyncio
import socket
import time
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from integrations.twilio import (
    ApiError,
    PermanentSendError,
    TransientSendError,
    TwilioClient,
    UnknownOutcomeError,
    validate_signature,
)
from tests.integrations.twilio.twilio_helpers import (
    ACCOUNT,
    PATIENT,
    SERVICE_NUMBER,
    TOKEN,
    ClientFactory,
    Receiver,
    SimulatorFactory,
    Sleeps,
    base_url,
)


async def sim_messages(server: TestServer, **query: str) -> list[dict[str, object]]:
    async with aiohttp.ClientSession() as http:
        async with http.get(server.make_url("/simulator/messages"), params=query) as resp:
            return (await resp.json())["messages"]


async def inject(server: TestServer, fault: dict[str, object]) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(server.make_url("/simulator/faults"), json=fault) as resp:
            assert resp.status == 201, await resp.text()


async def wait_status(client: TwilioClient, sid: str, status: str) -> None:
    async with asyncio.timeout(3):
        while (await client.fetch(sid)).status != status:
            await asyncio.sleep(0.01)


async def test_send_fetch_and_list(twilio: TwilioClient, simulator: TestServer, sleeps: Sleeps) -> None:
    since = datetime.now(UTC)
    sent = await twilio.send(to=PATIENT, body="Time to refill {drug}? Reply 1", from_=SERVICE_NUMBER)
    assert sent.sid.startswith("SM") and len(sent.sid) == 34
    assert (sent.status, sent.to, sent.from_) == ("queued", PATIENT, SERVICE_NUMBER)
    assert sent.body == "Time to refill {drug}? Reply 1"
    assert sent.num_segments == 1 and sent.error_code is None
    assert sent.date_created is not None and abs((sent.date_created - since).total_seconds()) < 5

    await wait_status(twilio, sent.sid, "delivered")
    fetched = await twilio.fetch(sent.sid)
    assert (fetched.sid, fetched.status, fetched.body) == (sent.sid, "delivered", sent.body)

    listed = await twilio.list_messages(to=PATIENT)
    assert [m.sid for m in listed] == [sent.sid]
    assert await twilio.list_messages(to="+15559999999") == []
    assert sleeps.delays == []


async def test_long_unicode_body_is_billed_in_ucs2_segments(twilio: TwilioClient) -> None:
    body = "¿Cómo se siente hoy? " * 5  # 105 characters with ó: UCS-2, 67 per segment
    sent = await twilio.send(to=PATIENT, body=body, from_=SERVICE_NUMBER)
    assert sent.num_segments == 2


async def test_list_follows_twilio_paging(twilio: TwilioClient) -> None:
    sids = [(await twilio.send(to=PATIENT, body=f"note {i}", from_=SERVICE_NUMBER)).sid for i in range(5)]
    listed = await twilio.list_messages(to=PATIENT, page_size=2)
    assert [m.sid for m in listed] == list(reversed(sids))  # newest first, across 3 pages
    assert len(await twilio.list_messages(to=PATIENT, page_size=2, limit=3)) == 3


async def test_messaging_service_send_is_accepted(
    simulator_factory: SimulatorFactory, client_factory: ClientFactory
) -> None:
    service = "MG" + "a" * 32
    server = await simulator_factory(messaging_services={service: "+15005550100"})
    client = client_factory(base_url(server))
    sent = await client.send(to=PATIENT, body="hello", messaging_service_sid=service)
    assert (sent.status, sent.from_) == ("accepted", "+15005550100")


async def test_429_with_retry_after_then_created_records_exactly_one(
    twilio: TwilioClient, simulator: TestServer, sleeps: Sleeps
) -> None:
    await inject(simulator, {"status": 429, "count": 1, "retry_after": 7})
    sent = await twilio.send(to=PATIENT, body="refill reminder", from_=SERVICE_NUMBER)
    assert sleeps.delays == [7.0]  # waited what the server asked, once
    recorded = await sim_messages(simulator, to=PATIENT)
    assert [m["sid"] for m in recorded] == [sent.sid]


async def test_5xx_backoff_is_jittered_and_bounded(
    twilio: TwilioClient, simulator: TestServer, sleeps: Sleeps
) -> None:
    await inject(simulator, {"status": 503, "count": 2})
    sent = await twilio.send(to=PATIENT, body="hi", from_=SERVICE_NUMBER)
    assert sent.status == "queued"
    assert len(sleeps.delays) == 2
    for attempt, delay in enumerate(sleeps.delays):
        assert 0 <= delay <= 0.5 * 2**attempt


async def test_500_more_times_than_retries_is_transient(
    simulator: TestServer, client_factory: ClientFactory, sleeps: Sleeps
) -> None:
    client = client_factory(base_url(simulator), max_retries=2)
    await inject(simulator, {"status": 500, "count": 3})
    with pytest.raises(TransientSendError) as caught:
        await client.send(to=PATIENT, body="hi", from_=SERVICE_NUMBER)
    assert (caught.value.status, caught.value.code, caught.value.attempts) == (500, 20500, 3)
    assert len(sleeps.delays) == 2
    assert await sim_messages(simulator) == []
    # The fault queue is used up: the next send goes through.
    assert (await client.send(to=PATIENT, body="hi", from_=SERVICE_NUMBER)).status == "queued"


async def test_long_retry_after_is_handed_back_not_slept(
    twilio: TwilioClient, simulator: TestServer, sleeps: Sleeps
) -> None:
    await inject(simulator, {"status": 429, "count": 1, "retry_after": 600})
    with pytest.raises(TransientSendError) as caught:
        await twilio.send(to=PATIENT, body="hi", from_=SERVICE_NUMBER)
    assert caught.value.retry_after == 600 and sleeps.delays == []


@pytest.mark.parametrize(
    ("to", "code", "opted_out", "bad_number"),
    [
        ("+15005550001", 21211, False, True),
        ("+15005550009", 21614, False, True),
        ("555-1234", 21211, False, True),
        ("+15557770000", 21610, True, False),  # blocklisted
    ],
)
async def test_permanent_errors_are_not_retried(
    simulator_factory: SimulatorFactory,
    client_factory: ClientFactory,
    sleeps: Sleeps,
    to: str,
    code: int,
    opted_out: bool,
    bad_number: bool,
) -> None:
    server = await simulator_factory(blocklist=frozenset({"+15557770000"}))
    client = client_factory(base_url(server))
    with pytest.raises(PermanentSendError) as caught:
        await client.send(to=to, body="hi", from_=SERVICE_NUMBER)
    error = caught.value
    assert (error.code, error.status, error.opted_out, error.bad_number) == (code, 400, opted_out, bad_number)
    assert error.message and "Unable to" not in error.message
    assert sleeps.delays == []
    assert await sim_messages(server) == []


async def test_number_that_texted_stop_gets_21610(twilio: TwilioClient, simulator: TestServer) -> None:
    async with aiohttp.ClientSession() as http:
        stop = {"from": PATIENT, "to": SERVICE_NUMBER, "body": "Stop"}
        async with http.post(simulator.make_url("/simulator/inbound"), json=stop) as resp:
            assert resp.status == 200
    with pytest.raises(PermanentSendError) as caught:
        await twilio.send(to=PATIENT, body="refill?", from_=SERVICE_NUMBER)
    assert caught.value.opted_out


async def test_missing_body_is_21602(twilio: TwilioClient) -> None:
    with pytest.raises(PermanentSendError) as caught:
        await twilio.send(to=PATIENT, body="", from_=SERVICE_NUMBER)
    assert caught.value.code == 21602


async def test_wrong_credentials_are_refused(simulator: TestServer, client_factory: ClientFactory) -> None:
    client = client_factory(base_url(simulator), auth_token="not-the-token")
    with pytest.raises(PermanentSendError) as caught:
        await client.send(to=PATIENT, body="hi", from_=SERVICE_NUMBER)
    assert (caught.value.code, caught.value.status) == (20003, 401)


async def test_fetch_unknown_sid_is_api_error(twilio: TwilioClient) -> None:
    with pytest.raises(ApiError) as caught:
        await twilio.fetch("SM" + "0" * 32)
    assert (caught.value.code, caught.value.status) == (20404, 404)
    assert not isinstance(caught.value, PermanentSendError)


async def test_hang_is_unknown_outcome_then_find_sent_reconciles(
    simulator: TestServer, client_factory: ClientFactory, sleeps: Sleeps
) -> None:
    client = client_factory(base_url(simulator), timeout=0.2)
    await inject(simulator, {"hang_seconds": 5, "count": 1})
    since = datetime.now(UTC)
    started = time.monotonic()
    with pytest.raises(UnknownOutcomeError):
        await client.send(to=PATIENT, body="Your refill is ready", from_=SERVICE_NUMBER)
    assert time.monotonic() - started < 2  # gave up on the timeout, not the 5 s hang
    assert sleeps.delays == []  # never blindly re-sent
    found = await client.find_sent(to=PATIENT, body="Your refill is ready", since=since)
    assert found is not None and found.body == "Your refill is ready"
    assert len(await sim_messages(simulator, to=PATIENT)) == 1
    assert await client.find_sent(to=PATIENT, body="another text", since=since) is None
    assert (
        await client.find_sent(to=PATIENT, body="Your refill is ready", since=since + timedelta(minutes=5))
        is None
    )
    with pytest.raises(ValueError):
        await client.find_sent(to=PATIENT, body="x", since=datetime(2026, 1, 1))  # naive


async def test_find_sent_picks_the_newest_match(twilio: TwilioClient) -> None:
    since = datetime.now(UTC)
    first = await twilio.send(to=PATIENT, body="same words", from_=SERVICE_NUMBER)
    second = await twilio.send(to=PATIENT, body="same words", from_=SERVICE_NUMBER)
    await twilio.send(to=PATIENT, body="other words", from_=SERVICE_NUMBER)
    found = await twilio.find_sent(to=PATIENT, body="same words", since=since, from_=SERVICE_NUMBER)
    assert found is not None and found.sid in (first.sid, second.sid)
    assert found.sid == second.sid  # same second: the later stored comes first in Twilio's order
    assert await twilio.find_sent(to=PATIENT, body="same words", since=since, from_="+15005550199") is None


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_connection_refused_is_retried_then_transient(
    client_factory: ClientFactory, sleeps: Sleeps
) -> None:
    client = client_factory(f"http://127.0.0.1:{_unused_port()}", max_retries=2)
    with pytest.raises(TransientSendError) as caught:
        await client.send(to=PATIENT, body="hi", from_=SERVICE_NUMBER)
    assert "cannot connect" in str(caught.value)
    assert len(sleeps.delays) == 2


async def test_status_callbacks_arrive_in_order_and_signed(twilio: TwilioClient, receiver: Receiver) -> None:
    url = receiver.url("/twilio/status?site=s1")
    sent = await twilio.send(to=PATIENT, body="hi", from_=SERVICE_NUMBER, status_callback=url)
    got = await receiver.wait_for(3)
    assert [r.form["MessageStatus"] for r in got] == ["queued", "sent", "delivered"]
    for r in got:
        assert validate_signature(TOKEN, url, r.form, r.signature)
        assert r.url == url
        assert r.form["MessageSid"] == r.form["SmsSid"] == sent.sid
        assert (r.form["AccountSid"], r.form["To"], r.form["From"]) == (ACCOUNT, PATIENT, SERVICE_NUMBER)
        assert r.form["ApiVersion"] == "2010-04-01" and "ErrorCode" not in r.form
        assert not validate_signature("another-token", url, r.form, r.signature)


@pytest.mark.parametrize(
    ("to", "statuses", "code"),
    [
        ("+15551230003", ["queued", "sent", "undelivered"], "30003"),
        ("+15551230005", ["queued", "sent", "undelivered"], "30005"),
        ("+15551230006", ["queued", "sent", "undelivered"], "30006"),
        ("+15551230010", ["queued", "failed"], "21610"),
        ("+15551230011", ["queued", "failed"], "21211"),
    ],
)
async def test_magic_numbers_end_undelivered_or_failed(
    twilio: TwilioClient, receiver: Receiver, to: str, statuses: list[str], code: str
) -> None:
    url = receiver.url("/twilio/status")
    sent = await twilio.send(to=to, body="hi", from_=SERVICE_NUMBER, status_callback=url)
    got = await receiver.wait_for(len(statuses))
    assert [r.form["MessageStatus"] for r in got] == statuses
    assert got[-1].form["ErrorCode"] == code
    assert all(validate_signature(TOKEN, url, r.form, r.signature) for r in got)
    final = await twilio.fetch(sent.sid)
    assert (final.status, final.error_code) == (statuses[-1], int(code))
