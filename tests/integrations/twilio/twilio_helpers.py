"""Shared helpers of the Twilio tests: test credentials, a webhook receiver, an injected sleep."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp.test_utils import TestServer

from integrations.twilio import TwilioClient

ACCOUNT = "AC" + "1" * 32
TOKEN = "test-auth-token"
SERVICE_NUMBER = "+15005550006"
PATIENT = "+15551230000"

SimulatorFactory = Callable[..., Awaitable[TestServer]]
ClientFactory = Callable[..., TwilioClient]


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    form: dict[str, str]
    signature: str | None
    url: str


@dataclass
class Receiver:
    """A stand-in for midbot's webhook endpoints: records every POST, answers ``reply_body``."""

    base_url: str = ""
    requests: list[Received] = field(default_factory=list)
    reply_status: int = 200
    reply_body: str = "<Response/>"
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    async def wait_for(self, count: int, timeout: float = 3.0) -> list[Received]:
        """Wait until ``count`` requests arrived (fails the test after ``timeout`` seconds)."""
        async with asyncio.timeout(timeout):
            while len(self.requests) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.requests


class Sleeps:
    """An injected sleep: records the delays and does not wait (keeps retry tests fast)."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


def base_url(server: TestServer) -> str:
    """The server's root URL without a trailing slash."""
    return str(server.make_url("")).rstrip("/")
