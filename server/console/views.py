"""Console: the dashboard."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue

from server.console.roles import ANY_ROLE, require_role
from server.extensions import db
from server.services.reports import dashboard as service

bp = Blueprint("views", __name__)

# Width of the chart's bar area, in SVG user units.
BAR_WIDTH = 240


@bp.get("/")
@require_role(*ANY_ROLE)
def dashboard() -> ResponseReturnValue:
    """Terminals online and offline, sync lag, pending deletions, open alarms and today's entries by method."""
    figures = service.dashboard(db.session)
    peak = max((count for _, count in figures.entries_today), default=0)
    bars = [(method, count, round(count / peak * BAR_WIDTH) if peak else 0) for method, count in figures.entries_today]
    return render_template("dashboard.html", figures=figures, bars=bars, bar_width=BAR_WIDTH, shown=service.SHOWN)
