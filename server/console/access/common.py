"""Console access pages: the blueprint, and what the doors, groups and holidays pages share."""

from __future__ import annotations

from flask import Blueprint, abort
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from server.extensions import db
from server.models import Site
from server.services.audit import Actor
from server.services.errors import DomainError

bp = Blueprint("access", __name__)

WEEKDAYS = (_l("Monday"), _l("Tuesday"), _l("Wednesday"), _l("Thursday"), _l("Friday"), _l("Saturday"), _l("Sunday"))
METHODS = (("face", _l("Face")), ("card", _l("Card")), ("id_document", _l("ID document")), ("app_code", _l("App code")))


def actor() -> Actor:
    """The logged-in console user, as the services audit them."""
    return Actor.of(current_user._get_current_object())


def all_sites() -> list[Site]:
    """Every site, by name."""
    return list(db.session.scalars(select(Site).order_by(Site.name, Site.id)))


def site_or_404(site_id: int | None) -> Site:
    """The site, or a 404 page."""
    site = db.session.get(Site, site_id) if site_id is not None else None
    if site is None:
        abort(404, _("No site with this id."))
    return site


def message(exc: DomainError) -> str:
    """The service's refusal in the user's language, when the console knows the reason."""
    known = {
        "no_entry_method": _("Choose at least one way through this door."),
        "door_name_missing": _("Give the door a name."),
        "duplicate_door": _("This site already has a door with this name; choose another name."),
        "group_name_missing": _("Give the group a name (up to 120 characters)."),
        "duplicate_group": _("This site already has an access group with this name; choose another name."),
        "foreign_door": _("Choose only doors of the group's own site."),
        "duplicate_holiday": _("This day is already a holiday at this site."),
        "holiday_name_missing": _("Give the holiday a name (up to 120 characters)."),
        "bad_windows": _("Some time windows overlap; fix the marked ones and save again."),
    }
    return known.get(exc.code, exc.message)
