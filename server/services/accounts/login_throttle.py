"""Slowing down password guessing: failed sign-ins per login and per address, console and phone app apart.

Attempts are rows in the database rather than counters in one process, so the limits hold across every
instance and survive a restart. An attempt is written and committed before its password is checked, and counted
with every other row then, so concurrent attempts never check more passwords than the limit (on SQLite and
PostgreSQL, whichever process runs them); a right password deletes its login's rows. Old rows are deleted as new
ones arrive.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select

from server.models import LoginAttempt, utcnow
from server.services.session import DbSession

WINDOW = timedelta(minutes=15)
MAX_PER_USERNAME = 5
MAX_PER_ADDRESS = 20


class Surface(enum.StrEnum):
    """Where a sign-in happens; each counts its own failures, so phone-app guessing never locks out the console."""

    CONSOLE = "console"
    APP = "app"


@dataclass(frozen=True)
class Throttle:
    """Whether a login may be tried now, and if not, for how long to wait."""

    allowed: bool
    retry_after_s: int = 0


def record_attempt(
    session: DbSession, surface: Surface, username: str, address: str, at: datetime | None = None
) -> LoginAttempt:
    """Remember one attempt as failed until it proves right, and forget those older than the window."""
    at = at or utcnow()
    session.execute(delete(LoginAttempt).where(LoginAttempt.at <= at - WINDOW))
    attempt = LoginAttempt(surface=surface.value, username=username.lower()[:64], address=address[:64], at=at)
    session.add(attempt)
    session.flush()
    return attempt


def check(
    session: DbSession,
    surface: Surface,
    username: str,
    address: str,
    *,
    count_address: bool = True,
    at: datetime | None = None,
) -> Throttle:
    """Refuse once more than the limit of attempts for a login or an address, the one being made included, are on
    record within the window; `count_address=False` for a browser known to the login (the address limit is then
    not applied)."""
    at = at or utcnow()
    since = at - WINDOW
    limits = [(LoginAttempt.username, username.lower()[:64], MAX_PER_USERNAME)]
    if count_address:
        limits.append((LoginAttempt.address, address[:64], MAX_PER_ADDRESS))
    for column, value, limit in limits:
        stmt = select(func.count(), func.min(LoginAttempt.at)).where(
            LoginAttempt.surface == surface.value, column == value, LoginAttempt.at > since
        )
        count, oldest = session.execute(stmt).one()
        if count > limit and oldest is not None:
            wait = oldest + WINDOW - at
            return Throttle(False, max(1, int(wait.total_seconds()) + 1))
    return Throttle(True)


def withdraw(session: DbSession, attempt: LoginAttempt) -> None:
    """Forget an attempt that was refused before its password was checked (it guessed nothing)."""
    session.execute(delete(LoginAttempt).where(LoginAttempt.id == attempt.id))


def clear(session: DbSession, surface: Surface, username: str) -> None:
    """A right password forgets this login's failures (an address's failures for others stay)."""
    session.execute(
        delete(LoginAttempt).where(
            LoginAttempt.surface == surface.value, LoginAttempt.username == username.lower()[:64]
        )
    )
