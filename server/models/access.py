"""Access groups with weekly schedules and holidays, and visitor passes."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.models.base import Base, UTCDateTime, str_enum, utcnow
from server.models.people import Person
from server.models.site import Door, Site

access_group_doors = Table(
    "access_group_doors",
    Base.metadata,
    Column("group_id", ForeignKey("access_groups.id", ondelete="CASCADE"), primary_key=True),
    Column("door_id", ForeignKey("doors.id", ondelete="CASCADE"), primary_key=True),
)

access_group_members = Table(
    "access_group_members",
    Base.metadata,
    Column("group_id", ForeignKey("access_groups.id", ondelete="CASCADE"), primary_key=True),
    Column("person_id", ForeignKey("people.id", ondelete="CASCADE"), primary_key=True),
)


class AccessGroup(Base):
    """A set of people allowed through a set of doors during weekly windows (site-local time)."""

    __tablename__ = "access_groups"
    __table_args__ = (
        UniqueConstraint("site_id", "name"),
        # At most one usual group per site (partial unique index on both backends).
        Index(
            "uq_access_groups_usual_site",
            "site_id",
            unique=True,
            sqlite_where=text("usual"),
            postgresql_where=text("usual"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    # On a site holiday the weekly windows do not apply unless this is set.
    open_on_holidays: Mapped[bool] = mapped_column(Boolean, default=True)
    # The group new people of the site usually join (e.g. Residents): forms offer it first, never the A-Z first.
    usual: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    site: Mapped[Site] = relationship()
    doors: Mapped[list[Door]] = relationship(secondary=access_group_doors, back_populates="access_groups")
    members: Mapped[list[Person]] = relationship(secondary=access_group_members, back_populates="access_groups")
    windows: Mapped[list[WeeklyWindow]] = relationship(
        back_populates="group",
        cascade="all, delete-orphan",
        order_by="(WeeklyWindow.weekday, WeeklyWindow.start_minute)",
    )


class WeeklyWindow(Base):
    """One allowed interval on one weekday, in minutes from local midnight; [start, end)."""

    __tablename__ = "weekly_windows"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),
        CheckConstraint("start_minute >= 0 AND end_minute <= 1440 AND start_minute < end_minute", name="minute_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("access_groups.id", ondelete="CASCADE"), index=True)
    weekday: Mapped[int] = mapped_column(Integer)  # 0 = Monday, as datetime.weekday()
    start_minute: Mapped[int] = mapped_column(Integer)
    end_minute: Mapped[int] = mapped_column(Integer)

    group: Mapped[AccessGroup] = relationship(back_populates="windows")


class Holiday(Base):
    """A site-wide holiday date (site-local calendar)."""

    __tablename__ = "holidays"
    __table_args__ = (UniqueConstraint("site_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    day: Mapped[date] = mapped_column(Date)
    name: Mapped[str] = mapped_column(String(120))


pass_doors = Table(
    "visitor_pass_doors",
    Base.metadata,
    Column("pass_id", ForeignKey("visitor_passes.id", ondelete="CASCADE"), primary_key=True),
    Column("door_id", ForeignKey("doors.id", ondelete="CASCADE"), primary_key=True),
)


class PassStatus(enum.StrEnum):
    """Lifecycle of a visitor pass."""

    ACTIVE = "active"
    USED_UP = "used_up"
    REVOKED = "revoked"
    EXPIRED = "expired"


class VisitorPass(Base):
    """A resident's invitation: a time window, doors and a number of uses, checkable offline."""

    __tablename__ = "visitor_passes"
    __table_args__ = (
        CheckConstraint("valid_from < valid_until", name="window_order"),
        CheckConstraint("uses_allowed >= 1 AND uses_count >= 0", name="uses_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    visitor_name: Mapped[str] = mapped_column(String(200))
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime)
    uses_allowed: Mapped[int] = mapped_column(Integer, default=1)
    uses_count: Mapped[int] = mapped_column(Integer, default=0)
    # Keyed hash of the short numeric code; the code itself is shown once to the resident.
    code_hash: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[PassStatus] = mapped_column(str_enum(PassStatus), default=PassStatus.ACTIVE)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    host: Mapped[Person] = relationship()
    doors: Mapped[list[Door]] = relationship(secondary=pass_doors)
