"""Console: doors and the entry methods each accepts."""

from __future__ import annotations

from dataclasses import asdict

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from server.console.access.common import METHODS, actor, all_sites, bp, message
from server.console.access.forms import CHOOSE_SITE, DoorForm, NewDoorForm
from server.console.forms import field_errors
from server.console.roles import MANAGERS, require_role
from server.extensions import db
from server.models import Door, Site
from server.services.access import sites
from server.services.access.sites import DoorMethods
from server.services.errors import DomainError


@bp.get("/doors")
@require_role(*MANAGERS)
def doors() -> ResponseReturnValue:
    """Every site's doors with the entry methods they accept and the terminals serving them."""
    found = db.session.scalars(
        select(Site).order_by(Site.name, Site.id).options(selectinload(Site.doors).selectinload(Door.terminals))
    ).all()
    return render_template("access/doors.html", sites=found, methods=METHODS)


def _door_errors(exc: DomainError, methods: DoorMethods) -> dict[str, str]:
    if exc.code == "face_needs_alternatives":
        labels = dict(METHODS)
        missing = [str(labels[key]) for key in ("card", "id_document", "app_code") if not getattr(methods, key)]
        text = _(
            "A door that accepts face must also accept card, ID document and app code, so that nobody has to give "
            "their face to get in. Turn on %(missing)s, or turn face off for this door.",
            missing=", ".join(missing),
        )
        return {"methods": text}
    if exc.code == "no_entry_method":
        return {"methods": message(exc)}
    return {"name": message(exc)}


def _render_door(door: Door | None, form: DoorForm, errors: dict[str, str], status: int) -> ResponseReturnValue:
    return (
        render_template(
            "access/door_form.html", door=door, form=form, errors=errors, sites=all_sites(), methods=METHODS
        ),
        status,
    )


@bp.route("/doors/new", methods=["GET", "POST"])
@require_role(*MANAGERS)
def new_door() -> ResponseReturnValue:
    """Add a door to a site."""
    if request.method == "GET":
        fresh = NewDoorForm(data={"site_id": request.args.get("site", type=int), **asdict(DoorMethods())})
        return _render_door(None, fresh, {}, 200)
    form = NewDoorForm()
    site = db.session.get(Site, form.site_id.data) if form.validate_on_submit() else None
    if site is None:  # none chosen, or one that no longer exists
        return _render_door(None, form, {"site": str(CHOOSE_SITE)}, 422)
    methods = form.methods()
    try:
        door = sites.save_door(db.session, actor(), site, form.name.data, methods)
    except DomainError as exc:
        db.session.rollback()
        return _render_door(None, form, _door_errors(exc, methods), exc.http_status)
    db.session.commit()
    flash(_("Door %(name)s added.", name=door.name), "success")
    return redirect(url_for(".doors"))


@bp.route("/doors/<int:door_id>/edit", methods=["GET", "POST"])
@require_role(*MANAGERS)
def edit_door(door_id: int) -> ResponseReturnValue:
    """Rename a door or change the entry methods it accepts."""
    door = db.session.get(Door, door_id)
    if door is None:
        abort(404, _("No door with this id."))
    if request.method == "GET":
        return _render_door(door, DoorForm(data={"name": door.name, **asdict(sites.methods_of(door))}), {}, 200)
    form = DoorForm()
    if not form.validate_on_submit():
        return _render_door(door, form, field_errors(form), 422)
    methods = form.methods()
    try:
        sites.edit_door(db.session, actor(), door, form.name.data, methods)
    except DomainError as exc:
        db.session.rollback()
        return _render_door(door, form, _door_errors(exc, methods), exc.http_status)
    db.session.commit()
    flash(_("Door %(name)s saved.", name=door.name), "success")
    return redirect(url_for(".doors"))
