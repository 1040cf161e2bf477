"""Standard five-field cron expressions ("m h dom mon dow"), fired by APScheduler 3's CronTrigger in a local zone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

__all__ = ["CronSpec", "cron_occurrences", "parse_cron"]

# Crontab order and the label each field's errors carry in `programs validate` output.
_FIELDS = (("minute", "minute"), ("hour", "hour"), ("day", "day of month"), ("month", "month"))
_DOWS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_DOW_NAMES = {name: i for i, name in enumerate(_DOWS)}
_APS_PREFIX = re.compile(r"^Error validating expression '[^']*': ")


@dataclass(frozen=True)
class CronSpec:
    """A validated cron expression, held as APScheduler field expressions.

    ``day_of_week`` is already translated to day names (``"sun,mon"``) because APScheduler 3 numbers weekdays
    from Monday = 0 while crontab uses Sunday = 0 (or 7); ``None`` means unrestricted (``*``).
    """

    expr: str
    minute: str
    hour: str
    day: str
    month: str
    day_of_week: str | None

    def trigger(self, tz: ZoneInfo, end: datetime | None = None) -> OrTrigger | CronTrigger:
        """The APScheduler trigger firing this expression on wall-clock times in ``tz`` (up to ``end``).

        Crontab fires when *either* day field matches if both are restricted; CronTrigger requires all fields
        to match, so that case becomes an OrTrigger of a day-of-month and a day-of-week trigger.
        """
        fields = {"minute": self.minute, "hour": self.hour, "month": self.month}
        if self.day_of_week is None:
            return CronTrigger(day=self.day, timezone=tz, end_date=end, **fields)
        by_weekday = CronTrigger(day_of_week=self.day_of_week, timezone=tz, end_date=end, **fields)
        if self.day == "*":
            return by_weekday
        by_day = CronTrigger(day=self.day, timezone=tz, end_date=end, **fields)
        return OrTrigger([by_day, by_weekday])


def _weekday(text: str) -> int:
    key = text.lower()
    if key in _DOW_NAMES:
        return _DOW_NAMES[key]
    if not text.isdigit() or int(text) > 7:
        raise ValueError(f"{text!r} is not in 0-7 or sun-sat")
    return int(text)


def _weekday_part(part: str) -> set[int]:
    span, slash, step_s = part.partition("/")
    if slash and (not step_s.isdigit() or int(step_s) < 1):
        raise ValueError(f"step {step_s!r} must be a whole number from 1")
    step = int(step_s) if slash else 1
    if span == "*":
        first, last = 0, 7
    elif "-" in span:
        low, _, high = span.partition("-")
        first, last = _weekday(low), _weekday(high)
        if first > last:
            raise ValueError(f"range {span!r} runs backwards")
    else:
        first = _weekday(span)
        last = 7 if slash else first
    return {day % 7 for day in range(first, last + 1, step)}  # 7 is Sunday too


def _weekdays(text: str) -> str | None:
    """Crontab day-of-week (numbers or names, ranges, lists, steps) as APScheduler day names, or None for ``*``."""
    if text == "*":
        return None
    try:
        days = set().union(*(_weekday_part(part) for part in text.split(",")))
    except ValueError as exc:
        raise ValueError(f"day of week: {exc}") from None
    return ",".join(_DOWS[day] for day in sorted(days))


def _check(name: str, label: str, text: str) -> None:
    """Let CronTrigger validate one field, so its error names the field (CronTrigger's own messages do not)."""
    try:
        CronTrigger(**{name: text}, timezone=UTC)
    except ValueError as exc:
        raise ValueError(f"{label}: {text!r}: {_APS_PREFIX.sub('', str(exc))}") from None


def parse_cron(expr: str) -> CronSpec:
    """Parse "m h dom mon dow" (numbers, ranges, lists, steps, jan-dec and sun-sat names).

    Raises:
        ValueError: naming the field at fault, e.g. ``hour: '99': the last value (99) is higher than ...``.
    """
    parts = expr.split()
    if len(parts) != 5:
        raise ValueError(f"needs 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}")
    for (name, label), text in zip(_FIELDS, parts, strict=False):
        _check(name, label, text)
    minute, hour, day, month, dow = parts
    return CronSpec(expr, minute, hour, day, month, _weekdays(dow))


def _first_of_wall_time(at: datetime, tz: ZoneInfo) -> bool:
    """False for the second pass of a repeated (fall-back) wall time, which crontab does not fire again."""
    local = at.astimezone(tz)
    return local.fold == 0 or local.replace(fold=0).astimezone(UTC) == at


def cron_occurrences(spec: CronSpec, tz: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """The firing instants (aware UTC) in ``[start, end)``, with wall-clock times read in ``tz``.

    A wall time inside the spring-forward gap fires just after the gap (merged with a firing already there);
    one repeated by the fall-back change fires once, at its first occurrence.
    """
    trigger = spec.trigger(tz, end)
    out: set[datetime] = set()
    at: datetime | None = trigger.get_next_fire_time(None, start.astimezone(tz))
    while at is not None and at < end:
        if _first_of_wall_time(at, tz):
            out.add(at.astimezone(UTC))
        at = trigger.get_next_fire_time(at, at)
    return sorted(out)
