"""Who is calling: the bearer token of every protected request, checked before its view runs."""

from __future__ import annotations

from typing import Any

from flask import g, request
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel

from mobile_api.schemas.common import ApiError
from mobile_api.state import mobile
from server.extensions import db
from server.services.accounts.app_sessions import Resident, TokenRefused, authenticate_access

BEARER = "bearer"
SECURITY: list[dict[str, list[str]]] = [{BEARER: []}]
SECURITY_SCHEMES: dict[str, Any] = {
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "The access token from /auth/login, /auth/code/login or /auth/refresh.",
    }
}

# Statuses any operation can answer with.
COMMON_RESPONSES: dict[str | int, type[BaseModel] | dict[Any, Any] | None] = {
    # Replaces flask-openapi3's own 400 entry (a list of errors): this API answers one error object.
    400: ApiError,
    422: ApiError,
    429: ApiError,
    500: ApiError,
}


def bearer_token() -> str | None:
    """The token of an `Authorization: Bearer ...` header, if there is one."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != BEARER or not token.strip():
        return None
    return token.strip()


def authenticate_request() -> None:
    """before_request of protected blueprints: a valid access token of a live session, or 401."""
    token = bearer_token()
    if token is None:
        raise TokenRefused("Sign in first: send 'Authorization: Bearer <access token>'.", code="token_missing")
    g.resident = authenticate_access(db.session, mobile().access_key, token)


def resident() -> Resident:
    """The signed-in resident of this request (protected blueprints only)."""
    value: Resident = g.resident
    return value


def resident_blueprint(name: str, import_name: str, tag: str) -> APIBlueprint:
    """A blueprint under /api/v1 whose every route needs a signed-in resident."""
    blueprint = APIBlueprint(
        name,
        import_name,
        url_prefix="/api/v1",
        abp_tags=[Tag(name=tag)],
        abp_security=SECURITY,
        abp_responses={401: ApiError, **COMMON_RESPONSES},
    )
    blueprint.before_request(authenticate_request)
    return blueprint


def public_blueprint(name: str, import_name: str, tag: str) -> APIBlueprint:
    """A blueprint under /api/v1 whose routes need no sign-in (signing in, for one)."""
    return APIBlueprint(
        name, import_name, url_prefix="/api/v1", abp_tags=[Tag(name=tag)], abp_responses=dict(COMMON_RESPONSES)
    )
