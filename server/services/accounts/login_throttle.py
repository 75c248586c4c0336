"""Slowing down password guessing at the console: failed logins per username and per address.

Failures are rows in the database rather than counters in one process, so the limit holds across
every console instance and survives a restart. Old rows are deleted as new ones arrive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select

from server.models import LoginAttempt, utcnow
from server.services.session import DbSession

WINDOW = timedelta(minutes=15)
MAX_PER_USERNAME = 5
MAX_PER_ADDRESS = 20


@dataclass(frozen=True)
class Throttle:
    """Whether a login may be tried now, and if not, for how long to wait."""

    allowed: bool
    retry_after_s: int = 0


def check(session: DbSession, username: str, address: str, at: datetime | None = None) -> Throttle:
    """Refuse once a username or an address has failed too often within the window."""
    at = at or utcnow()
    since = at - WINDOW
    for column, value, limit in (
        (LoginAttempt.username, username.lower()[:64], MAX_PER_USERNAME),
        (LoginAttempt.address, address[:64], MAX_PER_ADDRESS),
    ):
        stmt = select(func.count(), func.min(LoginAttempt.at)).where(column == value, LoginAttempt.at > since)
        count, oldest = session.execute(stmt).one()
        if count >= limit and oldest is not None:
            wait = oldest + WINDOW - at
            return Throttle(False, max(1, int(wait.total_seconds()) + 1))
    return Throttle(True)


def record_failure(session: DbSession, username: str, address: str, at: datetime | None = None) -> None:
    """Remember one failed attempt and forget those older than the window."""
    at = at or utcnow()
    session.execute(delete(LoginAttempt).where(LoginAttempt.at <= at - WINDOW))
    session.add(LoginAttempt(username=username.lower()[:64], address=address[:64], at=at))


def clear(session: DbSession, username: str) -> None:
    """A successful login forgets this username's failures (an address's failures for others stay)."""
    session.execute(delete(LoginAttempt).where(LoginAttempt.username == username.lower()[:64]))
