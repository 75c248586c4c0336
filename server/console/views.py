"""Console: the dashboard."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select

from ..extensions import db
from ..models import Door, Person, PersonStatus, Site, Terminal, TerminalStatus
from .roles import ANY_ROLE, require_role

bp = Blueprint("views", __name__)


@bp.get("/")
@require_role(*ANY_ROLE)
def dashboard() -> ResponseReturnValue:
    """Doors, terminals online and offline, people."""
    by_status = dict(db.session.execute(select(Terminal.status, func.count()).group_by(Terminal.status)).all())
    figures = {
        "sites": db.session.scalar(select(func.count()).select_from(Site)),
        "doors": db.session.scalar(select(func.count()).select_from(Door)),
        "people": db.session.scalar(
            select(func.count()).select_from(Person).where(Person.status == PersonStatus.ACTIVE)
        ),
        "online": by_status.get(TerminalStatus.ONLINE, 0),
        "offline": by_status.get(TerminalStatus.OFFLINE, 0) + by_status.get(TerminalStatus.UNKNOWN, 0),
    }
    return render_template("dashboard.html", figures=figures)
