"""Console: People list, search, create, edit, move-out and CSV import."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("people", __name__, url_prefix="/people")
