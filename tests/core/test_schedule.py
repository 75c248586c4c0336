"""gatehouse_core.schedule: weekly windows on the site's local wall clock, including DST and holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gatehouse_core.schedule import ALWAYS, MINUTES_PER_DAY, WeeklySchedule, Window, parse_hhmm

MON, TUE, SUN = 0, 1, 6
UTC_ZONE = ZoneInfo("UTC")
NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
SHANGHAI = ZoneInfo("Asia/Shanghai")


def hm(text: str) -> int:
    return parse_hhmm(text)


def schedule(weekday: int, start: str, end: str, *, open_on_holidays: bool = True) -> WeeklySchedule:
    return WeeklySchedule((Window(weekday, hm(start), hm(end)),), open_on_holidays=open_on_holidays)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def open_minutes(sched: WeeklySchedule, tz: ZoneInfo, start: datetime, hours: int) -> list[datetime]:
    """Every UTC minute in [start, start + hours) at which `sched` is open."""
    minutes = (start + timedelta(minutes=i) for i in range(hours * 60))
    return [m for m in minutes if sched.is_open(m, tz)]


# 2026-03-02 is a Monday.
@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (utc(2026, 3, 2, 7, 59), False),
        (utc(2026, 3, 2, 8, 0), True),
        (utc(2026, 3, 2, 12, 0), True),
        (utc(2026, 3, 2, 16, 59, 59, 999999), True),
        (utc(2026, 3, 2, 17, 0), False),
        (utc(2026, 3, 3, 8, 0), False),
        (utc(2026, 3, 9, 8, 0), True),
    ],
)
def test_window_is_half_open_at_minute_granularity(at: datetime, expected: bool) -> None:
    assert schedule(MON, "08:00", "17:00").is_open(at, UTC_ZONE) is expected


def test_window_until_midnight_ends_before_next_weekday() -> None:
    sched = schedule(MON, "22:00", "24:00")
    assert sched.is_open(utc(2026, 3, 2, 23, 59, 59), UTC_ZONE)
    assert not sched.is_open(utc(2026, 3, 3, 0, 0), UTC_ZONE)


def test_window_from_midnight_starts_on_its_own_weekday() -> None:
    sched = schedule(TUE, "00:00", "01:00")
    assert not sched.is_open(utc(2026, 3, 2, 23, 59), UTC_ZONE)
    assert sched.is_open(utc(2026, 3, 3, 0, 0), UTC_ZONE)


def test_sunday_to_monday_wraps_the_week() -> None:
    sched = WeeklySchedule((Window(SUN, hm("23:00"), MINUTES_PER_DAY), Window(MON, 0, hm("01:00"))))
    assert sched.is_open(utc(2026, 3, 1, 23, 59), UTC_ZONE)
    assert sched.is_open(utc(2026, 3, 2, 0, 0), UTC_ZONE)
    assert not sched.is_open(utc(2026, 3, 2, 1, 0), UTC_ZONE)
    assert not sched.is_open(utc(2026, 3, 1, 22, 59), UTC_ZONE)


def test_always_and_never() -> None:
    never = WeeklySchedule(())
    for day in range(7):
        for at in (utc(2026, 3, 2 + day, 0, 0), utc(2026, 3, 2 + day, 23, 59)):
            assert ALWAYS.is_open(at, NEW_YORK)
            assert not never.is_open(at, NEW_YORK)


def test_naive_datetime_rejected() -> None:
    with pytest.raises(ValueError, match="aware"):
        ALWAYS.is_open(datetime(2026, 3, 2, 8, 0), UTC_ZONE)


def test_judged_by_site_clock_not_by_the_datetimes_own_zone() -> None:
    sched = schedule(MON, "08:00", "09:00")
    berlin_8am = datetime(2026, 3, 2, 8, 30, tzinfo=BERLIN)
    assert sched.is_open(berlin_8am, BERLIN)
    assert not sched.is_open(berlin_8am, UTC_ZONE)  # 07:30 UTC
    assert sched.is_open(berlin_8am.astimezone(UTC), BERLIN)


@pytest.mark.parametrize(
    ("weekday", "start", "end"), [(-1, 0, 60), (7, 0, 60), (0, 60, 60), (0, 61, 60), (0, -1, 60), (0, 0, 1441)]
)
def test_invalid_windows_rejected(weekday: int, start: int, end: int) -> None:
    with pytest.raises(ValueError):
        Window(weekday, start, end)


def test_whole_day_window_is_valid() -> None:
    assert Window(SUN, 0, MINUTES_PER_DAY).end_minute == 1440


# ---- holidays ------------------------------------------------------------------------------------------------------


def test_closed_on_holidays_when_not_open_on_holidays() -> None:
    sched = schedule(MON, "08:00", "17:00", open_on_holidays=False)
    holidays = [date(2026, 3, 2)]
    assert not sched.is_open(utc(2026, 3, 2, 9, 0), UTC_ZONE, holidays)
    assert sched.is_open(utc(2026, 3, 9, 9, 0), UTC_ZONE, holidays)
    assert sched.is_open(utc(2026, 3, 2, 9, 0), UTC_ZONE)


def test_open_on_holidays_ignores_holidays() -> None:
    sched = schedule(MON, "08:00", "17:00", open_on_holidays=True)
    assert sched.is_open(utc(2026, 3, 2, 9, 0), UTC_ZONE, [date(2026, 3, 2)])


def test_holiday_is_a_local_date_and_any_iterable_works() -> None:
    sched = schedule(MON, "07:00", "09:00", open_on_holidays=False)
    at = utc(2026, 3, 1, 23, 30)  # Sunday in UTC, Monday 07:30 in Shanghai
    assert not sched.is_open(at, SHANGHAI, (d for d in [date(2026, 3, 2)]))
    assert sched.is_open(at, SHANGHAI, iter([date(2026, 3, 1)]))


# ---- time zones and DST --------------------------------------------------------------------------------------------


def test_shanghai_monday_morning_is_sunday_night_utc() -> None:
    sched = schedule(MON, "07:00", "09:00")
    assert sched.is_open(utc(2026, 3, 1, 23, 30), SHANGHAI)
    assert sched.is_open(utc(2026, 3, 1, 23, 0), SHANGHAI)
    assert not sched.is_open(utc(2026, 3, 1, 22, 59), SHANGHAI)
    assert not sched.is_open(utc(2026, 3, 2, 1, 0), SHANGHAI)
    assert not sched.is_open(utc(2026, 3, 2, 7, 30), SHANGHAI)


@pytest.mark.parametrize(
    ("tz", "spring_forward_sunday", "normal_sunday"),
    [(NEW_YORK, date(2026, 3, 8), date(2026, 3, 1)), (BERLIN, date(2026, 3, 29), date(2026, 3, 22))],
)
def test_nonexistent_hour_on_spring_forward_day_never_matches(
    tz: ZoneInfo, spring_forward_sunday: date, normal_sunday: date
) -> None:
    sched = schedule(SUN, "02:00", "03:00")
    for day, expected in ((spring_forward_sunday, 0), (normal_sunday, 60)):
        start = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=12)
        assert len(open_minutes(sched, tz, start, 48)) == expected, day


def test_repeated_hour_on_fall_back_day_matches_twice_new_york() -> None:
    sched = schedule(SUN, "01:00", "02:00")
    matches = open_minutes(sched, NEW_YORK, utc(2026, 10, 31, 12, 0), 48)
    assert len(matches) == 120
    assert matches[0] == utc(2026, 11, 1, 5, 0)  # 01:00 EDT
    assert matches[-1] == utc(2026, 11, 1, 6, 59)  # 01:59 EST
    assert sched.is_open(utc(2026, 11, 1, 5, 30), NEW_YORK)
    assert sched.is_open(utc(2026, 11, 1, 6, 30), NEW_YORK)
    assert not sched.is_open(utc(2026, 11, 1, 4, 59), NEW_YORK)
    assert not sched.is_open(utc(2026, 11, 1, 7, 0), NEW_YORK)


def test_repeated_hour_on_fall_back_day_matches_twice_berlin() -> None:
    sched = schedule(SUN, "02:00", "03:00")
    matches = open_minutes(sched, BERLIN, utc(2026, 10, 24, 12, 0), 48)
    assert len(matches) == 120
    assert (matches[0], matches[-1]) == (utc(2026, 10, 25, 0, 0), utc(2026, 10, 25, 1, 59))


@pytest.mark.parametrize(
    ("tz", "before", "after"),
    [
        (NEW_YORK, utc(2026, 3, 2, 13, 0), utc(2026, 3, 9, 12, 0)),  # EST -> EDT
        (NEW_YORK, utc(2026, 10, 26, 12, 0), utc(2026, 11, 2, 13, 0)),  # EDT -> EST
        (BERLIN, utc(2026, 3, 23, 7, 0), utc(2026, 3, 30, 6, 0)),  # CET -> CEST
    ],
)
def test_local_8am_keeps_its_meaning_across_dst(tz: ZoneInfo, before: datetime, after: datetime) -> None:
    sched = schedule(MON, "08:00", "08:30")
    assert sched.is_open(before, tz)
    assert sched.is_open(after, tz)
    # The same UTC time of day one week later is an hour off in local time.
    shift = after - before - timedelta(days=7)
    assert abs(shift) == timedelta(hours=1)
    assert not sched.is_open(before + timedelta(days=7), tz)


# ---- parse_hhmm ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("00:00", 0), ("07:30", 450), ("7:05", 425), (" 12:00 ", 720), ("23:59", 1439), ("24:00", 1440)],
)
def test_parse_hhmm(text: str, minutes: int) -> None:
    assert parse_hhmm(text) == minutes


@pytest.mark.parametrize("text", ["", "7", "0730", "07-30", "07:30:00", "ab:cd", "07:", ":30", "seven:30"])
def test_parse_hhmm_rejects_malformed(text: str) -> None:
    with pytest.raises(ValueError, match="is not a time like 07:30"):
        parse_hhmm(text)


@pytest.mark.parametrize("text", ["24:01", "25:00", "12:60", "00:99", "-01:00", "00:-1"])
def test_parse_hhmm_rejects_out_of_range(text: str) -> None:
    with pytest.raises(ValueError, match="between 00:00 and 24:00"):
        parse_hhmm(text)
