"""Sites, their doors and the door terminals that serve them."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, CheckConstraint, Column, ForeignKey, Integer, String, Table, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gatehouse_core.wire.records import OfflinePolicy
from server.models.base import Base, UTCDateTime, str_enum, utcnow

if TYPE_CHECKING:
    from server.models.access import AccessGroup


class Site(Base):
    """A compound, park, school or office with its own doors, people and journal."""

    __tablename__ = "sites"
    __table_args__ = (
        CheckConstraint(
            "minor_age BETWEEN 0 AND 25 AND event_retention_days >= 1 AND visitor_retention_days >= 0 "
            "AND template_unused_days >= 1 AND erasure_alarm_hours >= 1",
            name="privacy_settings_range",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)  # used in MQTT topics
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    minor_age: Mapped[int] = mapped_column(Integer, default=14)
    face_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    no_face_for_minors: Mapped[bool] = mapped_column(Boolean, default=True)
    # Residents may enroll their face from the phone app (after consent there); off unless a manager allows it.
    app_face_enrollment: Mapped[bool] = mapped_column(Boolean, default=False)
    # The face model templates are made with; a new one makes every consent stale (see services.privacy).
    face_model_id: Mapped[str | None] = mapped_column(String(64))
    # Retention: access events, visitor data after the pass ends, face templates not used for this long.
    event_retention_days: Mapped[int] = mapped_column(Integer, default=90)
    visitor_retention_days: Mapped[int] = mapped_column(Integer, default=30)
    template_unused_days: Mapped[int] = mapped_column(Integer, default=365)
    # A terminal that has not confirmed a deletion after this long raises an alarm.
    erasure_alarm_hours: Mapped[int] = mapped_column(Integer, default=24)
    # Terminals cut off from the server: after offline_alarm_minutes of silence the server raises an alarm; after
    # max_offline_hours without hearing from the server a terminal applies offline_policy (terminals/offline.py).
    offline_alarm_minutes: Mapped[int] = mapped_column(Integer, default=10)
    max_offline_hours: Mapped[int] = mapped_column(Integer, default=72)
    offline_policy: Mapped[OfflinePolicy] = mapped_column(
        str_enum(OfflinePolicy, length=16), default=OfflinePolicy.KEEP_RESIDENTS
    )
    # Last sequence number handed out in this site's change journal.
    journal_seq: Mapped[int] = mapped_column(Integer, default=0)
    # Highest sequence the worker has published to every terminal of the site (broker acknowledged).
    published_seq: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    doors: Mapped[list[Door]] = relationship(back_populates="site", order_by="Door.name")
    terminals: Mapped[list[Terminal]] = relationship(back_populates="site", order_by="Terminal.name")


class Door(Base):
    """An entrance and the entry methods it accepts."""

    __tablename__ = "doors"
    __table_args__ = (
        UniqueConstraint("site_id", "name"),
        # Principle 1, also held by the database: a face door always takes every other method.
        CheckConstraint(
            "NOT accepts_face OR (accepts_card AND accepts_id_document AND accepts_app_code)",
            name="face_never_alone",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    accepts_face: Mapped[bool] = mapped_column(Boolean, default=False)
    accepts_card: Mapped[bool] = mapped_column(Boolean, default=True)
    accepts_id_document: Mapped[bool] = mapped_column(Boolean, default=True)
    accepts_app_code: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    site: Mapped[Site] = relationship(back_populates="doors")
    terminals: Mapped[list[Terminal]] = relationship(secondary="terminal_doors", back_populates="doors")
    access_groups: Mapped[list[AccessGroup]] = relationship(secondary="access_group_doors", back_populates="doors")


terminal_doors = Table(
    "terminal_doors",
    Base.metadata,
    Column("terminal_id", ForeignKey("terminals.id", ondelete="CASCADE"), primary_key=True),
    Column("door_id", ForeignKey("doors.id", ondelete="CASCADE"), primary_key=True),
)


class TerminalStatus(enum.StrEnum):
    """Availability as last reported over MQTT."""

    UNKNOWN = "unknown"
    ONLINE = "online"
    OFFLINE = "offline"


class Terminal(Base):
    """A door terminal: its identity, the doors it serves and its broker credentials."""

    __tablename__ = "terminals"
    __table_args__ = (UniqueConstraint("site_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    # Stable identity used in MQTT topics and as the broker username.
    ident: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    # Broker password hash in mosquitto's PBKDF2-SHA512 format; the password itself is shown once.
    mqtt_password_hash: Mapped[str] = mapped_column(String(255))
    status: Mapped[TerminalStatus] = mapped_column(str_enum(TerminalStatus), default=TerminalStatus.UNKNOWN)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    applied_seq: Mapped[int] = mapped_column(Integer, default=0)
    software_version: Mapped[str | None] = mapped_column(String(64))
    last_ack_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    site: Mapped[Site] = relationship(back_populates="terminals")
    doors: Mapped[list[Door]] = relationship(secondary=terminal_doors, back_populates="terminals")

    @property
    def lag(self) -> int:
        """Journal changes the terminal has not yet acknowledged."""
        return max(0, self.site.journal_seq - self.applied_seq)
