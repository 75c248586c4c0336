"""The integration API's one error shape, {"error": code, "message": text}, for every failure of its routes."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify
from werkzeug.exceptions import HTTPException

from server.extensions import db
from server.services.errors import DomainError

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: ("bad_request", "The request could not be read; send the documented parameters."),
    404: ("not_found", "There is nothing at this address."),
    405: ("method_not_allowed", "This address does not take that method."),
    413: ("too_large", "The request is too large."),
    415: ("unsupported_media_type", "Send the body as JSON."),
}


def error_response(code: str, message: str, status: int) -> tuple[Response, int]:
    """The one error response of this API."""
    response = jsonify(error=code, message=message)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="gatehouse-ops"'
    return response, status


def register_errors(bp: Blueprint) -> None:
    """Domain errors, HTTP errors and crashes of this blueprint's routes in the error shape; 500s roll back."""

    @bp.errorhandler(DomainError)
    def _domain(exc: DomainError) -> tuple[Response, int]:
        db.session.rollback()
        return error_response(exc.code, exc.message, exc.http_status)

    @bp.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> tuple[Response, int]:
        status = exc.code or 500
        code, message = _HTTP_CODES.get(status, ((exc.name or "error").lower().replace(" ", "_"), exc.description))
        if exc.description and exc.description != type(exc).description:
            # Our own refusal (a control character in a parameter, say) says what to fix; werkzeug's default does not.
            message = exc.description
        return error_response(code, message or "", status)

    @bp.errorhandler(Exception)
    def _crash(exc: Exception) -> tuple[Response, int]:
        db.session.rollback()
        log.exception("unhandled error in the integration API")
        return error_response("server_error", "Something went wrong on the server; nothing was saved.", 500)
