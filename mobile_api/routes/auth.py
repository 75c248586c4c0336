"""Signing in and out: password, one-time code, refresh, sign-out, password change."""

from __future__ import annotations

from ..auth import public_blueprint, resident_blueprint

public = public_blueprint("auth", __name__, "Sign-in")
bp = resident_blueprint("session", __name__, "Sign-in")
