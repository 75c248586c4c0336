"""Console users, their passwords (Argon2id through argon2-cffi) and their browser sessions."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select

from server.models import ConsoleRole, ConsoleUser, utcnow
from server.models.console import ConsoleSession
from server.services import audit
from server.services.audit import Actor
from server.services.errors import Conflict, RuleViolation
from server.services.session import DbSession

# Argon2id with RFC 9106's second recommended setting (64 MiB, 3 passes), the library's default.
PASSWORD_PROFILE = profiles.RFC_9106_LOW_MEMORY
_hasher = PasswordHasher.from_parameters(PASSWORD_PROFILE)
# Verifying against this keeps the response time the same for unknown usernames.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
MIN_PASSWORD_LENGTH = 12
_USERNAME = re.compile(r"^[a-zA-Z0-9_.-]{3,64}$")
# How long a console sign-in lasts (the browser's signed cookie expires then too).
SESSION_LIFETIME = timedelta(hours=8)


def hash_password(password: str) -> str:
    """An Argon2id hash of `password` (console users and residents' app accounts)."""
    return _hasher.hash(password)


def check_password(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches; a missing hash takes as long as a wrong password and fails."""
    try:
        _hasher.verify(password_hash or _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return False
    return password_hash is not None


def needs_rehash(password_hash: str) -> bool:
    """Whether a stored hash was made with weaker settings than today's."""
    return _hasher.check_needs_rehash(password_hash)


def generate_password() -> str:
    """A random password for first logins and the demo."""
    return secrets.token_urlsafe(15)


def create_user(session: DbSession, actor: Actor, username: str, password: str, role: ConsoleRole) -> ConsoleUser:
    """Add a console user; passwords shorter than 12 characters are refused."""
    if not _USERNAME.fullmatch(username):
        raise RuleViolation("A username has 3 to 64 letters, digits, '.', '_' or '-'.", code="bad_username")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise RuleViolation(f"A password needs at least {MIN_PASSWORD_LENGTH} characters.", code="weak_password")
    if session.scalar(select(ConsoleUser.id).where(func.lower(ConsoleUser.username) == username.lower())):
        raise Conflict(f"A user named {username!r} already exists; choose another username.", code="duplicate_user")
    user = ConsoleUser(username=username, password_hash=hash_password(password), role=role)
    session.add(user)
    session.flush()
    audit.record(session, actor, "user.create", "console_user", user.id, details={"role": role.value})
    return user


def set_password(session: DbSession, actor: Actor, user: ConsoleUser, password: str) -> None:
    """Replace a user's password and end their other sessions."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise RuleViolation(f"A password needs at least {MIN_PASSWORD_LENGTH} characters.", code="weak_password")
    user.password_hash = hash_password(password)
    user.session_epoch += 1
    audit.record(session, actor, "user.set_password", "console_user", user.id)


def authenticate(session: DbSession, username: str, password: str) -> ConsoleUser | None:
    """The active user with these credentials, or None; takes the same time for unknown users."""
    user = session.scalar(select(ConsoleUser).where(func.lower(ConsoleUser.username) == username.lower()))
    if not check_password(user.password_hash if user else None, password) or user is None or not user.active:
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    return user


def start_session(session: DbSession, user: ConsoleUser, at: datetime | None = None) -> str:
    """Start a console session for `user` and return its id for the browser's session ('user:epoch:token').

    The session is a row as well as a cookie, so logging out can end it on the server; rows older than
    SESSION_LIFETIME (when the cookie has expired anyway) are deleted as new ones start.
    """
    at = at or utcnow()
    session.execute(delete(ConsoleSession).where(ConsoleSession.started_at <= at - SESSION_LIFETIME))
    token = secrets.token_urlsafe(24)
    session.add(ConsoleSession(user_id=user.id, token_hash=_token_hash(token), started_at=at))
    return f"{user.get_id()}:{token}"


def end_session(session: DbSession, session_id: str) -> None:
    """Log one browser out: its session id stops working everywhere, copies of its cookie included."""
    parts = session_id.split(":")
    if len(parts) == 3:
        session.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == _token_hash(parts[2])))


def log_out_everywhere(session: DbSession, user: ConsoleUser) -> None:
    """End every console session of `user`, on every browser and device, and audit it."""
    user.session_epoch += 1
    session.execute(delete(ConsoleSession).where(ConsoleSession.user_id == user.id))
    audit.record(session, Actor.of(user), "user.logout_everywhere", "console_user", user.id)


def load_session_user(session: DbSession, session_id: str, at: datetime | None = None) -> ConsoleUser | None:
    """Resolve a browser's session id ('user:epoch:token'); stale epochs and ended or expired sessions are refused."""
    parts = session_id.split(":")
    if len(parts) != 3 or not all(parts):
        return None
    try:
        user_id, epoch = int(parts[0]), int(parts[1])
    except ValueError:
        return None
    user = session.get(ConsoleUser, user_id)
    if user is None or not user.active or user.session_epoch != epoch:
        return None
    since = (at or utcnow()) - SESSION_LIFETIME
    live = select(ConsoleSession.id).where(
        ConsoleSession.token_hash == _token_hash(parts[2]),
        ConsoleSession.user_id == user.id,
        ConsoleSession.started_at > since,
    )
    return user if session.scalar(live) is not None else None


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def admin_exists(session: DbSession) -> bool:
    """Whether at least one active admin can log in."""
    stmt = select(ConsoleUser.id).where(ConsoleUser.role == ConsoleRole.ADMIN, ConsoleUser.active.is_(True))
    return session.scalar(stmt.limit(1)) is not None
