"""Console pages: dashboard, terminals and people."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select

from ..extensions import db
from ..models import Door, Person, PersonStatus, Site, Terminal, TerminalStatus
from ..services.terminals import list_terminals
from .roles import ANY_ROLE, MANAGERS, require_role

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


@bp.get("/terminals")
@require_role(*ANY_ROLE)
def terminals() -> ResponseReturnValue:
    """Every terminal with its availability and sync position."""
    return render_template("terminals.html", terminals=list_terminals(db.session))


@bp.get("/people")
@require_role(*MANAGERS)
def people() -> ResponseReturnValue:
    """People of every site."""
    rows = db.session.scalars(select(Person).order_by(Person.site_id, Person.full_name).limit(500)).all()
    return render_template("people.html", people=rows)
