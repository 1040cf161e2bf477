"""Local times across DST, sending windows and closed days."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from scheduler.timeutil import (
    local_datetime,
    next_allowed,
    next_local_day,
    parse_weekdays,
    parse_window,
    pick_zone,
    zone,
)

CHICAGO = zone("America/Chicago")
WINDOW = (time(9), time(20))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 3, 7), utc(2026, 3, 7, 16)),  # CST, UTC-6
        (date(2026, 3, 8), utc(2026, 3, 8, 15)),  # spring forward at 02:00: CDT, UTC-5
        (date(2026, 10, 31), utc(2026, 10, 31, 15)),
        (date(2026, 11, 1), utc(2026, 11, 1, 16)),  # fall back at 02:00: CST again
    ],
)
def test_ten_local_stays_ten_local_across_both_dst_changes(day: date, expected: datetime) -> None:
    at = local_datetime(day, time(10), CHICAGO)
    assert at == expected
    assert at.astimezone(CHICAGO).time() == time(10)


def test_wall_time_in_the_spring_gap_lands_after_the_gap() -> None:
    at = local_datetime(date(2026, 3, 8), time(2, 30), CHICAGO)
    assert at.astimezone(CHICAGO).time() == time(3, 30)


def test_next_allowed_before_inside_and_after_the_window() -> None:
    # 07:00 Chicago (13:00Z) -> 09:00; 12:00 stays; 20:30 -> 09:00 next day.
    assert next_allowed(utc(2026, 11, 24, 13), CHICAGO, WINDOW) == utc(2026, 11, 24, 15)
    assert next_allowed(utc(2026, 11, 24, 18), CHICAGO, WINDOW) == utc(2026, 11, 24, 18)
    assert next_allowed(utc(2026, 11, 25, 2, 30), CHICAGO, WINDOW) == utc(2026, 11, 25, 15)


def test_the_same_instant_is_quiet_in_one_zone_and_open_in_another() -> None:
    at = utc(2026, 11, 24, 14)  # 09:00 New York, 06:00 Los Angeles
    assert next_allowed(at, zone("America/New_York"), WINDOW) == at
    assert next_allowed(at, zone("America/Los_Angeles"), WINDOW) == utc(2026, 11, 24, 17)


def test_window_end_on_the_night_before_the_spring_change() -> None:
    # 21:00 CST on Mar 7 -> 09:00 CDT on Mar 8 (14:00Z, not 15:00Z).
    assert next_allowed(utc(2026, 3, 8, 3), CHICAGO, WINDOW) == utc(2026, 3, 8, 14)


def test_closed_weekdays_and_dates_are_skipped() -> None:
    friday_night = utc(2026, 11, 28, 3)  # Fri 21:00 Chicago
    assert next_allowed(friday_night, CHICAGO, WINDOW, closed_days=(5, 6)) == utc(
        2026, 11, 30, 15
    )  # Mon 09:00
    assert next_allowed(utc(2026, 11, 26, 16), CHICAGO, WINDOW, closed_dates=(date(2026, 11, 26),)) == utc(
        2026, 11, 27, 15
    )
    with pytest.raises(ValueError, match="no open day"):
        next_allowed(friday_night, CHICAGO, WINDOW, closed_days=range(7))


def test_next_local_day_opens_at_window_start() -> None:
    assert next_local_day(utc(2026, 11, 24, 18), CHICAGO, WINDOW) == utc(2026, 11, 25, 15)


def test_parse_window_and_weekdays() -> None:
    assert parse_window("09:00-20:00") == (time(9), time(20))
    assert parse_window("08:00-21:00") == (time(8), time(21))
    for bad in ("07:59-20:00", "09:00-21:30", "20:00-09:00", "9-20", "nonsense"):
        with pytest.raises(ValueError):
            parse_window(bad)
    assert parse_weekdays("sat,Sun") == (5, 6)
    assert parse_weekdays("saturday, 0") == (0, 5)
    assert parse_weekdays("") == ()
    with pytest.raises(ValueError, match="not a weekday"):
        parse_weekdays("caturday")


def test_zones() -> None:
    with pytest.raises(ValueError):
        zone("Mars/Base")
    assert pick_zone(None, "Nope/Nope", "America/Denver").key == "America/Denver"
    assert pick_zone(None).key == "UTC"
