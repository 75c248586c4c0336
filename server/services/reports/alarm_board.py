"""The dashboard's alarms: every open alarm of every kind, from the one alarms table, and terminals' recent ones.

Every alarm is in the alarms table (server/services/operations/alarms.py): the ones the server raises (an
erasure a terminal has not confirmed, the face count near its filing threshold, a terminal over its snapshot
budget or silent too long) and the ones terminals raise as events (a door forced or held open, a keypad locked
after repeated wrong codes, tampering). Open alarms are counted by severity and kind, most severe and newest
listed first; terminal alarms resolved in the last RECENT_DAYS days are listed after them, so one that ended
by itself (a door closed again) is still seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select

from server.models import Alarm, AlarmKind, AlarmSeverity, Door, Site, Terminal, utcnow
from server.services.operations.alarms import SEVERITY_ORDER, TERMINAL_KINDS
from server.services.session import DbSession

# Terminal alarms resolved in the last this many days are listed after the open ones.
RECENT_DAYS = 7
# How many alarms of each list the dashboard shows before saying "and N more".
SHOWN = 10


@dataclass(frozen=True)
class AlarmLine:
    """An alarm as the dashboard lists it, with the names of its site, door and terminal."""

    alarm: Alarm
    site: str | None
    timezone: str | None
    door: str | None
    terminal: str | None


@dataclass(frozen=True)
class AlarmBoard:
    """Open alarms (counted by severity and kind, the most urgent listed) and terminal alarms resolved lately."""

    alarms: list[AlarmLine]  # open: most severe first, then newest; at most SHOWN
    count: int  # every open alarm
    severities: list[tuple[AlarmSeverity, int]]  # most severe first
    kinds: list[tuple[AlarmKind, int]]  # most frequent first
    resolved: list[AlarmLine]  # terminal alarms resolved in the last RECENT_DAYS days, newest first; at most SHOWN
    resolved_count: int

    @property
    def total(self) -> int:
        """Every open alarm (the dashboard's figure)."""
        return self.count

    @property
    def server_alarms(self) -> list[Alarm]:
        """The open alarms listed (as the dashboard's figures carry them)."""
        return [line.alarm for line in self.alarms]


def alarm_board(session: DbSession, at: datetime | None = None) -> AlarmBoard:
    """Open alarms and recently resolved terminal alarms at `at`: two counts and two short lists."""
    at = at or utcnow()
    is_open = Alarm.resolved_at.is_(None)
    counted = session.execute(
        select(Alarm.severity, Alarm.kind, func.count()).where(is_open).group_by(Alarm.severity, Alarm.kind)
    ).all()
    severities: dict[AlarmSeverity, int] = {}
    kinds: dict[AlarmKind, int] = {}
    for severity, kind, count in counted:
        severities[severity] = severities.get(severity, 0) + count
        kinds[kind] = kinds.get(kind, 0) + count
    rank = case({severity.value: i for i, severity in enumerate(SEVERITY_ORDER)}, value=Alarm.severity, else_=9)
    listed = _lines(session, _named().where(is_open).order_by(rank, Alarm.raised_at.desc(), Alarm.id.desc()))
    lately = (Alarm.resolved_at >= at - timedelta(days=RECENT_DAYS), Alarm.kind.in_(TERMINAL_KINDS))
    resolved_count = session.scalar(select(func.count()).select_from(Alarm).where(*lately)) or 0
    resolved = (
        _lines(session, _named().where(*lately).order_by(Alarm.resolved_at.desc(), Alarm.id.desc()))
        if resolved_count
        else []
    )
    return AlarmBoard(
        alarms=listed,
        count=sum(severities.values()),
        severities=[(s, severities[s]) for s in SEVERITY_ORDER if s in severities],
        kinds=sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0].value)),
        resolved=resolved,
        resolved_count=resolved_count,
    )


def _named() -> Any:
    return (
        select(Alarm, Site.name, Site.timezone, Door.name, Terminal.name)
        .outerjoin(Site, Site.id == Alarm.site_id)
        .outerjoin(Door, Door.id == Alarm.door_id)
        .outerjoin(Terminal, Terminal.id == Alarm.terminal_id)
    )


def _lines(session: DbSession, stmt: Any) -> list[AlarmLine]:
    return [AlarmLine(*row) for row in session.execute(stmt.limit(SHOWN))]
