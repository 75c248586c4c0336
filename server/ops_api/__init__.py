"""The integration API under /api/ops/v1: events, alarms, door states and door opens for other systems.

Authorised by API keys (not console sessions), so it is exempt from the console's CSRF protection; it answers
JSON in its own error shape and documents itself at /api/ops/v1/openapi.json.
"""

from __future__ import annotations

from flask import Flask


def register_ops_api(app: Flask) -> None:
    """Attach the integration API to the server app."""
    from server.extensions import csrf
    from server.ops_api.routes import bp

    csrf.exempt(bp)
    app.register_blueprint(bp)
