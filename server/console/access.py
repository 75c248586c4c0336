"""Console: Doors, access groups with weekly schedules, and holidays."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("access", __name__)
