"""Console work that outlives one request: terminal commands, CSV imports, sign-in attempts and sessions."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from gatehouse_core.wire.messages import CommandOp
from server.models.base import Base, UTCDateTime, str_enum, utcnow


class CommandStatus(enum.StrEnum):
    """Where a command is: queued in the database, published, answered, or given up."""

    PENDING = "pending"
    SENT = "sent"
    DONE = "done"
    FAILED = "failed"
    EXPIRED = "expired"


class TerminalCommand(Base):
    """A command for one terminal, written by the console and published by the worker (never retained)."""

    __tablename__ = "terminal_commands"
    __table_args__ = (Index("ix_terminal_commands_status", "status", "expires_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Random 32-hex id carried on the wire: the terminal's reply names it, and a replay is refused.
    ref: Mapped[str] = mapped_column(String(32), unique=True)
    terminal_id: Mapped[int] = mapped_column(ForeignKey("terminals.id", ondelete="CASCADE"), index=True)
    # The wire's own enum: the column stores its values, so what the console queues is what the terminal reads.
    op: Mapped[CommandOp] = mapped_column(str_enum(CommandOp, name="commandop"))
    door_id: Mapped[int | None] = mapped_column(ForeignKey("doors.id", ondelete="CASCADE"))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("console_users.id", ondelete="SET NULL"))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[CommandStatus] = mapped_column(
        str_enum(CommandStatus, name="commandstatus"), default=CommandStatus.PENDING
    )
    # A short machine code for the outcome (e.g. "enrolled", "duplicate_card", "no_such_door").
    outcome: Mapped[str | None] = mapped_column(String(32))
    # What the outcome produced, e.g. the id of the credential a captured card became; never a card UID.
    credential_id: Mapped[int | None] = mapped_column(ForeignKey("credentials.id", ondelete="SET NULL"))


class ImportStatus(enum.StrEnum):
    """A bulk import's progress."""

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ImportJob(Base):
    """A CSV import of people: progress and per-row errors, so any console instance can show them."""

    __tablename__ = "import_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    started_by: Mapped[int | None] = mapped_column(ForeignKey("console_users.id", ondelete="SET NULL"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    filename: Mapped[str] = mapped_column(String(255))
    status: Mapped[ImportStatus] = mapped_column(str_enum(ImportStatus, name="importstatus"))
    total_rows: Mapped[int] = mapped_column(Integer, default=0)
    done_rows: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    # [{"row": 7, "field": "date_of_birth", "message": "..."}]: row numbers and reasons, never row contents.
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class LoginAttempt(Base):
    """A sign-in attempt, console or phone app, kept briefly so repeated guessing is slowed down across instances.

    The row is written before the password is checked and deleted when it was right, so a row is a failure or a
    check still running; attempts of the two surfaces are counted apart.
    """

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_surface_username", "surface", "username", "at"),
        Index("ix_login_attempts_surface_address", "surface", "address", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    surface: Mapped[str] = mapped_column(String(8))  # login_throttle.Surface: "console" or "app"
    # The console username lower-cased; for the app "account:<id>" once the login names an account.
    username: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConsoleSession(Base):
    """One signed-in console browser; logging out deletes it, so a copy of the browser's cookie stops working."""

    __tablename__ = "console_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("console_users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 of the token in the cookie
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
