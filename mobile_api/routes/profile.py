"""The resident's own profile, credentials, doors and app-code provisioning."""

from __future__ import annotations

from ..auth import resident_blueprint

bp = resident_blueprint("profile", __name__, "Profile")
