"""Erasure receipts: which terminals held a deleted face template, and when each confirmed its deletion."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, select

from server.models import (
    ConfirmedBy,
    ErasureConfirmation,
    ErasureReason,
    ErasureReceipt,
    FaceTemplate,
    Person,
    TemplateHolding,
    Terminal,
    utcnow,
)
from server.services.session import DbSession


def open_receipt(
    session: DbSession, person: Person, template: FaceTemplate, reason: ErasureReason, journal_seq: int
) -> ErasureReceipt:
    """Start the receipt for a template about to be deleted: one pending line per terminal it was sent to."""
    receipt = ErasureReceipt(
        site_id=person.site_id,
        person_id=person.id,
        person_pseudonym=person.pseudonym,
        template_id=template.id,
        model_id=template.model_id,
        reason=reason,
        journal_seq=journal_seq,
    )
    holders = session.scalars(select(TemplateHolding.terminal_id).where(TemplateHolding.template_id == template.id))
    receipt.confirmations = [ErasureConfirmation(terminal_id=terminal_id) for terminal_id in holders]
    session.add(receipt)
    return receipt


def record_holdings(session: DbSession, terminal_id: int, template_ids: Iterable[int]) -> None:
    """Remember that these templates were sent to a terminal (so a later deletion waits for it)."""
    wanted = set(template_ids)
    if not wanted:
        return
    known = set(
        session.scalars(
            select(TemplateHolding.template_id).where(
                TemplateHolding.terminal_id == terminal_id, TemplateHolding.template_id.in_(wanted)
            )
        )
    )
    session.add_all(TemplateHolding(terminal_id=terminal_id, template_id=t) for t in sorted(wanted - known))


def confirm_items(
    session: DbSession, terminal: Terminal, template_ids: Iterable[int], at: datetime | None = None
) -> None:
    """A terminal reports having deleted these templates."""
    ids = set(template_ids)
    if not ids:
        return
    at = at or utcnow()
    pending = session.scalars(
        select(ErasureConfirmation)
        .join(ErasureReceipt)
        .where(
            ErasureConfirmation.terminal_id == terminal.id,
            ErasureConfirmation.confirmed_at.is_(None),
            ErasureReceipt.template_id.in_(ids),
        )
    )
    for line in pending:
        line.confirmed_at = at
        line.confirmed_by = ConfirmedBy.ITEM_ACK
    # A template deleted on the terminal after the server's copy was already gone, without a line yet
    # (the receipt was opened before this terminal's holding was recorded): add the line, confirmed.
    receipts = session.scalars(
        select(ErasureReceipt).where(
            ErasureReceipt.template_id.in_(ids),
            ErasureReceipt.site_id == terminal.site_id,
            ~ErasureReceipt.confirmations.any(ErasureConfirmation.terminal_id == terminal.id),
        )
    )
    for receipt in receipts:
        receipt.confirmations.append(
            ErasureConfirmation(terminal_id=terminal.id, confirmed_at=at, confirmed_by=ConfirmedBy.ITEM_ACK)
        )
    session.execute(
        delete(TemplateHolding).where(TemplateHolding.terminal_id == terminal.id, TemplateHolding.template_id.in_(ids))
    )


def confirm_through(session: DbSession, terminal: Terminal, applied_seq: int, at: datetime | None = None) -> None:
    """A terminal has applied the journal up to `applied_seq`: every deletion at or before it is done there."""
    at = at or utcnow()
    pending = list(
        session.scalars(
            select(ErasureConfirmation)
            .join(ErasureReceipt)
            .where(
                ErasureConfirmation.terminal_id == terminal.id,
                ErasureConfirmation.confirmed_at.is_(None),
                ErasureReceipt.journal_seq <= applied_seq,
            )
        )
    )
    for line in pending:
        line.confirmed_at = at
        line.confirmed_by = ConfirmedBy.SEQUENCE
    if pending:
        session.execute(
            delete(TemplateHolding).where(
                TemplateHolding.terminal_id == terminal.id,
                TemplateHolding.template_id.in_([line.receipt.template_id for line in pending]),
            )
        )


def receipts_of_person(session: DbSession, person_id: int) -> list[ErasureReceipt]:
    """Erasure receipts of one person, newest first (for the console and the resident's app)."""
    return list(
        session.scalars(
            select(ErasureReceipt)
            .where(ErasureReceipt.person_id == person_id)
            .order_by(ErasureReceipt.erased_on_server_at.desc(), ErasureReceipt.id.desc())
        )
    )
