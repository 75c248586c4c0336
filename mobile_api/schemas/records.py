"""Schemas of the resident's records: erasure receipts and the subject access report."""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, ConfigDict, Field

from mobile_api.schemas.common import ResponseModel
from server.models import ErasureReason
from server.services.people.resident_records import ReceiptRow


class ReceiptTerminal(ResponseModel):
    """One terminal that held the erased template, and when it confirmed deleting it."""

    name: str = Field(description="The terminal's name.")
    confirmed_at: AwareDatetime | None = Field(description="When it confirmed the deletion; None while pending.")


class ReceiptOut(ResponseModel):
    """The erasure of one face template: on the server at once, then on every terminal that held it."""

    id: int = Field(description="The receipt's id.")
    reason: ErasureReason = Field(
        description="Why: consent_withdrawn, moved_out, retention, replaced, manager, deactivated or model_changed."
    )
    model_id: str = Field(description="The face model the template was made with.")
    erased_on_server_at: AwareDatetime = Field(description="When the server deleted its copy.")
    complete: bool = Field(description="Whether every terminal that held the template has confirmed its deletion.")
    terminals: list[ReceiptTerminal] = Field(description="Terminals that held the template, by name.")

    @classmethod
    def of(cls, row: ReceiptRow) -> ReceiptOut:
        """The answer for one of the person's receipts."""
        return cls(
            id=row.id,
            reason=row.reason,
            model_id=row.model_id,
            erased_on_server_at=row.erased_on_server_at,
            complete=row.complete,
            terminals=[ReceiptTerminal(name=t.name, confirmed_at=t.confirmed_at) for t in row.terminals],
        )


class ReceiptList(ResponseModel):
    """The resident's erasure receipts, newest first."""

    items: list[ReceiptOut] = Field(description="Receipts, newest first.")


class _ReportPart(ResponseModel):
    # Whatever the report service adds later reaches the resident too: a subject access report is never trimmed.
    model_config = ConfigDict(extra="allow")


class ReportController(_ReportPart):
    """Who holds the data and how to reach them."""

    site_name: str = Field(description="The site's name.")
    site_code: str = Field(description="The site's code.")
    controller_name: str | None = Field(description="The data controller named in the privacy notice.")
    contact: str | None = Field(description="How to contact the controller about personal data.")
    privacy_notice_version: int | None = Field(description="The current privacy notice's version.")
    privacy_notice_published_at: str | None = Field(description="When it was published (ISO 8601, UTC).")


class ReportPerson(_ReportPart):
    """The person's record as the site holds it."""

    id: int = Field(description="The person's id.")
    pseudonym: str = Field(description="The id door terminals and event records use instead of the name.")
    full_name: str = Field(description="Full name.")
    kind: str = Field(description="resident, staff or visitor.")
    unit: str | None = Field(description="Flat or unit.")
    date_of_birth: str | None = Field(description="Date of birth (ISO 8601), if recorded.")
    phone: str | None = Field(description="Phone number, if recorded.")
    status: str = Field(description="active, moved_out or suspended.")
    created_at: str = Field(description="When the record was made (ISO 8601, UTC).")
    moved_out_at: str | None = Field(description="When the person moved out, if they did.")
    face_declined_at: str | None = Field(description="When the person last said no to face entry, if they did.")


class ReportRetention(_ReportPart):
    """How long the site keeps what."""

    event_retention_days: int = Field(description="Days door events are kept.")
    visitor_retention_days: int = Field(description="Days visitor data is kept after a pass ends.")
    template_unused_days: int = Field(description="Days an unused face template is kept.")


class SubjectAccessReport(_ReportPart):
    """Everything the server holds about the resident: never a face template, photo, hash or secret.

    Times are ISO 8601 strings in UTC, as in the report the site's managers can download for the resident.
    """

    format: str = Field(description="The report format and its version: gatehouse.subject_access/1.")
    generated_at: str = Field(description="When the report was made (ISO 8601, UTC).")
    controller: ReportController
    person: ReportPerson
    credentials: list[dict[str, Any]] = Field(
        description="Cards, ID documents and app codes: id, kind, status, created_at, revoked_at (never values)."
    )
    access_groups: list[dict[str, Any]] = Field(description="Access groups: id, name and door names.")
    face: dict[str, Any] = Field(
        description="consents, templates (where and since when each is held, never the template) and erasures."
    )
    visitor_passes_hosted: list[dict[str, Any]] = Field(description="Visitor passes the person issued.")
    access_events: list[dict[str, Any]] = Field(description="Door events, newest first (capped; see the total).")
    access_events_total: int = Field(description="How many door events the server holds for the person.")
    audit: list[dict[str, Any]] = Field(description="Audit entries about the person, newest first.")
    retention: ReportRetention
    notes: dict[str, str] = Field(description="Plain-language remarks on credentials, face data and events.")
