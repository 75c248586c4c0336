"""Console: Privacy: notices, impact assessment, retention settings and figures."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("privacy", __name__, url_prefix="/privacy")
