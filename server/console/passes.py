"""Console: Visitor passes: list and revoke."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("passes", __name__, url_prefix="/passes")
