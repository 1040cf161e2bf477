"""Pure dispatch rules: consent, prescription status, deadline, open dialog, quiet hours, caps, rate limit."""

from __future__ import annotations

import asyncio
import threading
import time as _time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from bot.db.sitecfg import SiteConfig
from scheduler.timeutil import local_date, local_datetime, next_allowed, next_local_day

__all__ = [
    "RateLimiter",
    "TokenBucket",
    "Verdict",
    "cap_verdict",
    "day_bounds",
    "dialog_verdict",
    "patient_verdict",
    "row_verdict",
    "window_verdict",
]

SENDABLE_STATUSES = frozenset({"active"})
EVENT_STATUSES = frozenset({"received", "active"})
DIALOG_DEFER = timedelta(hours=1)


@dataclass(frozen=True)
class Verdict:
    """What to do with a row instead of sending it now."""

    action: Literal["cancel", "expire", "defer"]
    reason: str
    until: datetime | None = None


def row_verdict(
    *,
    opted_out: bool,
    sms_consent: bool,
    rx_status: str | None,
    event_step: bool,
    deadline_at: datetime,
    now: datetime,
    wrong_number: bool = False,
    program_stopped: bool = False,
    program_paused: bool = False,
) -> Verdict | None:
    """Row checks, in order: consent (all texts, then this program's kind), the number is the patient's,
    the program is not paused, prescription still current, deadline. None: the row may go on."""
    if opted_out:
        return Verdict("cancel", "opted_out")
    if program_stopped:
        return Verdict("cancel", "opted_out_program")
    if wrong_number:
        return Verdict("cancel", "wrong_number")
    if not sms_consent:
        return Verdict("cancel", "no_consent")
    if program_paused:  # revived by the planner when the program is resumed
        return Verdict("cancel", "program_paused")
    if rx_status not in (EVENT_STATUSES if event_step else SENDABLE_STATUSES):
        return Verdict("cancel", "discontinued")
    if deadline_at <= now:
        return Verdict("expire", "deadline")
    return None


def dialog_verdict(open_dialog: bool, now: datetime) -> Verdict | None:
    """A patient in the middle of a dialog is not interrupted: try again in an hour."""
    return Verdict("defer", "open_dialog", now + DIALOG_DEFER) if open_dialog else None


def window_verdict(now: datetime, tz: ZoneInfo, cfg: SiteConfig) -> Verdict | None:
    """Outside the sending window (patient's local time) or on a closed day: defer to the next allowed time."""
    allowed = next_allowed(now, tz, cfg.quiet_window, cfg.closed_days, cfg.closed_dates)
    if allowed == now:
        return None
    today = local_date(now, tz)
    closed = today.weekday() in cfg.closed_days or today in cfg.closed_dates
    return Verdict("defer", "closed_day" if closed else "quiet_hours", allowed)


def cap_verdict(now: datetime, tz: ZoneInfo, cfg: SiteConfig, today: int, week: int) -> Verdict | None:
    """Daily / rolling-weekly caps on outreach texts (0 turns a cap off): defer to the next open day."""
    if cfg.daily_cap and today >= cfg.daily_cap:
        reason = "daily_cap"
    elif cfg.weekly_cap and week >= cfg.weekly_cap:
        reason = "weekly_cap"
    else:
        return None
    return Verdict(
        "defer", reason, next_local_day(now, tz, cfg.quiet_window, cfg.closed_days, cfg.closed_dates)
    )


def patient_verdict(
    *, open_dialog: bool, now: datetime, tz: ZoneInfo, cfg: SiteConfig, today: int, week: int
) -> Verdict | None:
    """The patient checks, in order: open dialog, sending window, caps (``today``/``week``: texts counted)."""
    return (
        dialog_verdict(open_dialog, now)
        or window_verdict(now, tz, cfg)
        or cap_verdict(now, tz, cfg, today, week)
    )


def day_bounds(now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of the patient's local day containing ``now``, as UTC (23 or 25 hours on DST days)."""
    day = local_date(now, tz)
    return local_datetime(day, datetime.min.time(), tz), local_datetime(
        day + timedelta(days=1), datetime.min.time(), tz
    )


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; one token per segment, as Twilio meters.

    A send takes one token before it goes out; once its body is known to be longer, ``debit`` takes the
    other segments, so the bucket may run into debt and later sends wait it out.
    Per process: with several dispatchers against one sender number the combined rate is up to N x rate,
    so set ``send_rate`` per replica accordingly (Twilio queues the excess rather than dropping it).
    Thread-safe: the database worker's thread and the event loop both take tokens.
    """

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        monotonic: Callable[[], float] = _time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.rate = max(rate, 1e-6)
        self.burst = max(1.0, burst if burst is not None else rate)
        self._monotonic, self._sleep = monotonic, sleep
        self._tokens, self._at = self.burst, monotonic()
        self._lock = asyncio.Lock()
        self._guard = threading.Lock()

    def _refill(self) -> None:
        now = self._monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def try_acquire(self) -> bool:
        """Take a token if one is there now."""
        with self._guard:
            self._refill()
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False

    def debit(self, tokens: float) -> None:
        """Take ``tokens`` more (a text's extra segments), into debt if need be."""
        if tokens > 0:
            with self._guard:
                self._refill()
                self._tokens -= tokens

    async def acquire(self) -> None:
        """Wait for a token and take it."""
        async with self._lock:
            while not self.try_acquire():
                await self._sleep((1 - self._tokens) / self.rate)


class RateLimiter:
    """One TokenBucket per sender (messaging service sid, else phone number)."""

    def __init__(
        self,
        *,
        monotonic: Callable[[], float] = _time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._buckets: dict[str, TokenBucket] = {}
        self._monotonic, self._sleep = monotonic, sleep

    def bucket(self, key: str, rate: float) -> TokenBucket:
        """The bucket of ``key``, re-made when the site's rate changed."""
        bucket = self._buckets.get(key)
        if bucket is None or bucket.rate != max(rate, 1e-6):
            bucket = self._buckets[key] = TokenBucket(rate, monotonic=self._monotonic, sleep=self._sleep)
        return bucket

    @staticmethod
    def key(cfg: SiteConfig) -> str:
        """The sender a site's texts leave from."""
        return cfg.messaging_service_sid or cfg.phone


def bundle_order(rows: Sequence[tuple[datetime, int]]) -> list[int]:
    """Ids of a patient's bundle, lead first: earliest due, then lowest id."""
    return [row_id for _, row_id in sorted(rows)]
