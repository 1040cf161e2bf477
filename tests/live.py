"""A running stack (midbot + simulator on loopback) on its own event loop in a thread, so synchronous
hypothesis examples can drive it; one stack serves a whole module. (No tests here.)"""

from __future__ import annotations

import asyncio
import tempfile
import threading
from collections.abc import Coroutine
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from bot.clock import FixedClock
from tests.e2e.conftest import Stack, running_stack

T = TypeVar("T")


class StackThread:
    """``with StackThread() as runner: stack = runner.start(); runner.run(coro)``."""

    def __init__(self, **overrides: Any) -> None:
        self.overrides = overrides
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.exits = AsyncExitStack()
        self.dir = tempfile.TemporaryDirectory(prefix="midbot-live-")

    def __enter__(self) -> StackThread:
        self.thread.start()
        return self

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run a coroutine on the stack's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> Stack:
        """Start the stack (a FixedClock at Tuesday 2026-11-24 16:00 UTC)."""
        clock = FixedClock(datetime(2026, 11, 24, 16, 0, tzinfo=UTC))
        context = running_stack(Path(self.dir.name), clock, **self.overrides)
        return self.run(self.exits.enter_async_context(context))

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.run(self.exits.aclose())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
            self.loop.close()
            self.dir.cleanup()
