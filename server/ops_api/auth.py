"""Who is calling the integration API: an API key in `Authorization: Bearer`, and the scope each route needs."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import g, request

from server.extensions import db
from server.models import ApiKey
from server.services.errors import DomainError
from server.services.integrations import api_keys

F = TypeVar("F", bound=Callable[..., Any])


class Unauthorized(DomainError):
    """No key, or one that is unknown or revoked."""

    code = "unauthorized"
    http_status = 401


class Forbidden(DomainError):
    """A live key without the scope the route needs."""

    code = "forbidden"
    http_status = 403


def bearer_key() -> str | None:
    """The key of an `Authorization: Bearer ...` header, if there is one."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def authenticate() -> None:
    """before_request: a live key, or 401; its use is stamped and audited (at most once a minute)."""
    presented = bearer_key()
    if presented is None:
        raise Unauthorized("Send an API key: 'Authorization: Bearer <key>'.", code="unauthorized")
    key = api_keys.authenticate(db.session, presented, used_for=f"{request.method} {request.path}")
    if key is None:
        db.session.rollback()
        raise Unauthorized("This API key is not known or has been revoked.", code="unauthorized")
    db.session.commit()
    g.api_key = key


def current_key() -> ApiKey:
    """The authenticated key of this request."""
    key: ApiKey = g.api_key
    return key


def needs(scope: str) -> Callable[[F], F]:
    """Allow the view only to keys with `scope` (403 otherwise)."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if scope not in api_keys.scopes_of(current_key()):
                raise Forbidden(f"This API key does not have the '{scope}' scope.", code="forbidden")
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorate
