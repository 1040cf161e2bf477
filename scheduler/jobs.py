"""The dispatcher's periodic run: one tick (errors logged, never raised), and the loop of `midbot dispatch`.

The web app registers ``dispatch_tick`` with its one APScheduler (``bot.jobs``); this module knows nothing of
the app. ``run_forever`` is the same tick on its own, for a dispatcher run without the web server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket

from scheduler.dispatcher import Dispatcher, DispatchSummary

__all__ = ["default_owner", "dispatch_tick", "run_forever"]

_LOGGER = logging.getLogger(__name__)


def default_owner(settings_name: str = "") -> str:
    """A lease owner unique to this process: ``instance_name`` (or host:pid) plus a random suffix."""
    base = settings_name or f"{socket.gethostname()}:{os.getpid()}"
    return f"{base}:{secrets.token_hex(3)}"[:100]


async def dispatch_tick(dispatcher: Dispatcher) -> DispatchSummary | None:
    """One scheduled run; errors are logged, never raised into the scheduler."""
    try:
        return await dispatcher.run_once()
    except Exception:
        _LOGGER.exception("dispatch run failed; the next tick retries")
        return None


async def run_forever(dispatcher: Dispatcher, interval: float, stop: asyncio.Event) -> None:
    """`midbot dispatch` without the web server: run, wait ``interval`` (or until ``stop``), repeat."""
    while not stop.is_set():
        await dispatch_tick(dispatcher)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
    await dispatcher.drain()
