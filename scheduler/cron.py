"""Standard five-field cron expressions ("m h dom mon dow"), evaluated day by day in a local time zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from scheduler.timeutil import local_date, local_datetime

__all__ = ["CronSpec", "cron_occurrences", "parse_cron"]

_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)
_MONTHS = {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())}
_DOWS = {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}


@dataclass(frozen=True)
class CronSpec:
    """A parsed cron expression. Weekdays follow crontab: 0 (or 7) is Sunday."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool
    any_weekday: bool

    def matches(self, day: date) -> bool:
        """Whether ``day`` is a firing day (crontab rule: if both day fields are restricted, either may match)."""
        if day.month not in self.months:
            return False
        dom, dow = day.day in self.days, day.isoweekday() % 7 in self.weekdays
        if self.any_day and self.any_weekday:
            return True
        if self.any_day:
            return dow
        if self.any_weekday:
            return dom
        return dom or dow


def _value(text: str, names: dict[str, int], low: int, high: int, field: str) -> int:
    key = text.lower()
    if key in names:
        return names[key]
    if not text.isdigit() or not low <= int(text) <= high:
        raise ValueError(f"{field}: {text!r} is not in {low}-{high}")
    return int(text)


def _field(text: str, index: int) -> frozenset[int]:
    field, low, high = _FIELDS[index]
    names = _MONTHS if index == 3 else _DOWS if index == 4 else {}
    values: set[int] = set()
    for part in text.split(","):
        span, _, step_s = part.partition("/")
        step = _value(step_s, {}, 1, high, field) if step_s else 1
        if span == "*":
            first, last = low, high
        elif "-" in span:
            a, _, b = span.partition("-")
            first, last = _value(a, names, low, high, field), _value(b, names, low, high, field)
            if first > last:
                raise ValueError(f"{field}: range {span!r} runs backwards")
        else:
            first = _value(span, names, low, high, field)
            last = high if step_s else first
        values.update(range(first, last + 1, step))
    if index == 4 and 7 in values:
        values = (values - {7}) | {0}
    return frozenset(values)


def parse_cron(expr: str) -> CronSpec:
    """Parse "m h dom mon dow" (numbers, ranges, lists, steps, jan-dec and sun-sat names); raises ValueError."""
    parts = expr.split()
    if len(parts) != 5:
        raise ValueError(f"needs 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}")
    fields = [_field(part, i) for i, part in enumerate(parts)]
    return CronSpec(*fields, any_day=parts[2] == "*", any_weekday=parts[4] == "*")


def cron_occurrences(spec: CronSpec, tz: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """The firing instants (aware UTC) in ``[start, end)``, with wall-clock times read in ``tz``."""
    out: list[datetime] = []
    day, last = local_date(start, tz), local_date(end, tz)
    while day <= last:
        if spec.matches(day):
            for hour in sorted(spec.hours):
                for minute in sorted(spec.minutes):
                    at = local_datetime(day, time(hour, minute), tz)
                    if start <= at < end:
                        out.append(at)
        day += timedelta(days=1)
    return sorted(set(out))  # a wall time in the spring-forward gap can land on the next real firing
