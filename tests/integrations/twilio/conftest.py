"""Fixtures for the Twilio tests: the simulator on 127.0.0.1, a webhook receiver, and real clients."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from integrations.twilio import TwilioClient
from integrations.twilio.simulator import SimulatorConfig, create_simulator_app
from tests.integrations.twilio.twilio_helpers import (
    ACCOUNT,
    TOKEN,
    ClientFactory,
    Received,
    Receiver,
    SimulatorFactory,
    Sleeps,
    base_url,
)


@pytest.fixture
async def receiver(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> Receiver:
    """An HTTP server on 127.0.0.1 recording webhook and status-callback POSTs."""
    rec = Receiver()

    async def handle(request: web.Request) -> web.Response:
        form = await request.post()
        rec.requests.append(
            Received(
                path=request.path,
                form={k: str(v) for k, v in form.items()},
                signature=request.headers.get("X-Twilio-Signature"),
                url=rec.url(request.path_qs),
            )
        )
        rec.arrived.set()
        return web.Response(status=rec.reply_status, text=rec.reply_body, content_type="text/xml")

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    server = await aiohttp_server(app)
    rec.base_url = str(server.make_url("")).rstrip("/")
    return rec


@pytest.fixture
def simulator_factory(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> SimulatorFactory:
    """Start a simulator with the test credentials, no delays, a fixed seed, and any overrides."""

    async def start(**overrides: Any) -> TestServer:
        base = SimulatorConfig(
            account_sid=ACCOUNT, auth_token=TOKEN, callback_delays=(0, 0), seed=7, webhook_timeout=2
        )
        return await aiohttp_server(create_simulator_app(dataclasses.replace(base, **overrides)))

    return start


@pytest.fixture
async def simulator(simulator_factory: SimulatorFactory) -> TestServer:
    """A simulator without webhook."""
    return await simulator_factory()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """The session the clients send over, as the app's HTTP cleanup context would provide it."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def client_factory(sleeps: Sleeps, http: aiohttp.ClientSession) -> AsyncIterator[ClientFactory]:
    """Real TwilioClients (twilio library inside) aimed at a given base URL; closed after the test."""
    made: list[TwilioClient] = []

    def make(url: str, **overrides: Any) -> TwilioClient:
        kwargs: dict[str, Any] = {
            "session": http,
            "account_sid": ACCOUNT,
            "auth_token": TOKEN,
            "base_url": url,
            "timeout": 2.0,
            "max_retries": 3,
            "sleep": sleeps,
            "rng": random.Random(42),
        }
        kwargs.update(overrides)
        client = TwilioClient(**kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


@pytest.fixture
async def twilio(simulator: TestServer, client_factory: ClientFactory) -> TwilioClient:
    """A TwilioClient talking to the simulator."""
    return client_factory(base_url(simulator))
