"""A circuit breaker for the provider: during an outage, texts wait instead of spending calls on it.

Closed: calls go through; ``threshold`` transient failures in a row (5xx, 429, refused, timeout) open it.
Open: calls are refused at once for a cool-down (``cooldown`` seconds, doubling while the outage lasts, at
most ``max_cooldown``), so the retry job does not burn its budget or Twilio's rate limit on a provider that
is down; the texts stay pending and go out, reconciled first, once it answers again.
After the cool-down the next call is a probe: one more failure re-opens it at once, a success closes it.
Times come from the app's clock, so ``--now`` and tests move the cool-down as they move everything else.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bot.clock import Clock

__all__ = ["Breaker"]

_LOGGER = logging.getLogger(__name__)


class Breaker:
    """Per process and provider account; not thread-safe (the event loop's thread only)."""

    def __init__(
        self, clock: Clock, *, threshold: int = 5, cooldown: float = 10.0, max_cooldown: float = 300.0
    ) -> None:
        self._clock = clock
        self.threshold = max(1, threshold)
        self._base = timedelta(seconds=cooldown)
        self._max = timedelta(seconds=max(cooldown, max_cooldown))
        self._failures = 0
        self._cooldown = self._base
        self._open_until: datetime | None = None

    @property
    def is_open(self) -> bool:
        """True while calls are refused."""
        return self._open_until is not None and self._clock.now() < self._open_until

    def allow(self) -> bool:
        """May a call go to the provider now?"""
        if self._open_until is None:
            return True
        if self._clock.now() < self._open_until:
            return False
        self._open_until = None  # cool-down over: the next call probes (one failure re-opens)
        self._failures = self.threshold - 1
        return True

    def success(self) -> None:
        """The provider answered (even with a permanent error): close."""
        if self._cooldown > self._base:  # it had opened (each opening doubles the next cool-down)
            _LOGGER.info("provider answers again: circuit closed")
        self._failures = 0
        self._cooldown = self._base
        self._open_until = None

    def failure(self) -> None:
        """A transient failure; the threshold-th in a row opens the circuit."""
        self._failures += 1
        if self._failures < self.threshold or self._open_until is not None:
            return
        self._open_until = self._clock.now() + self._cooldown
        _LOGGER.warning(
            "provider failing (%d in a row): circuit open for %.0f s",
            self._failures,
            self._cooldown.total_seconds(),
        )
        self._cooldown = min(self._cooldown * 2, self._max)
