"""Cron expressions: crontab semantics (Sunday = 0, day fields OR-ed) on APScheduler's CronTrigger, across DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from apscheduler.triggers.cron import CronTrigger

from scheduler.cron import cron_occurrences, parse_cron
from scheduler.timeutil import zone

CHICAGO = zone("America/Chicago")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def fired(expr: str, start: datetime, end: datetime) -> list[datetime]:
    return cron_occurrences(parse_cron(expr), CHICAGO, start, end)


def local_days(expr: str, start: date, days: int) -> list[date]:
    begin = datetime.combine(start, time(), tzinfo=CHICAGO).astimezone(UTC)
    return [at.astimezone(CHICAGO).date() for at in fired(expr, begin, begin + timedelta(days=days))]


def test_weekday_one_is_monday_as_in_crontab() -> None:
    mondays = [utc(2026, 11, 23, 16), utc(2026, 11, 30, 16), utc(2026, 12, 7, 16)]
    assert fired("0 10 * * 1", utc(2026, 11, 23), utc(2026, 12, 8)) == mondays
    assert fired("0 10 * * MON", utc(2026, 11, 23), utc(2026, 12, 8)) == mondays
    # Why cron.py translates the weekday field: APScheduler 3's own from_crontab reads 1 as Tuesday.
    aps = CronTrigger.from_crontab("0 10 * * 1", timezone=CHICAGO).get_next_fire_time(None, mondays[0])
    assert aps.astimezone(CHICAGO).date() == date(2026, 11, 24)


@pytest.mark.parametrize("sunday", ["0", "7", "sun", "SUN"])
def test_sunday_is_zero_or_seven(sunday: str) -> None:
    assert local_days(f"0 10 * * {sunday}", date(2026, 11, 23), 14) == [date(2026, 11, 29), date(2026, 12, 6)]


def test_ranges_lists_and_steps() -> None:
    assert local_days("0 10 * * 1-5", date(2026, 11, 22), 7) == [date(2026, 11, d) for d in range(23, 28)]
    assert local_days("0 10 * * 5-7", date(2026, 11, 23), 7) == [date(2026, 11, d) for d in (27, 28, 29)]
    assert local_days("0 10 * * 0-2", date(2026, 11, 23), 7) == [date(2026, 11, d) for d in (23, 24, 29)]
    assert local_days("0 10 * * */2", date(2026, 11, 22), 7) == [date(2026, 11, d) for d in (22, 24, 26, 28)]
    assert local_days("0 10 * * 1-5/2", date(2026, 11, 22), 7) == [date(2026, 11, d) for d in (23, 25, 27)]
    quarter_hours = fired("*/15 8-9 1,15 jan-mar *", utc(2026, 1, 1), utc(2026, 1, 2))
    assert [at.astimezone(CHICAGO).time() for at in quarter_hours] == [
        time(h, m) for h in (8, 9) for m in (0, 15, 30, 45)
    ]
    assert fired("*/15 8-9 1,15 jan-mar *", utc(2026, 4, 1), utc(2026, 4, 2)) == []


def test_both_day_fields_restricted_fire_on_either() -> None:
    days = local_days("0 10 1 * mon", date(2026, 11, 30), 9)
    assert days == [date(2026, 11, 30), date(2026, 12, 1), date(2026, 12, 7)]


def test_local_time_is_kept_across_both_dst_changes() -> None:
    spring = fired("30 9 * * *", utc(2026, 3, 7), utc(2026, 3, 10))
    assert spring == [utc(2026, 3, 7, 15, 30), utc(2026, 3, 8, 14, 30), utc(2026, 3, 9, 14, 30)]
    autumn = fired("30 9 * * *", utc(2026, 10, 31), utc(2026, 11, 3))
    assert autumn == [utc(2026, 10, 31, 14, 30), utc(2026, 11, 1, 15, 30), utc(2026, 11, 2, 15, 30)]


def test_a_wall_time_in_the_spring_gap_fires_once_just_after_it() -> None:
    assert fired("30 2 * * *", utc(2026, 3, 8), utc(2026, 3, 9)) == [utc(2026, 3, 8, 8, 30)]  # 03:30 CDT
    assert fired("30 2,3 * * *", utc(2026, 3, 8), utc(2026, 3, 9)) == [utc(2026, 3, 8, 8, 30)]
    assert fired("*/20 2 * * *", utc(2026, 3, 8), utc(2026, 3, 9)) == [utc(2026, 3, 8, 8)]  # 03:00 CDT


def test_a_repeated_fall_back_wall_time_fires_once() -> None:
    assert fired("30 1 * * *", utc(2026, 11, 1), utc(2026, 11, 2)) == [utc(2026, 11, 1, 6, 30)]  # 01:30 CDT
    assert fired("30 1 * * *", utc(2026, 11, 1, 7), utc(2026, 11, 2)) == []  # window opens between the two


def test_the_window_is_half_open() -> None:
    assert fired("0 10 * * *", utc(2026, 11, 24, 16), utc(2026, 11, 25, 16)) == [utc(2026, 11, 24, 16)]


def test_an_impossible_date_never_fires() -> None:
    assert fired("0 10 31 2 *", utc(2026, 1, 1), utc(2027, 1, 1)) == []


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("0 10 * *", "needs 5 fields"),
        ("60 10 * * *", "minute: '60'"),
        ("0 24 * * *", "hour: '24'"),
        ("0 10 32 * *", "day of month: '32'"),
        ("0 10 * foo *", "month: 'foo'"),
        ("0 10 * * 8", "day of week: '8' is not in 0-7"),
        ("0 10 * * mon#2", "day of week: 'mon#2'"),
        ("0 10 * * 5-1", "day of week: range '5-1' runs backwards"),
        ("0 10 * * */0", "day of week: step '0'"),
        ("5-1 * * * *", "minute: '5-1'"),
    ],
)
def test_bad_cron_is_rejected_naming_the_field(expr: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("*", r"\*")):
        parse_cron(expr)
