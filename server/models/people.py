"""People, their credentials, face templates and consent records."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    DDL,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gatehouse_core.credential_hash import CredentialKind
from server.models.base import Base, UTCDateTime, str_enum, utcnow

if TYPE_CHECKING:
    from server.models.access import AccessGroup
    from server.models.site import Site


class PersonKind(enum.StrEnum):
    """Who a person is to the site."""

    RESIDENT = "resident"
    STAFF = "staff"
    VISITOR = "visitor"


class PersonStatus(enum.StrEnum):
    """Whether a person may enter at all."""

    ACTIVE = "active"
    MOVED_OUT = "moved_out"
    SUSPENDED = "suspended"


class Person(Base):
    """Someone who may enter; door access comes from access groups, never from a credential type."""

    __tablename__ = "people"
    __table_args__ = (
        # The people search matches part of a name, the start of a unit or part of a phone number: trigram
        # indexes serve it on PostgreSQL (pg_trgm, created with the table); on SQLite these indexes are partial
        # over no rows and cost nothing, and an FTS5 trigram table serves it instead (models/people_search.py).
        *(
            Index(
                f"ix_people_{column}_trgm",
                column,
                postgresql_using="gin",
                postgresql_ops={column: "gin_trgm_ops"},
                sqlite_where=text("0"),
            )
            for column in ("full_name", "unit", "phone")
        ),
        # The people list in name order, a page at a time (keyset on name and id): read in index order, no sort.
        Index("ix_people_name_order", "full_name", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    # Pseudonymous id used on terminals and in events instead of names.
    pseudonym: Mapped[str] = mapped_column(String(32), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[PersonKind] = mapped_column(str_enum(PersonKind), default=PersonKind.RESIDENT)
    unit: Mapped[str | None] = mapped_column(String(64))
    date_of_birth: Mapped[date | None] = mapped_column(Date)
    phone: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[PersonStatus] = mapped_column(str_enum(PersonStatus), default=PersonStatus.ACTIVE, index=True)
    # Face is off by default; a decline is recorded so nobody is prompted again unless they ask.
    face_declined_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    moved_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    site: Mapped[Site] = relationship()
    credentials: Mapped[list[Credential]] = relationship(back_populates="person", cascade="all, delete-orphan")
    face_templates: Mapped[list[FaceTemplate]] = relationship(back_populates="person", cascade="all, delete-orphan")
    consents: Mapped[list[ConsentRecord]] = relationship(back_populates="person", cascade="all, delete-orphan")
    access_groups: Mapped[list[AccessGroup]] = relationship(secondary="access_group_members", back_populates="members")


# The trigram indexes above need pg_trgm (a trusted extension: the database owner may create it).
event.listen(
    Person.__table__,
    "before_create",
    DDL("CREATE EXTENSION IF NOT EXISTS pg_trgm").execute_if(dialect="postgresql"),
)


class CredentialStatus(enum.StrEnum):
    """Lifecycle of a credential."""

    ACTIVE = "active"
    REVOKED = "revoked"


class Credential(Base):
    """A key card, ID document or app-code secret; only a keyed hash or a sealed secret is kept."""

    __tablename__ = "credentials"
    __table_args__ = (
        # One card or ID belongs to one person per site; revoked rows keep their hash for the audit trail,
        # so uniqueness applies to active rows only (partial index on both backends).
        Index(
            "uq_credentials_active_lookup",
            "site_id",
            "kind",
            "lookup_hash",
            unique=True,
            sqlite_where=text("status = 'active' AND lookup_hash IS NOT NULL"),
            postgresql_where=text("status = 'active' AND lookup_hash IS NOT NULL"),
        ),
        CheckConstraint(
            "(kind = 'app_code' AND sealed_secret IS NOT NULL) OR (kind != 'app_code' AND lookup_hash IS NOT NULL)",
            name="secret_matches_kind",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    kind: Mapped[CredentialKind] = mapped_column(str_enum(CredentialKind))
    # HMAC-SHA256 (per-site key) of the normalised card UID or ID number.
    lookup_hash: Mapped[str | None] = mapped_column(String(64))
    # AES-GCM sealed TOTP seed for app codes.
    sealed_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    status: Mapped[CredentialStatus] = mapped_column(str_enum(CredentialStatus), default=CredentialStatus.ACTIVE)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    person: Mapped[Person] = relationship(back_populates="credentials")


class FaceTemplate(Base):
    """An encrypted face embedding; the photo it came from is never stored."""

    __tablename__ = "face_templates"
    # Ids are never reused (SQLite would reuse the highest after a delete): erasure receipts and the record
    # of which terminal holds which template refer to templates by id after the row is gone.
    __table_args__ = (UniqueConstraint("person_id", "model_id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    consent_id: Mapped[int] = mapped_column(ForeignKey("consent_records.id"), index=True)
    model_id: Mapped[str] = mapped_column(String(64))
    sealed_vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_matched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    person: Mapped[Person] = relationship(back_populates="face_templates")
    consent: Mapped[ConsentRecord] = relationship()


class ConsentChannel(enum.StrEnum):
    """Where consent was given."""

    CONSOLE = "console"
    APP = "app"
    DESK = "desk"


class ConsentGiver(enum.StrEnum):
    """Who gave consent: the person, or a guardian for a minor."""

    SELF = "self"
    GUARDIAN = "guardian"


class StaleReason(enum.StrEnum):
    """Why a consent no longer covers face matching until it is renewed."""

    NOTICE = "notice"  # a new privacy notice version was published
    FACE_MODEL = "face_model"  # the site moved to another face model


class ConsentRecord(Base):
    """Separate, specific consent to face processing, from the person or a guardian."""

    __tablename__ = "consent_records"
    __table_args__ = (
        CheckConstraint(
            "given_by = 'self' OR (guardian_name IS NOT NULL AND guardian_relationship IS NOT NULL)",
            name="guardian_named",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(32), default="face_entry")
    # The notice version shown and the SHA-256 of its exact text.
    notice_id: Mapped[int | None] = mapped_column(ForeignKey("privacy_notices.id", ondelete="RESTRICT"), index=True)
    notice_sha256: Mapped[str] = mapped_column(String(64))
    channel: Mapped[ConsentChannel] = mapped_column(str_enum(ConsentChannel))
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("console_users.id", ondelete="SET NULL"))
    given_by: Mapped[ConsentGiver] = mapped_column(str_enum(ConsentGiver), default=ConsentGiver.SELF)
    guardian_name: Mapped[str | None] = mapped_column(String(200))
    guardian_relationship: Mapped[str | None] = mapped_column(String(64))
    given_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawal_channel: Mapped[ConsentChannel | None] = mapped_column(
        str_enum(ConsentChannel, name="withdrawalchannel")
    )
    # Set when a new notice or face model means this consent no longer covers face matching.
    stale_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stale_reason: Mapped[StaleReason | None] = mapped_column(str_enum(StaleReason))

    person: Mapped[Person] = relationship(back_populates="consents")

    def is_active(self, at: datetime) -> bool:
        """Given, not withdrawn, not stale and not expired at `at`."""
        if self.withdrawn_at is not None and self.withdrawn_at <= at:
            return False
        if self.stale_at is not None:
            return False
        return self.expires_at is None or self.expires_at > at
