"""Request limits (Flask-Limiter): per signed-in device when a genuine token is sent, per address otherwise."""

from __future__ import annotations

import jwt
from flask import Flask, request
from flask_limiter import Limiter

from mobile_api.auth import bearer_token
from mobile_api.config import RateLimitConfig
from mobile_api.state import mobile
from server.services.accounts.app_sessions import AUDIENCE, ISSUER


def client_key() -> str:
    """The session id of a genuinely signed token (expired ones too), else the client address."""
    token = bearer_token()
    if token is not None:
        try:
            claims = jwt.decode(
                token,
                mobile().access_key,
                algorithms=["HS256"],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"verify_exp": False},
            )
        except jwt.PyJWTError:
            claims = {}
        sid = claims.get("sid")
        if isinstance(sid, int):
            return f"session:{sid}"
    return f"address:{request.remote_addr or 'unknown'}"


def address_key() -> str:
    """The client address (behind trusted proxies, the forwarded one)."""
    return f"address:{request.remote_addr or 'unknown'}"


def make_limiter(app: Flask, config: RateLimitConfig) -> Limiter:
    """A limiter for this app alone (its own counters), with the default limit on every route."""
    app.config.update(RATELIMIT_ENABLED=config.enabled, RATELIMIT_HEADERS_ENABLED=True)
    return Limiter(
        client_key,
        app=app,
        default_limits=[config.default],
        storage_uri=config.storage_uri,
        strategy="moving-window",
    )
