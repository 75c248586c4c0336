"""One way to show a moment everywhere: the site's time zone, 24-hour, with the zone named and its UTC offset.

'2026-12-07 16:05 (Asia/Shanghai, UTC+8)'. Never a zone abbreviation: 'CST' is China, Cuba and the US Midwest.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select

from server.models import Site
from server.services.session import DbSession

UTC_NAME = "UTC"


def zone(timezone: str | None) -> ZoneInfo:
    """The IANA zone named `timezone`; UTC when none is given or the name is unknown."""
    try:
        return ZoneInfo(timezone or UTC_NAME)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(UTC_NAME)


def offset_text(offset: timedelta | None) -> str:
    """A UTC offset as 'UTC+8', 'UTC+5:30', 'UTC-3' or 'UTC'."""
    minutes = int((offset or timedelta()).total_seconds() // 60)
    if minutes == 0:
        return UTC_NAME
    sign = "+" if minutes > 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")


def zone_text(timezone: str | None, at: datetime | None = None) -> str:
    """The zone as shown beside a time: 'Asia/Shanghai, UTC+8' (the offset at `at`, or now), or 'UTC'."""
    tz = zone(timezone)
    name = str(tz.key)
    if name in (UTC_NAME, "Etc/UTC"):
        return UTC_NAME
    moment = (at or datetime.now(UTC)).astimezone(tz)
    return f"{name}, {offset_text(moment.utcoffset())}"


def site_time(value: datetime, timezone: str | None, *, seconds: bool = False) -> str:
    """`value` in the site's zone, 24-hour, zone shown: '2026-12-07 16:05 (Asia/Shanghai, UTC+8)'."""
    local = value.astimezone(zone(timezone))
    clock = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    return f"{local.strftime(clock)} ({zone_text(timezone, value)})"


def site_window(start: datetime, end: datetime, timezone: str | None) -> str:
    """A span in the site's zone: '2026-05-03 14:00\u201318:00 (Asia/Shanghai, UTC+8)', dated if it ends another day."""
    tz = zone(timezone)
    first, last = start.astimezone(tz), end.astimezone(tz)
    until = f"{last:%H:%M}" if first.date() == last.date() else f"{last:%Y-%m-%d %H:%M}"
    return f"{first:%Y-%m-%d %H:%M}\u2013{until} ({zone_text(timezone, start)})"


def iso_local(value: datetime, timezone: str | None) -> str:
    """ISO 8601 in the site's zone with its offset, for files: '2026-12-07T16:05:00+08:00'."""
    return value.astimezone(zone(timezone)).isoformat()


def home_timezone(session: DbSession) -> str:
    """The zone for records that belong to no site (audit log, imports): the first site's, or UTC before any site."""
    found = session.scalar(select(Site.timezone).order_by(Site.id).limit(1))
    return found or UTC_NAME
