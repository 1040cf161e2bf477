"""Local times that survive DST: due times, sending windows and closed days in a patient's time zone."""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.db.sitecfg import parse_hhmm

__all__ = [
    "LEGAL_WINDOW",
    "WEEKDAYS",
    "local_date",
    "local_datetime",
    "next_allowed",
    "next_local_day",
    "parse_weekdays",
    "parse_window",
    "pick_zone",
    "zone",
]

_LOGGER = logging.getLogger(__name__)

# 47 CFR 64.1200(c)(1): no calls/texts before 8 am or after 9 pm at the called party's location.
LEGAL_WINDOW = (time(8, 0), time(21, 0))
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_NAMES = {name: i for names in (WEEKDAYS, _FULL) for i, name in enumerate(names)}


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; raises ValueError when unknown."""
    if not name or name.strip() != name:
        raise ValueError(f"not a time zone: {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone: {name!r}") from None


def pick_zone(*names: str | None) -> ZoneInfo:
    """The first valid zone among ``names`` (patient's, then site's), else UTC."""
    for name in names:
        if not name:
            continue
        try:
            return zone(name)
        except ValueError:
            _LOGGER.warning("ignoring unknown time zone %r", name)
    return zone("UTC")


def local_datetime(day: date, at: time, tz: ZoneInfo) -> datetime:
    """``day`` at wall-clock ``at`` in ``tz``, as aware UTC.

    10:00 local stays 10:00 local on both sides of a DST change. A wall time that does not exist (inside the
    spring-forward gap) lands just after the gap; an ambiguous one (fall-back) takes its first occurrence.
    """
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def local_date(at: datetime, tz: ZoneInfo) -> date:
    """The calendar date of instant ``at`` in ``tz``."""
    return at.astimezone(tz).date()


def parse_window(value: str) -> tuple[time, time]:
    """Parse "HH:MM-HH:MM" into a sending window inside 08:00-21:00; raises ValueError."""
    start_s, sep, end_s = value.partition("-")
    if not sep:
        raise ValueError(f"not HH:MM-HH:MM: {value!r}")
    start, end = parse_hhmm(start_s.strip()), parse_hhmm(end_s.strip())
    if not start < end:
        raise ValueError(f"start must be before end: {value!r}")
    if start < LEGAL_WINDOW[0] or end > LEGAL_WINDOW[1]:
        raise ValueError(f"must lie inside 08:00-21:00: {value!r}")
    return start, end


def parse_weekdays(value: str) -> tuple[int, ...]:
    """Parse "sat,sun" (or "5,6") into sorted weekday numbers, Monday = 0; raises ValueError."""
    days: set[int] = set()
    for part in (p.strip().lower() for p in value.split(",")):
        if not part:
            continue
        if part in _DAY_NAMES:
            days.add(_DAY_NAMES[part])
        elif part.isdigit() and int(part) < 7:
            days.add(int(part))
        else:
            raise ValueError(f"not a weekday: {part!r} (use mon,tue,wed,thu,fri,sat,sun)")
    return tuple(sorted(days))


def next_allowed(
    at: datetime,
    tz: ZoneInfo,
    window: tuple[time, time],
    closed_days: Collection[int] = (),
    closed_dates: Collection[date] = (),
) -> datetime:
    """The first instant ≥ ``at`` inside the daily sending window on an open day (``at`` itself if allowed).

    Raises:
        ValueError: when every day of the coming year is closed.
    """
    first = local_date(at, tz)
    for offset in range(370):
        day = first + timedelta(days=offset)
        if day.weekday() in closed_days or day in closed_dates:
            continue
        start, end = local_datetime(day, window[0], tz), local_datetime(day, window[1], tz)
        if at < end:
            return max(at, start)
    raise ValueError("no open day in the coming year")


def next_local_day(
    at: datetime,
    tz: ZoneInfo,
    window: tuple[time, time],
    closed_days: Collection[int] = (),
    closed_dates: Collection[date] = (),
) -> datetime:
    """The opening of the sending window on the first open local day after the one containing ``at``."""
    tomorrow = local_date(at, tz) + timedelta(days=1)
    return next_allowed(local_datetime(tomorrow, time(0, 0), tz), tz, window, closed_days, closed_dates)
