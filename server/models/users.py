"""Console users: property managers, administrators and guards."""

from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from server.models.base import Base, UTCDateTime, str_enum, utcnow
from server.models.records import ConsoleRole


class ConsoleUser(UserMixin, Base):
    """A person who logs into the console; the password is kept only as an Argon2id hash."""

    __tablename__ = "console_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[ConsoleRole] = mapped_column(str_enum(ConsoleRole))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    language: Mapped[str] = mapped_column(String(8), default="en")
    # Bumped by "log out everywhere"; sessions carrying an older epoch are refused.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def get_id(self) -> str:
        """Session identity: user id plus epoch, so bumping the epoch ends every session."""
        return f"{self.id}:{self.session_epoch}"

    @property
    def is_active(self) -> bool:
        """Flask-Login: disabled users cannot log in."""
        return self.active
