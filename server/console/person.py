"""Console: One person's page: credentials, face consent and photo, groups."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("person", __name__, url_prefix="/people")
