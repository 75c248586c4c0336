"""Weekly access windows in site-local wall-clock time, evaluated the same way on server and terminals."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

MINUTES_PER_DAY = 1440


@dataclass(frozen=True)
class Window:
    """[start_minute, end_minute) on `weekday` (0 = Monday), local time."""

    weekday: int
    start_minute: int
    end_minute: int

    def __post_init__(self) -> None:
        if not 0 <= self.weekday <= 6:
            raise ValueError("weekday is 0 (Monday) to 6 (Sunday)")
        if not 0 <= self.start_minute < self.end_minute <= MINUTES_PER_DAY:
            raise ValueError("a window runs from 00:00 to 24:00 with its start before its end")


@dataclass(frozen=True)
class WeeklySchedule:
    """Windows of one access group plus its holiday rule."""

    windows: tuple[Window, ...]
    open_on_holidays: bool = True

    def is_open(self, at: datetime, tz: ZoneInfo, holidays: Iterable[date] = ()) -> bool:
        """Whether `at` (aware) falls in a window, judged by the site's local wall clock."""
        if at.tzinfo is None:
            raise ValueError("pass an aware datetime")
        local = at.astimezone(tz)
        if not self.open_on_holidays and local.date() in set(holidays):
            return False
        minute = local.hour * 60 + local.minute
        weekday = local.weekday()
        return any(w.weekday == weekday and w.start_minute <= minute < w.end_minute for w in self.windows)


ALWAYS = WeeklySchedule(tuple(Window(d, 0, MINUTES_PER_DAY) for d in range(7)))


def parse_hhmm(text: str) -> int:
    """'07:30' -> 450; '24:00' is allowed as the end of a day."""
    try:
        hours, minutes = text.strip().split(":")
        value = int(hours) * 60 + int(minutes)
    except ValueError:
        raise ValueError(f"{text!r} is not a time like 07:30") from None
    if not (0 <= int(minutes) < 60 and 0 <= value <= MINUTES_PER_DAY):
        raise ValueError(f"{text!r} is not a time between 00:00 and 24:00")
    return value
