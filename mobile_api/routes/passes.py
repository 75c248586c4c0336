"""Visitor passes the resident issues: create, list, show, revoke, and each pass's entries."""

from __future__ import annotations

from ..auth import resident_blueprint

bp = resident_blueprint("passes", __name__, "Visitor passes")
