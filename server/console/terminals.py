"""Console: Terminals: status, sync lag, re-sync and remote door opening."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("terminals", __name__, url_prefix="/terminals")
