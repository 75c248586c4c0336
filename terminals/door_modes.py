"""What a door's mode and unlock schedule ask of its lock right now: held unlocked, or left to grants.

Pure: given the door's record, the site's zone and holidays, the time and whether someone has already been let in
during the current unlock window, it answers; the terminal's loop holds or releases the relay accordingly.

- emergency release: held unlocked until lifted, whatever the schedule says;
- lockdown: never held unlocked (only a staff credential's grant pulses it, see decision.py);
- normal: held unlocked inside an unlock window (site-local wall clock, so a DST change moves the window with the
  clock), skipped on holidays unless the door opens on them; with first-person-in only once someone has been
  granted entry in that window. It relocks when the window ends.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from gatehouse_core.wire.records import DoorMode, DoorRecord

SCHEDULED = "scheduled_unlock"  # the mode a door status shows while a schedule holds it unlocked


@dataclass(frozen=True)
class Hold:
    """The lock state a door's mode asks for; `window` names the unlock window in force, if any."""

    unlocked: bool
    mode: str
    window: str | None = None


def current_window(door: DoorRecord, now: datetime, tz: ZoneInfo, holidays: Iterable[date] = ()) -> str | None:
    """The unlock window `now` falls in (named by its local date and start), or None."""
    if not door.unlock_windows:
        return None
    if now.tzinfo is None:
        raise ValueError("pass an aware datetime")
    local = now.astimezone(tz)
    if not door.unlock_on_holidays and local.date() in set(holidays):
        return None
    minute = local.hour * 60 + local.minute
    for weekday, start, end in door.unlock_windows:
        if weekday == local.weekday() and start <= minute < end:
            return f"{local.date().isoformat()}@{start}"
    return None


def desired(
    door: DoorRecord, now: datetime, tz: ZoneInfo, holidays: Iterable[date] = (), first_in: str | None = None
) -> Hold:
    """The lock state `door` should be held in; `first_in` is the window in which someone was last granted entry."""
    if door.mode is DoorMode.EMERGENCY_RELEASE:
        return Hold(True, door.mode.value)
    if door.mode is DoorMode.LOCKDOWN:
        return Hold(False, door.mode.value)
    window = current_window(door, now, tz, holidays)
    if window is None:
        return Hold(False, DoorMode.NORMAL.value)
    if door.first_person_in and first_in != window:
        return Hold(False, DoorMode.NORMAL.value, window)
    return Hold(True, SCHEDULED, window)
