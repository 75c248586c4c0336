"""Console users and their passwords (Argon2id through argon2-cffi)."""

from __future__ import annotations

import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select

from server.models import ConsoleRole, ConsoleUser, utcnow
from server.services import audit
from server.services.audit import Actor
from server.services.errors import Conflict, RuleViolation
from server.services.session import DbSession

_hasher = PasswordHasher()  # argon2id with the library's RFC 9106 defaults
# Verifying against this keeps the response time the same for unknown usernames.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
MIN_PASSWORD_LENGTH = 12
_USERNAME = re.compile(r"^[a-zA-Z0-9_.-]{3,64}$")


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
        raise Conflict(f"user {username!r} already exists", code="duplicate_user")
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


def load_session_user(session: DbSession, session_id: str) -> ConsoleUser | None:
    """Resolve a Flask-Login session id ('user:epoch'); stale epochs are refused."""
    try:
        user_id, epoch = (int(part) for part in session_id.split(":"))
    except ValueError:
        return None
    user = session.get(ConsoleUser, user_id)
    if user is None or not user.active or user.session_epoch != epoch:
        return None
    return user


def admin_exists(session: DbSession) -> bool:
    """Whether at least one active admin can log in."""
    stmt = select(ConsoleUser.id).where(ConsoleUser.role == ConsoleRole.ADMIN, ConsoleUser.active.is_(True))
    return session.scalar(stmt.limit(1)) is not None
