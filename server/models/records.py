"""Append-only records: access events, audit entries and the per-site change journal."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gatehouse_core.wire.messages import Decision, EntryMethod
from server.models.base import Base, UTCDateTime, str_enum, utcnow


class AccessEvent(Base):
    """One decision at a door, as the terminal reported it; never an image."""

    __tablename__ = "access_events"
    __table_args__ = (
        Index("ix_access_events_site_time", "site_id", "occurred_at"),
        # The events log filtered by door or terminal, newest first.
        Index("ix_access_events_door_time", "door_id", "occurred_at"),
        Index("ix_access_events_terminal_time", "terminal_id", "occurred_at"),
        # A site's events of one decision, newest first (ties by id, as the log pages): alarms are rare, and
        # without it the log reads every event to find a page of them (migration 0019; the dashboard, which once
        # counted from a wider index, reads the daily counts).
        Index("ix_access_events_site_decision_time", "site_id", "decision", "occurred_at", "id"),
        # A visitor pass's entries, for the resident who issued it.
        Index("ix_access_events_pass_time", "pass_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Terminal-generated UUID; stored exactly once however often it is delivered.
    event_uid: Mapped[str] = mapped_column(String(36), unique=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    terminal_id: Mapped[int | None] = mapped_column(ForeignKey("terminals.id", ondelete="SET NULL"))
    door_id: Mapped[int | None] = mapped_column(ForeignKey("doors.id", ondelete="SET NULL"))
    person_pseudonym: Mapped[str | None] = mapped_column(String(32), index=True)
    pass_id: Mapped[int | None] = mapped_column(ForeignKey("visitor_passes.id", ondelete="SET NULL"))
    method: Mapped[EntryMethod] = mapped_column(str_enum(EntryMethod))
    decision: Mapped[Decision] = mapped_column(str_enum(Decision, length=8))
    reason: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Decided by a terminal that had not heard from the server for its site's max_offline_hours.
    past_offline_bound: Mapped[bool] = mapped_column(Boolean, default=False)


class EventDayCount(Base):
    """How many access events of one kind a site had on one of its calendar days (its time zone): a rollup.

    Counted in the transaction that stores each event (services.reports.day_counts), so the dashboard reads a
    few rows per site and day instead of the events. Only counts: no person, pseudonym or credential value, so
    retention and erasure of events leave it alone. `door_id` is the door of a granted entry, else 0 (refusals and
    alarms are counted per site); no foreign key: a removed door's counts stay, and the unique key needs no NULLs
    (which never conflict).
    `enrolled`: a granted entry by someone with a face template under a live consent when the event was stored.
    """

    __tablename__ = "event_day_counts"
    # The dimensions, led by those the dashboard reads by: a site's days of one decision are one range of it.
    __table_args__ = (
        UniqueConstraint(
            "site_id", "decision", "day", "method", "door_id", "reason", "enrolled", name="uq_event_day_counts_key"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    door_id: Mapped[int] = mapped_column(Integer)
    method: Mapped[EntryMethod] = mapped_column(str_enum(EntryMethod))
    decision: Mapped[Decision] = mapped_column(str_enum(Decision, length=8))
    reason: Mapped[str] = mapped_column(String(32))
    enrolled: Mapped[bool] = mapped_column(Boolean)
    count: Mapped[int] = mapped_column(Integer)


class AuditEntry(Base):
    """Who did what to which record, when; details never hold biometric data or credential values."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("console_users.id", ondelete="SET NULL"))
    actor_label: Mapped[str] = mapped_column(String(120))  # kept if the user row is later removed
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="SET NULL"))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class JournalKind(enum.StrEnum):
    """Changes that door terminals must learn about."""

    GRANT = "grant"
    REVOKE = "revoke"
    CREDENTIAL_ADD = "credential_add"
    CREDENTIAL_REVOKE = "credential_revoke"
    TEMPLATE_ADD = "template_add"
    TEMPLATE_DELETE = "template_delete"
    PASS_ISSUE = "pass_issue"  # noqa: S105 - visitor pass, not a password
    PASS_CONSUME = "pass_consume"  # noqa: S105
    PASS_REVOKE = "pass_revoke"  # noqa: S105
    DOOR_POLICY = "door_policy"
    SCHEDULE = "schedule"
    PERSON_STATUS = "person_status"
    # A person's face consent changed (renewed, stale): their templates join or leave terminals' rosters.
    FACE_CONSENT = "face_consent"
    # Something changed for everyone at the site (a new notice or face model): every terminal takes a snapshot.
    ROSTER_RESET = "roster_reset"


class JournalEntry(Base):
    """One change in a site's journal, written in the same transaction as the change (outbox)."""

    __tablename__ = "journal_entries"
    __table_args__ = (UniqueConstraint("site_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[JournalKind] = mapped_column(str_enum(JournalKind, length=24))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ConsoleRole(enum.StrEnum):
    """What a console user may do."""

    ADMIN = "admin"
    MANAGER = "manager"
    GUARD = "guard"
