"""Residents' phone-app accounts, their signed-in devices, one-time login codes and the queue of asks for one."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.models.base import Base, UTCDateTime, str_enum, utcnow
from server.models.people import Person


class ResidentAccount(Base):
    """A resident's sign-in to the phone app: a username and/or the phone on file, and a password (Argon2id)."""

    __tablename__ = "resident_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), unique=True)
    # Lower-cased; optional: a resident may sign in by phone only.
    username: Mapped[str | None] = mapped_column(String(64), unique=True)
    # The person's phone as digits with an optional leading "+", kept in step with the person's record.
    phone_key: Mapped[str | None] = mapped_column(String(24), unique=True)
    # None until the resident sets one (after a one-time-code sign-in), or a manager gives a first one.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    person: Mapped[Person] = relationship()
    sessions: Mapped[list[AppSession]] = relationship(back_populates="account", cascade="all, delete-orphan")


class SessionEnd(enum.StrEnum):
    """Why a phone-app session ended before its refresh token ran out."""

    LOGOUT = "logout"
    LOGOUT_ALL = "logout_all"
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 - a reason, not a password
    REFRESH_REUSED = "refresh_reused"
    MANAGER = "manager"
    DISABLED = "disabled"
    REPLACED = "replaced"  # too many devices: the oldest session made room


class AppSession(Base):
    """One signed-in device: a rotating refresh token (kept as a SHA-256) and the access tokens made from it."""

    __tablename__ = "app_sessions"
    __table_args__ = (Index("ix_app_sessions_account", "account_id", "revoked_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("resident_accounts.id", ondelete="CASCADE"))
    refresh_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The token this one replaced: presenting it again means it was copied, and the session is ended.
    previous_refresh_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    device: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    refresh_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_reason: Mapped[SessionEnd | None] = mapped_column(str_enum(SessionEnd, length=24))

    account: Mapped[ResidentAccount] = relationship(back_populates="sessions")


class LoginCode(Base):
    """A one-time sign-in code sent to a resident's phone; only its keyed hash is kept, briefly."""

    __tablename__ = "login_codes"
    __table_args__ = (Index("ix_login_codes_account_time", "account_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("resident_accounts.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CodeRequestState(enum.StrEnum):
    """Where a queued ask for a sign-in code stands."""

    PENDING = "pending"
    SENT = "sent"
    # No account may receive a code for this login now (none, disabled, moved out, or its limit reached).
    DROPPED = "dropped"
    FAILED = "failed"  # the sender failed every try
    EXPIRED = "expired"  # waited too long for a deliverer: a code arriving now would be of no use


class LoginCodeRequest(Base):
    """An ask for a sign-in code, queued by the API and sent by its deliverer.

    The request only writes this row, whether or not the login has an account, so its answer and its timing
    are the same for both. The login is sealed and cleared once the row is done; the code is made at delivery
    and never stored here.
    """

    __tablename__ = "login_code_requests"
    __table_args__ = (Index("ix_login_code_requests_due", "state", "next_try_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # The username or phone as asked for, AES-GCM sealed under a key derived from the session secret.
    login_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    state: Mapped[CodeRequestState] = mapped_column(
        str_enum(CodeRequestState, length=12), default=CodeRequestState.PENDING
    )
    # Tries claimed so far; a claim sets it one higher only if no other deliverer did first.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When a deliverer may take the row next: now, after a back-off, or once a claimed try's lease runs out.
    next_try_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
