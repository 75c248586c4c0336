"""Visitor passes the resident issues: create, list, show, revoke, and each pass's entries."""

from __future__ import annotations

from flask import Response

from mobile_api.auth import resident, resident_blueprint
from mobile_api.responses import reply
from mobile_api.routes.share import share_link
from mobile_api.schemas.common import ApiError, BeforeQuery, DoorRef, EventOut, EventPage, IdPath
from mobile_api.schemas.passes import PassCreate, PassCreated, PassListQuery, PassOut, PassPage
from mobile_api.state import mobile
from server.extensions import db
from server.models import VisitorPass
from server.services.accounts.app_accounts import resident_actor
from server.services.visitors import passes

bp = resident_blueprint("passes", __name__, "Visitor passes")

NOT_MINE = "404 `not_found` for a pass that is not yours (or does not exist)."


def pass_out(visitor_pass: VisitorPass) -> PassOut:
    """A pass as the resident sees it: never its code or the code's hash."""
    return PassOut(
        id=visitor_pass.id,
        visitor_name=visitor_pass.visitor_name,
        valid_from=visitor_pass.valid_from,
        valid_until=visitor_pass.valid_until,
        doors=[DoorRef(id=d.id, name=d.name) for d in sorted(visitor_pass.doors, key=lambda d: d.id)],
        uses_allowed=visitor_pass.uses_allowed,
        uses_count=visitor_pass.uses_count,
        status=passes.status_at(visitor_pass),
        qr_token=passes.token_for(mobile().keys, visitor_pass),
        share_url=share_link(visitor_pass.id),
    )


@bp.post(
    "/passes",
    responses={201: PassCreated, 409: ApiError, 422: ApiError, 429: ApiError},
    summary="Invite a visitor",
    description="Issues a visitor pass for a time window, some of your doors and a number of entries. The answer "
    "holds the 6-digit code (shown this once: only its hash is kept), the signed QR text and a share link to a "
    "page with the QR, the doors and the times, for the visitor (no sign-in, no names). 422 `bad_window` if the "
    "window is empty, over or longer than 31 days; 422 `foreign_door` for a door you may not use or not of your "
    "site; 409 `codes_exhausted` if the site has no free code. Rate-limited per device.",
)
def create_pass(body: PassCreate) -> tuple[Response, int]:
    person = resident().person
    keys = mobile().keys
    doors = passes.host_doors(db.session, person, body.door_ids)
    issued = passes.issue_pass(
        db.session,
        resident_actor(person),
        keys,
        person,
        body.visitor_name,
        body.valid_from,
        body.valid_until,
        doors,
        body.uses,
    )
    db.session.commit()
    out = pass_out(issued.visitor_pass)
    created = PassCreated.model_validate(
        {"pass": out, "code": issued.code, "qr_token": issued.token, "share_url": out.share_url}
    )
    return reply(created, 201)


@bp.get(
    "/passes",
    responses={200: PassPage},
    summary="My visitor passes",
    description="The passes you issued, newest first, optionally in one status; pass `next_before` as `before` "
    "for older ones.",
)
def list_passes(query: PassListQuery) -> tuple[Response, int]:
    page = passes.list_own_passes(db.session, resident().person, query.status, before=query.before, limit=query.limit)
    return reply(PassPage(items=[pass_out(p) for p in page.passes], next_before=page.next_before))


@bp.get(
    "/passes/<int:id>",
    responses={200: PassOut, 404: ApiError},
    summary="One visitor pass",
    description=f"A pass you issued, with its QR text and share link (never its code). {NOT_MINE}",
)
def get_pass(path: IdPath) -> tuple[Response, int]:
    return reply(pass_out(passes.get_own_pass(db.session, resident().person, path.id)))


@bp.delete(
    "/passes/<int:id>",
    responses={200: PassOut, 404: ApiError},
    summary="Revoke a visitor pass",
    description="Stops the pass at once: door terminals refuse its code and QR as soon as they hear, and its "
    f"share page says it is no longer valid. Revoking a revoked or expired pass changes nothing. {NOT_MINE}",
)
def revoke_pass(path: IdPath) -> tuple[Response, int]:
    person = resident().person
    visitor_pass = passes.get_own_pass(db.session, person, path.id)
    passes.revoke_pass(db.session, resident_actor(person), visitor_pass)
    db.session.commit()
    return reply(pass_out(visitor_pass))


@bp.get(
    "/passes/<int:id>/events",
    responses={200: EventPage, 404: ApiError},
    summary="A visitor pass's entries",
    description="Every grant and refusal at a door with this pass, newest first; pass `next_before` as `before` "
    f"for older ones. {NOT_MINE}",
)
def pass_events(path: IdPath, query: BeforeQuery) -> tuple[Response, int]:
    visitor_pass = passes.get_own_pass(db.session, resident().person, path.id)
    page = passes.pass_events(db.session, visitor_pass, before=query.before, limit=query.limit)
    items = [
        EventOut(
            id=e.id,
            occurred_at=e.occurred_at,
            door=DoorRef(id=e.door_id, name=e.door_name) if e.door_id is not None and e.door_name is not None else None,
            method=e.method,
            decision=e.decision,
            reason=e.reason,
        )
        for e in page.events
    ]
    return reply(EventPage(items=items, next_before=page.next_before))
