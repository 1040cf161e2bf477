"""Clocks: the real one for serving, a settable one for tests and `--now`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["Clock", "FixedClock", "SystemClock", "utcnow"]


def utcnow() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)


class Clock:
    """A source of the current time (aware UTC)."""

    def now(self) -> datetime:
        """Return the current time."""
        raise NotImplementedError


class SystemClock(Clock):
    """The machine's clock."""

    def now(self) -> datetime:
        return utcnow()


class FixedClock(Clock):
    """A clock that reads what it is set to; tests move it forward by hand."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._at = at.astimezone(UTC)

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        """Move the clock to ``at``."""
        self._at = at.astimezone(UTC)

    def advance(self, **kwargs: float) -> datetime:
        """Move the clock forward by a ``timedelta(**kwargs)`` and return the new time."""
        self._at += timedelta(**kwargs)
        return self._at
