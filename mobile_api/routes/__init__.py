"""The API's routes, one module per area; each module owns its blueprint."""

from __future__ import annotations

from flask_limiter import Limiter
from flask_openapi3 import OpenAPI

from mobile_api.config import RateLimitConfig
from mobile_api.routes import auth, face, passes, profile, records, share


def register_routes(app: OpenAPI, limiter: Limiter, limits: RateLimitConfig) -> None:
    """Attach every area's blueprint, with the stricter limits where guessing or spamming is possible."""
    # One budget per address for every sign-in route (password, code, refresh), so switching routes buys nothing.
    limiter.shared_limit(limits.sign_in, scope="sign_in", key_func=_address)(auth.public)
    limiter.shared_limit(limits.passes, scope="pass_create", methods=["POST"])(passes.bp)
    app.register_api(auth.public)
    app.register_api(auth.bp)
    app.register_api(profile.bp)
    app.register_api(face.bp)
    app.register_api(records.bp)
    app.register_api(passes.bp)
    app.register_blueprint(share.bp)


def _address() -> str:
    from mobile_api.limits import address_key

    return address_key()
