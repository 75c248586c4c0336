"""Erasure receipts: for each deleted face template, which terminals held it and when each confirmed."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.models.base import Base, UTCDateTime, str_enum, utcnow


class ErasureReason(enum.StrEnum):
    """Why an item was erased."""

    CONSENT_WITHDRAWN = "consent_withdrawn"
    MOVED_OUT = "moved_out"
    RETENTION = "retention"
    REPLACED = "replaced"
    MANAGER = "manager"
    DEACTIVATED = "deactivated"
    MODEL_CHANGED = "model_changed"


class ErasureReceipt(Base):
    """The deletion of one face template everywhere: opened on the server, confirmed per terminal."""

    __tablename__ = "erasure_receipts"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    # Kept as plain values: the person row may be gone by the time someone asks for the receipt.
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"), index=True)
    person_pseudonym: Mapped[str] = mapped_column(String(32), index=True)
    template_id: Mapped[int] = mapped_column(Integer, index=True)
    model_id: Mapped[str] = mapped_column(String(64))
    reason: Mapped[ErasureReason] = mapped_column(str_enum(ErasureReason, length=24))
    # The journal entry that tells terminals; a terminal past it no longer holds the template.
    journal_seq: Mapped[int | None] = mapped_column(Integer)
    erased_on_server_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    confirmations: Mapped[list[ErasureConfirmation]] = relationship(
        back_populates="receipt", cascade="all, delete-orphan", order_by="ErasureConfirmation.terminal_id"
    )

    @property
    def complete(self) -> bool:
        """Every terminal that held the template has confirmed its deletion."""
        return all(c.confirmed_at is not None for c in self.confirmations)


class ConfirmedBy(enum.StrEnum):
    """How a terminal confirmed an erasure."""

    # The terminal reported deleting this very template.
    ITEM_ACK = "item_ack"
    # The terminal acknowledged a sequence past the deletion (or a snapshot without it) and no longer has it.
    SEQUENCE = "sequence"


class ErasureConfirmation(Base):
    """One terminal's part of an erasure receipt."""

    __tablename__ = "erasure_confirmations"

    receipt_id: Mapped[int] = mapped_column(ForeignKey("erasure_receipts.id", ondelete="CASCADE"), primary_key=True)
    terminal_id: Mapped[int] = mapped_column(ForeignKey("terminals.id", ondelete="CASCADE"), primary_key=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirmed_by: Mapped[ConfirmedBy | None] = mapped_column(str_enum(ConfirmedBy))

    receipt: Mapped[ErasureReceipt] = relationship(back_populates="confirmations")


class TemplateHolding(Base):
    """A face template was sent to a terminal and not yet confirmed deleted there."""

    __tablename__ = "template_holdings"

    terminal_id: Mapped[int] = mapped_column(ForeignKey("terminals.id", ondelete="CASCADE"), primary_key=True)
    # No foreign key: the holding must outlive the server's copy until the terminal confirms.
    template_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
