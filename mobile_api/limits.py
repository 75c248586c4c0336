"""Request limits (Flask-Limiter): per signed-in device when a genuine token is sent, per address otherwise; selfie
uploads also per account."""

from __future__ import annotations

import jwt
from flask import Flask, request
from flask_limiter import Limit, Limiter

from mobile_api.auth import bearer_token
from mobile_api.config import RateLimitConfig
from mobile_api.state import mobile
from server.services.accounts.app_sessions import AUDIENCE, ISSUER

# The selfie upload (flask-openapi3 names endpoints blueprint.function).
PHOTO_ENDPOINT = "face.upload_photo"


def _claims() -> dict[str, object]:
    """The claims of a genuinely signed access token (expired ones too), else none."""
    token = bearer_token()
    if token is None:
        return {}
    try:
        claims: dict[str, object] = jwt.decode(
            token,
            mobile().access_key,
            algorithms=["HS256"],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"verify_exp": False},
        )
    except jwt.PyJWTError:
        return {}
    return claims


def client_key() -> str:
    """The session id of a genuinely signed token (expired ones too), else the client address."""
    sid = _claims().get("sid")
    if isinstance(sid, int):
        return f"session:{sid}"
    return f"address:{request.remote_addr or 'unknown'}"


def account_key() -> str:
    """The account of a genuinely signed token, so every device of one resident shares a budget; else the address."""
    account = _claims().get("sub")
    if isinstance(account, str):
        return f"account:{account}"
    return f"address:{request.remote_addr or 'unknown'}"


def _not_a_photo_upload() -> bool:
    return request.endpoint != PHOTO_ENDPOINT or request.method != "POST"


def address_key() -> str:
    """The client address (behind trusted proxies, the forwarded one)."""
    return f"address:{request.remote_addr or 'unknown'}"


def make_limiter(app: Flask, config: RateLimitConfig) -> Limiter:
    """A limiter for this app alone (its own counters), with the default limit on every route."""
    app.config.update(RATELIMIT_ENABLED=config.enabled, RATELIMIT_HEADERS_ENABLED=True)
    return Limiter(
        client_key,
        app=app,
        # Each selfie is an expensive decode: a budget per resident on top of the per-device default, checked
        # before the upload is read.
        default_limits=[
            config.default,
            Limit(config.photos, key_function=account_key, scope="photo_upload", exempt_when=_not_a_photo_upload),
        ],
        storage_uri=config.storage_uri,
        strategy="moving-window",
    )
