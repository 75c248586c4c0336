"""The API's one error shape, {"error": code, "message": text}, for every failure the app can meet."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from flask.json.provider import DefaultJSONProvider
from pydantic import ValidationError
from werkzeug.exceptions import BadRequest, HTTPException

from mobile_api.schemas.common import ApiError, FieldProblem
from server.extensions import db
from server.services.accounts.app_sessions import TokenRefused
from server.services.errors import DomainError

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: ("bad_request", "The request could not be read; send JSON with the documented fields."),
    404: ("not_found", "There is nothing at this address."),
    405: ("method_not_allowed", "This address does not take that method."),
    413: ("too_large", "The request is too large."),
    415: ("unsupported_media_type", "Send the body in the documented content type."),
    429: ("rate_limited", "Too many requests; wait a moment and try again."),
}


# No request of this API nests deeper than a few levels; 32 leaves room and keeps parsing and validation shallow.
MAX_JSON_DEPTH = 32


class BodyTooDeep(BadRequest):
    """A JSON body nested deeper than any request of this API (a parser-exhaustion attempt): 400 too_deep."""

    description = f"The JSON body is nested more than {MAX_JSON_DEPTH} levels deep; send the documented fields."


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether parsed JSON nests more than `limit` arrays or objects deep (walked without recursion)."""
    todo: list[tuple[Any, int]] = [(value, 1)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            todo.extend((child, depth + 1) for child in children)
    return False


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON, but a body nested too deeply is a 400 (BodyTooDeep), never a RecursionError and a 500."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """Parse JSON text; BodyTooDeep past MAX_JSON_DEPTH (the parser itself stops at Python's recursion limit)."""
        try:
            value = super().loads(s, **kwargs)
        except RecursionError:
            raise BodyTooDeep() from None
        if _depth_exceeds(value, MAX_JSON_DEPTH):
            raise BodyTooDeep()
        return value


def error_response(
    code: str, message: str, status: int, fields: list[FieldProblem] | None = None
) -> tuple[Response, int]:
    """The one error response of this API."""
    body = ApiError(error=code, message=message, fields=fields).model_dump(exclude_none=True)
    return jsonify(body), status


def _where(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "body"


def validation_error(exc: ValidationError) -> Response:
    """flask-openapi3's callback for a request that fails its schema: 400 with each bad field named."""
    fields = [FieldProblem(field=_where(e["loc"]), problem=e["msg"]) for e in exc.errors(include_url=False)[:20]]
    first = fields[0] if fields else None
    message = "The request is not valid" + (f": {first.field}: {first.problem}." if first else ".")
    response, status = error_response("invalid_request", message, 400, fields)
    response.status_code = status
    return response


def register_error_handlers(app: Flask) -> None:
    """Turn domain errors, HTTP errors and crashes into the error shape; 500s roll the session back."""

    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError) -> tuple[Response, int]:
        db.session.rollback()
        response, status = error_response(exc.code, exc.message, exc.http_status)
        if isinstance(exc, TokenRefused):
            response.headers["WWW-Authenticate"] = f'Bearer error="invalid_token", error_description="{exc.code}"'
        return response, status

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        status = exc.code or 500
        code, message = _HTTP_CODES.get(
            status, ((exc.name or "error").lower().replace(" ", "_"), exc.description or "")
        )
        if isinstance(exc, BodyTooDeep):
            code, message = "too_deep", exc.description or ""
        if status == 429:
            message = f"Too many requests ({exc.description}); wait a moment and try again."
        response, _ = error_response(code, message, status)
        for name in ("Retry-After", "Allow"):
            value = exc.get_response().headers.get(name)
            if value:
                response.headers[name] = value
        return response, status

    @app.errorhandler(Exception)
    def server_error(exc: Exception) -> tuple[Response, int]:
        db.session.rollback()
        log.exception("unhandled error in the mobile API")
        return error_response("server_error", "Something went wrong on the server; nothing was saved. Try again.", 500)
