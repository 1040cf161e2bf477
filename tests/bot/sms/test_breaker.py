"""The provider circuit breaker: opens after a run of transient failures, cools down, probes, closes."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.clock import FixedClock
from bot.sms.breaker import Breaker


def test_opens_after_the_threshold_then_probes_after_a_growing_cool_down() -> None:
    clock = FixedClock(datetime(2026, 12, 1, 12, 0, tzinfo=UTC))
    breaker = Breaker(clock, threshold=3, cooldown=10, max_cooldown=25)
    for _ in range(2):
        assert breaker.allow()
        breaker.failure()
    assert breaker.allow() and not breaker.is_open
    breaker.failure()  # the third in a row
    assert breaker.is_open and not breaker.allow()
    clock.advance(seconds=9)
    assert not breaker.allow()
    clock.advance(seconds=1)
    assert breaker.allow()  # the probe
    breaker.failure()  # still down: open again at once, for twice as long
    assert not breaker.allow()
    clock.advance(seconds=19)
    assert not breaker.allow()
    clock.advance(seconds=1)
    assert breaker.allow()
    breaker.failure()
    clock.advance(seconds=25)  # capped at max_cooldown
    assert breaker.allow()
    breaker.success()
    assert breaker.allow() and not breaker.is_open
    breaker.failure()
    breaker.failure()
    assert breaker.allow()  # closed again: the count started over


def test_a_success_between_failures_resets_the_count() -> None:
    clock = FixedClock(datetime(2026, 12, 1, 12, 0, tzinfo=UTC))
    breaker = Breaker(clock, threshold=2)
    breaker.failure()
    breaker.success()
    breaker.failure()
    assert breaker.allow()
