"""The resident's own records: access history, erasure receipts and data export."""

from __future__ import annotations

from flask import Response

from mobile_api.auth import resident, resident_blueprint
from mobile_api.responses import reply
from mobile_api.schemas.common import BeforeQuery, DoorRef, EventOut, EventPage
from mobile_api.schemas.records import ReceiptList, ReceiptOut, SubjectAccessReport
from server.extensions import db
from server.models import utcnow
from server.services.accounts import app_accounts
from server.services.face.consent_rules import local_date
from server.services.people import resident_records
from server.services.privacy import subject_access

bp = resident_blueprint("records", __name__, "Records")


@bp.get(
    "/me/events",
    responses={200: EventPage},
    summary="My door history",
    description="My own entries and refusals at the doors, newest first. Pass a page's `next_before` as "
    "`before` for the next (older) page.",
)
def list_events(query: BeforeQuery) -> tuple[Response, int]:
    page = resident_records.events_of(db.session, resident().person, query.before, query.limit)
    return reply(
        EventPage(
            items=[
                EventOut(
                    id=e.id,
                    occurred_at=e.occurred_at,
                    door=DoorRef(id=e.door_id, name=page.door_names[e.door_id])
                    if e.door_id is not None and e.door_id in page.door_names
                    else None,
                    method=e.method,
                    decision=e.decision,
                    reason=e.reason,
                )
                for e in page.events
            ],
            next_before=page.next_before,
        )
    )


@bp.get(
    "/me/erasure-receipts",
    responses={200: ReceiptList},
    summary="My erasure receipts",
    description="For each of my face templates that was erased: why, when the server deleted it, and which "
    "terminals have confirmed deleting their copy. Newest first.",
)
def list_receipts() -> tuple[Response, int]:
    receipts = resident_records.receipts_of(db.session, resident().person)
    return reply(ReceiptList(items=[ReceiptOut.of(r) for r in receipts]))


@bp.get(
    "/me/export",
    responses={200: SubjectAccessReport},
    summary="Download my data",
    description="Everything the server holds about me (a subject access report), as a JSON download. It never "
    "contains a face template, a photo, a card or ID number, a hash or an app-code seed. Each download is "
    "recorded in the audit log.",
)
def export_my_data() -> tuple[Response, int]:
    person = resident().person
    at = utcnow()
    report = subject_access.export(db.session, app_accounts.resident_actor(person), person, "json", at)
    db.session.commit()
    response, status = reply(SubjectAccessReport.model_validate(report))
    day = local_date(person.site, at)
    response.headers["Content-Disposition"] = f'attachment; filename="gatehouse-my-data-{day.isoformat()}.json"'
    return response, status
