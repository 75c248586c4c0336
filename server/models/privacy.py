"""Privacy records of a site: versioned privacy notices and impact assessments."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.models.base import Base, UTCDateTime, utcnow


class PrivacyNotice(Base):
    """One version of a site's face-entry privacy notice; consent names the version (and its text's hash)."""

    __tablename__ = "privacy_notices"
    __table_args__ = (UniqueConstraint("site_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    controller: Mapped[str] = mapped_column(String(200))
    contact: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(Text)
    method: Mapped[str] = mapped_column(Text)
    storage: Mapped[str] = mapped_column(Text)  # where templates live (server, terminals), encrypted how
    retention: Mapped[str] = mapped_column(Text)
    rights: Mapped[str] = mapped_column(Text)
    withdrawal: Mapped[str] = mapped_column(Text)
    # The exact text shown to people, rendered from the fields above; consent records its SHA-256.
    text: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_by: Mapped[str] = mapped_column(String(120))


class PrivacyAssessment(Base):
    """A privacy impact assessment attached to a site; face entry cannot be switched on without one."""

    __tablename__ = "privacy_assessments"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    assessed_on: Mapped[date] = mapped_column(Date)
    author: Mapped[str] = mapped_column(String(200))
    review_due: Mapped[date] = mapped_column(Date)
    summary: Mapped[str] = mapped_column(Text)
    attached_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attached_by: Mapped[str] = mapped_column(String(120))
