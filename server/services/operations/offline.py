"""Terminals cut off from the server: an alarm after the site's `offline_alarm_minutes` of silence, ended when
the terminal is heard from again.

A terminal is silent when its availability is not "online" (its last will said offline, or it was never seen
online since) and it was last seen longer ago than its site allows. The alarm's ref is the terminal and when it
was last seen, so each outage raises one alarm however often the worker checks, and the next outage its own.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select

from server.models import Alarm, AlarmKind, Site, Terminal, TerminalStatus, utcnow
from server.services.operations import alarms
from server.services.session import DbSession

log = logging.getLogger(__name__)

BACK_ONLINE = "The terminal is back online."


def check_offline(session: DbSession, at: datetime | None = None) -> int:
    """Raise an alarm for each terminal silent past its site's bound (once per outage) and resolve those of
    terminals online again or removed; how many raised. No commit."""
    at = at or utcnow()
    # One open alarm per terminal: a worker restart re-reads a retained "offline", which moves last_seen_at on.
    alarmed = select(Alarm.terminal_id).where(
        Alarm.kind == AlarmKind.TERMINAL_OFFLINE, Alarm.resolved_at.is_(None), Alarm.terminal_id.is_not(None)
    )
    silent = session.execute(
        select(Terminal, Site)
        .join(Site, Site.id == Terminal.site_id)
        .where(
            Terminal.status != TerminalStatus.ONLINE,
            Terminal.last_seen_at.is_not(None),
            Terminal.id.not_in(alarmed),
        )
        .order_by(Terminal.id)
    ).all()
    new = [
        alarms.NewAlarm(
            kind=AlarmKind.TERMINAL_OFFLINE,
            ref=offline_ref(terminal),
            site_id=site.id,
            message=_message(terminal, site),
            terminal_id=terminal.id,
            at=at,
        )
        for terminal, site in silent
        if terminal.last_seen_at is not None
        and terminal.last_seen_at <= at - timedelta(minutes=site.offline_alarm_minutes)
    ]
    raised = alarms.raise_alarms(session, new)
    for alarm in raised:
        log.warning("terminal %s silent past its site's bound: alarm %d raised", alarm.ref, alarm.id)
    back = session.scalars(
        select(Alarm.id)
        .outerjoin(Terminal, Terminal.id == Alarm.terminal_id)
        .where(
            Alarm.kind == AlarmKind.TERMINAL_OFFLINE,
            Alarm.resolved_at.is_(None),
            (Terminal.id.is_(None)) | (Terminal.status == TerminalStatus.ONLINE),
        )
    ).all()
    if back:
        alarms.resolve_cause(session, AlarmKind.TERMINAL_OFFLINE, ids=back, at=at, comment=BACK_ONLINE)
    return len(raised)


def terminal_seen(session: DbSession, terminal: Terminal, at: datetime | None = None) -> int:
    """The terminal is online again (its status or birth): end its offline alarm; how many ended. No commit."""
    return alarms.resolve_cause(
        session, AlarmKind.TERMINAL_OFFLINE, terminal_id=terminal.id, at=at, comment=BACK_ONLINE
    )


def offline_ref(terminal: Terminal) -> str:
    """One outage of a terminal: its id and when it was last seen."""
    seen = terminal.last_seen_at.isoformat(timespec="seconds") if terminal.last_seen_at else "never"
    return f"{terminal.id}@{seen}"


def _message(terminal: Terminal, site: Site) -> str:
    seen = f"{terminal.last_seen_at:%Y-%m-%d %H:%M} UTC" if terminal.last_seen_at else "never"
    return (
        f"Terminal {terminal.name} ({terminal.ident}) has not been heard from since {seen}, longer than the "
        f"site's {site.offline_alarm_minutes} minutes. It keeps deciding with what it holds, so revocations do "
        f"not reach it; after {site.max_offline_hours} h cut off it applies the site's offline policy. Check its "
        "network and power. This alarm clears by itself when the terminal is back online."
    )
