"""Subject access in the console: everything held about a person, as a readable page or a JSON download."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from flask import Blueprint, Response, abort, current_app, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from markupsafe import escape

from ..extensions import db
from ..models import Person
from ..services import subject_access as service
from ..services.audit import Actor
from .roles import MANAGERS, require_role

bp = Blueprint("subject_access", __name__)


def readable_time(value: str | None) -> str:
    """An ISO date or UTC datetime from the report as people write it: '3 May 2025, 14:05 UTC'."""
    if not value:
        return "—"
    if len(value) == 10:
        day = date.fromisoformat(value)
        return f"{day.day} {day:%B %Y}"
    moment = datetime.fromisoformat(value)
    return f"{moment.day} {moment:%B %Y, %H:%M} UTC"


def words(value: object) -> str:
    """A code from the report ('consent_withdrawn') as words ('consent withdrawn')."""
    if value is None:
        return "—"
    return str(value).replace("_", " ")


def _helpers() -> dict[str, Any]:
    return {"when": readable_time, "words": words}


def _person(person_id: int) -> Person:
    person = db.session.get(Person, person_id)
    if person is None:
        abort(404, "No person with this id.")
    return person


@bp.get("/people/<int:person_id>/subject-access")
@require_role(*MANAGERS)
def page(person_id: int) -> ResponseReturnValue:
    """Everything held about a person, in plain English."""
    person = _person(person_id)
    report = service.export(db.session, Actor.of(current_user), person, "html")
    db.session.commit()
    json_url = url_for(".download", person_id=person.id)
    return render_template("subject_access.html", report=report, json_url=json_url, **_helpers())


@bp.get("/people/<int:person_id>/subject-access.json")
@require_role(*MANAGERS)
def download(person_id: int) -> ResponseReturnValue:
    """Everything held about a person, as a JSON file named by pseudonym (names stay out of file listings)."""
    person = _person(person_id)
    report = service.export(db.session, Actor.of(current_user), person, "json")
    db.session.commit()
    return Response(
        to_json(report),
        mimetype="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="subject-access-{person.pseudonym}.json"',
            "Cache-Control": "no-store",
        },
    )


def to_json(report: dict[str, Any]) -> str:
    """The report as the JSON document people receive."""
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


def render_document(report: dict[str, Any]) -> str:
    """The page as a self-contained HTML file (for the CLI): the page's content block, no console chrome."""
    template = current_app.jinja_env.get_template("subject_access.html")
    context = template.new_context({"report": report, "json_url": None, **_helpers()})
    body = "".join(template.blocks["content"](context))
    with current_app.open_resource("console/static/console.css", "r", encoding="utf-8") as handle:
        css: str = handle.read()
    title = escape(f"Subject access report · {report['person']['pseudonym']}")
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{title}</title>\n<style>\n{css}</style>\n</head>\n"
        f'<body>\n<main id="main">\n{body}\n</main>\n</body>\n</html>\n'
    )
