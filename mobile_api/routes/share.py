"""The visitor's share page: the pass QR, its doors and times, no sign-in and nothing personal."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint(
    "share", __name__, template_folder="../templates", static_folder="../static", static_url_path="/v/static"
)
