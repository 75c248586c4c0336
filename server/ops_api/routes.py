"""The integration API's routes: events from the feed, alarms, the door board, opening a door."""

from __future__ import annotations

from typing import Any, TypeVar

from flask import Blueprint, Response, current_app, jsonify, request
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException

from gatehouse_core.wire.messages import DoorState
from server.extensions import db
from server.models import OverrideMode
from server.ops_api.auth import authenticate, current_key, needs
from server.ops_api.errors import error_response, register_errors
from server.ops_api.schemas import (
    AlarmList,
    AlarmOut,
    AlarmsQuery,
    DoorList,
    DoorOpened,
    DoorOut,
    DoorsQuery,
    EventOut,
    EventPage,
    EventsQuery,
    OpenDoorBody,
    TerminalLink,
)
from server.services.errors import DomainError
from server.services.integrations import api_keys, ops_read
from server.services.operations import door_states, feed

PREFIX = "/api/ops/v1"
M = TypeVar("M", bound=BaseModel)

bp = Blueprint("ops_api", __name__, url_prefix=PREFIX)
register_errors(bp)


class InvalidRequest(DomainError):
    """A query or body that does not fit the document."""

    code = "invalid_request"
    http_status = 400


@bp.before_request
def _authenticate() -> None:
    if request.endpoint in ("ops_api.openapi_document", "ops_api.not_found"):
        return
    authenticate()


@bp.after_request
def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def _parsed(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "request"
        raise InvalidRequest(f"The request is not valid: {where}: {first['msg']}.") from None


def _query(model: type[M], lists: tuple[str, ...] = ()) -> M:
    data: dict[str, Any] = {
        name: request.args.getlist(name) if name in lists else request.args.get(name) for name in request.args
    }
    return _parsed(model, data)


def _json(data: BaseModel, status: int = 200) -> tuple[Response, int]:
    return jsonify(data.model_dump(mode="json")), status


@bp.get("/events")
@needs(api_keys.EVENTS_READ)
def events() -> tuple[Response, int]:
    """The operations feed after a cursor."""
    query = _query(EventsQuery, lists=("topic",))
    items, more = ops_read.events_after(db.session, current_key(), query.after, query.limit, query.site_id, query.topic)
    page = EventPage(
        items=[
            EventOut(id=item.id, type=item.topic, at=item.at, site_id=item.site_id, data=feed.payload(item))
            for item in items
        ],
        next_after=items[-1].id if items else query.after,
        has_more=more,
    )
    return _json(page)


@bp.get("/alarms")
@needs(api_keys.ALARMS_READ)
def alarms() -> tuple[Response, int]:
    """Open (or all) alarms, newest first."""
    query = _query(AlarmsQuery)
    rows = ops_read.alarms(db.session, current_key(), query.site_id, query.state == "open", query.limit)
    return _json(
        AlarmList(
            items=[
                AlarmOut(
                    id=a.id,
                    kind=a.kind,
                    severity=a.severity,
                    state="resolved" if a.resolved_at else "acknowledged" if a.acknowledged_at else "open",
                    site_id=a.site_id,
                    door_id=a.door_id,
                    terminal_id=a.terminal_id,
                    message=a.message,
                    raised_at=a.raised_at,
                    acknowledged_at=a.acknowledged_at,
                    resolved_at=a.resolved_at,
                )
                for a in rows
            ]
        )
    )


@bp.get("/doors")
@needs(api_keys.DOORS_READ)
def doors() -> tuple[Response, int]:
    """Every door's live state and its terminals' links."""
    query = _query(DoorsQuery)
    lines = ops_read.board(db.session, current_key(), query.site_id)
    return _json(
        DoorList(
            items=[
                DoorOut(
                    id=line.door_id,
                    name=line.door,
                    site_id=line.site_id,
                    state=None if line.state == door_states.UNKNOWN else DoorState(line.state),
                    supervised=line.supervised,
                    since=line.since,
                    mode=OverrideMode(line.mode) if line.mode else None,
                    terminals=[TerminalLink.model_validate(t) for t in line.terminals],
                )
                for line in lines
            ]
        )
    )


@bp.post("/doors/<int:door_id>/open")
@needs(api_keys.DOORS_COMMAND)
def open_door(door_id: int) -> tuple[Response, int]:
    """Open a door once, through the terminal that serves it."""
    raw = request.get_json(silent=True) if request.content_length else {}
    if not isinstance(raw, dict):
        raise InvalidRequest("Send a JSON object (or no body).")
    body = _parsed(OpenDoorBody, raw)
    command, door = ops_read.open_door(db.session, current_key(), door_id, body.reason)
    db.session.commit()
    return _json(DoorOpened(command=command.ref, door_id=door.id, terminal_id=command.terminal_id), 202)


@bp.get("/openapi.json")
def openapi_document() -> Response:
    """The API's OpenAPI 3.1 document (no key needed)."""
    from server.ops_api.openapi import document

    return jsonify(document())


@bp.route("/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def not_found(rest: str) -> tuple[Response, int]:
    """Any other address or method under the API: the API's own error shape, not the console's page."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    allowed = []
    for method in ("GET", "POST"):
        try:
            endpoint, _args = adapter.match(request.path, method=method)
        except HTTPException:
            continue
        if endpoint != "ops_api.not_found":
            allowed.append(method)
    if allowed:
        response, status = error_response("method_not_allowed", "This address does not take that method.", 405)
        response.headers["Allow"] = ", ".join(allowed)
        return response, status
    return error_response("not_found", "There is nothing at this address.", 404)
