"""Console person page: the page itself and the person's access groups."""

from __future__ import annotations

from flask import (
    abort,
    flash,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import IntegerField
from wtforms.validators import InputRequired

from server.console.person.common import actor, back, bp, load_person, refused, render_person
from server.console.roles import MANAGERS, require_role
from server.extensions import db
from server.models import (
    AccessGroup,
)
from server.services.access import access
from server.services.errors import DomainError

CHOOSE_GROUP = _l("Choose an access group.")


class AddGroupForm(FlaskForm):
    """The access group to add the person to."""

    group = IntegerField(validators=[InputRequired(CHOOSE_GROUP)], invalid_value_message=CHOOSE_GROUP)


@bp.get("/<int:person_id>")
@require_role(*MANAGERS)
def show(person_id: int) -> ResponseReturnValue:
    """Everything about one person that a manager works with."""
    return render_person(load_person(person_id))


# ---- access groups ---------------------------------------------------------------------------------------------


@bp.post("/<int:person_id>/groups")
@require_role(*MANAGERS)
def add_group(person_id: int) -> ResponseReturnValue:
    """Add the person to an access group of their site."""
    person = load_person(person_id)
    form = AddGroupForm()
    group = db.session.get(AccessGroup, form.group.data) if form.validate_on_submit() else None
    if group is None:  # none chosen, or one that no longer exists
        return render_person(person, status=422, errors={"group": str(CHOOSE_GROUP)})
    try:
        access.add_member(db.session, actor(), group, person)
    except DomainError as exc:
        return refused(person, "group", exc)
    db.session.commit()
    flash(_("Added to %(group)s.", group=group.name), "success")
    return back(person)


@bp.post("/<int:person_id>/groups/<int:group_id>/remove")
@require_role(*MANAGERS)
def remove_group(person_id: int, group_id: int) -> ResponseReturnValue:
    """Take the person out of an access group."""
    person = load_person(person_id)
    group = db.session.get(AccessGroup, group_id)
    if group is None:
        abort(404, _("No such access group."))
    access.remove_member(db.session, actor(), group, person)
    db.session.commit()
    flash(_("Removed from %(group)s.", group=group.name), "success")
    return back(person)
