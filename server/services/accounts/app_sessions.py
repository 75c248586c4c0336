"""Phone-app sessions: short-lived access tokens, rotating refresh tokens, and revocation that takes effect at once.

An access token is a JWT (HS256, PyJWT) naming the account and the session, valid for minutes. Every request
also loads the session row, so signing out, a password change, a manager turning the app off or the person
moving out stops the very next request, not when the token runs out. A refresh token is random, kept only as
its SHA-256, and replaced on every use; presenting a replaced one again means it was copied, so the session
ends for both holders.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from server.models import AppSession, Person, ResidentAccount, SessionEnd, utcnow
from server.services import audit
from server.services.accounts.app_accounts import end_sessions, may_sign_in, resident_actor
from server.services.errors import DomainError, NotFound
from server.services.session import DbSession

ISSUER = "gatehouse"
AUDIENCE = "gatehouse-mobile"
REFRESH_PREFIX = "ghr_"
_ALGORITHM = "HS256"


class TokenRefused(DomainError):
    """A missing, malformed, expired or revoked token: the app must refresh or sign in again."""

    code = "token_invalid"
    http_status = 401


@dataclass(frozen=True)
class TokenPolicy:
    """How long tokens last and how many devices an account may have signed in."""

    access_ttl: timedelta = timedelta(minutes=10)
    refresh_ttl: timedelta = timedelta(days=30)
    session_max_age: timedelta = timedelta(days=180)
    max_sessions: int = 10


@dataclass(frozen=True)
class IssuedTokens:
    """What a sign-in or a refresh returns to the app (the refresh token is shown this once)."""

    access_token: str
    access_expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime
    session: AppSession


@dataclass(frozen=True)
class Resident:
    """The signed-in resident of one request."""

    account: ResidentAccount
    person: Person
    app_session: AppSession


def access_key(session_secret: bytes) -> bytes:
    """The HMAC key of access tokens, derived from the server's session secret (never the secret itself)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"gatehouse mobile access token v1").derive(
        session_secret
    )


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_refresh() -> str:
    return REFRESH_PREFIX + secrets.token_urlsafe(32)


def _access_token(key: bytes, app_session: AppSession, now: datetime, policy: TokenPolicy) -> tuple[str, datetime]:
    expires = now + policy.access_ttl
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(app_session.account_id),
        "sid": app_session.id,
        "iat": int(now.timestamp()),
        "exp": int(expires.timestamp()),
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, key, algorithm=_ALGORITHM), expires.replace(microsecond=0)


def start_session(
    session: DbSession, key: bytes, account: ResidentAccount, policy: TokenPolicy, *, device: str = "", how: str
) -> IssuedTokens:
    """Sign a device in (after a password or one-time code was checked); ends the oldest beyond the device cap."""
    now = utcnow()
    live = session.scalars(
        select(AppSession)
        .where(
            AppSession.account_id == account.id,
            AppSession.revoked_at.is_(None),
            AppSession.refresh_expires_at > now,
        )
        .order_by(AppSession.last_used_at, AppSession.id)
    ).all()
    for old in live[: max(0, len(live) - policy.max_sessions + 1)]:
        old.revoked_at = now
        old.revoked_reason = SessionEnd.REPLACED
    refresh = _new_refresh()
    app_session = AppSession(
        account=account,
        refresh_hash=_digest(refresh),
        device=" ".join(device.split())[:120],
        created_at=now,
        last_used_at=now,
        refresh_expires_at=now + policy.refresh_ttl,
    )
    session.add(app_session)
    account.last_login_at = now
    session.flush()
    audit.record(
        session,
        resident_actor(account.person),
        "app.sign_in",
        "person",
        account.person_id,
        site_id=account.person.site_id,
        details={"session": app_session.id, "how": how},
    )
    access, access_expires = _access_token(key, app_session, now, policy)
    return IssuedTokens(access, access_expires, refresh, app_session.refresh_expires_at, app_session)


def refresh(session: DbSession, key: bytes, refresh_token: str, policy: TokenPolicy) -> IssuedTokens:
    """Swap a refresh token for a new pair; a replayed old token ends its session."""
    now = utcnow()
    if not refresh_token.startswith(REFRESH_PREFIX) or len(refresh_token) > 100:
        raise TokenRefused("This is not a refresh token; sign in again.", code="refresh_invalid")
    digest = _digest(refresh_token)
    app_session = session.scalar(select(AppSession).where(AppSession.refresh_hash == digest))
    if app_session is None:
        reused = session.scalar(select(AppSession).where(AppSession.previous_refresh_hash == digest))
        if reused is not None and reused.revoked_at is None:
            reused.revoked_at = now
            reused.revoked_reason = SessionEnd.REFRESH_REUSED
            audit.record(
                session,
                resident_actor(reused.account.person),
                "app.refresh_reused",
                "person",
                reused.account.person_id,
                site_id=reused.account.person.site_id,
                details={"session": reused.id},
            )
            raise TokenRefused(
                "This refresh token was already used, so it may have been copied: this device is signed out. "
                "Sign in again.",
                code="refresh_reused",
            )
        raise TokenRefused("This refresh token is unknown or was replaced; sign in again.", code="refresh_invalid")
    if app_session.revoked_at is not None:
        raise TokenRefused("This session was signed out; sign in again.", code="session_revoked")
    if app_session.refresh_expires_at <= now or app_session.created_at + policy.session_max_age <= now:
        raise TokenRefused("This session has expired; sign in again.", code="refresh_expired")
    if not may_sign_in(app_session.account):
        raise TokenRefused("The app is not available to this account any more.", code="account_disabled")
    new_refresh = _new_refresh()
    app_session.previous_refresh_hash = digest
    app_session.refresh_hash = _digest(new_refresh)
    app_session.last_used_at = now
    app_session.refresh_expires_at = min(now + policy.refresh_ttl, app_session.created_at + policy.session_max_age)
    access, access_expires = _access_token(key, app_session, now, policy)
    return IssuedTokens(access, access_expires, new_refresh, app_session.refresh_expires_at, app_session)


def authenticate_access(session: DbSession, key: bytes, token: str) -> Resident:
    """The resident an access token belongs to, if the token is genuine, current and its session still live."""
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[_ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "sid", "aud", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenRefused("The access token has expired; refresh it.", code="token_expired") from None
    except jwt.PyJWTError:
        raise TokenRefused("The access token is not valid; sign in again.", code="token_invalid") from None
    sid = claims.get("sid")
    if not isinstance(sid, int) or isinstance(sid, bool):
        raise TokenRefused("The access token is not valid; sign in again.", code="token_invalid")
    app_session = session.scalar(
        select(AppSession)
        .where(AppSession.id == sid)
        .options(joinedload(AppSession.account).joinedload(ResidentAccount.person))
    )
    if app_session is None or str(app_session.account_id) != claims.get("sub"):
        raise TokenRefused("The access token is not valid; sign in again.", code="token_invalid")
    if app_session.revoked_at is not None:
        raise TokenRefused("This session was signed out; sign in again.", code="session_revoked")
    if not may_sign_in(app_session.account):
        raise TokenRefused("The app is not available to this account any more.", code="account_disabled")
    return Resident(app_session.account, app_session.account.person, app_session)


def end_session(session: DbSession, resident: Resident, reason: SessionEnd = SessionEnd.LOGOUT) -> None:
    """Sign the current device out: its access and refresh tokens stop working at once."""
    _sign_out(session, resident, resident.app_session, reason, {})


def _sign_out(
    session: DbSession, resident: Resident, app_session: AppSession, reason: SessionEnd, details: dict[str, object]
) -> None:
    """Revoke one of the resident's sessions and audit it."""
    app_session.revoked_at = utcnow()
    app_session.revoked_reason = reason
    audit.record(
        session,
        resident_actor(resident.person),
        "app.sign_out",
        "person",
        resident.person.id,
        site_id=resident.person.site_id,
        details={"session": app_session.id, "reason": reason.value, **details},
    )


def live_sessions(session: DbSession, account: ResidentAccount) -> list[AppSession]:
    """The account's signed-in devices, most recently used first."""
    return list(
        session.scalars(
            select(AppSession)
            .where(
                AppSession.account_id == account.id,
                AppSession.revoked_at.is_(None),
                AppSession.refresh_expires_at > utcnow(),
            )
            .order_by(AppSession.last_used_at.desc(), AppSession.id.desc())
        )
    )


def end_all_sessions(session: DbSession, resident: Resident) -> int:
    """Sign every device of the resident out, this one included; returns how many."""
    ended = end_sessions(session, resident.account, SessionEnd.LOGOUT_ALL)
    audit.record(
        session,
        resident_actor(resident.person),
        "app.sign_out_all",
        "person",
        resident.person.id,
        site_id=resident.person.site_id,
        details={"ended": ended},
    )
    return ended


def end_device(session: DbSession, resident: Resident, session_id: int) -> None:
    """Sign one of the resident's own devices out; another account's or an ended session is not found."""
    app_session = session.scalar(
        select(AppSession).where(
            AppSession.id == session_id,
            AppSession.account_id == resident.account.id,
            AppSession.revoked_at.is_(None),
        )
    )
    if app_session is None:
        raise NotFound("You have no signed-in device with this id.", code="not_found")
    _sign_out(session, resident, app_session, SessionEnd.LOGOUT, {"from_session": resident.app_session.id})
