"""Console: Events log with CSV export, and the audit log."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("monitor", __name__)
