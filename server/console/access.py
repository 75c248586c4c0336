"""Console: Doors, access groups with weekly schedules, and holidays."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload
from werkzeug.datastructures import MultiDict

from gatehouse_core.schedule import MINUTES_PER_DAY, Window, parse_hhmm
from server.console.roles import MANAGERS, require_role
from server.extensions import db
from server.models import AccessGroup, Door, Holiday, Site, access_group_members
from server.services.access import access, sites
from server.services.access.access import WindowsRejected
from server.services.access.sites import DoorMethods
from server.services.audit import Actor
from server.services.errors import DomainError

bp = Blueprint("access", __name__)

WEEKDAYS = (_l("Monday"), _l("Tuesday"), _l("Wednesday"), _l("Thursday"), _l("Friday"), _l("Saturday"), _l("Sunday"))
SLOTS_PER_DAY = 3  # empty "from/to" pairs offered per weekday (one more appears when these are all used)
MAX_SLOTS_PER_DAY = 12
METHODS = (("face", _l("Face")), ("card", _l("Card")), ("id_document", _l("ID document")), ("app_code", _l("App code")))
_SLOT_FIELD = re.compile(r"^w([0-6])_(\d{1,2})_(from|to)$")


def _actor() -> Actor:
    return Actor.of(current_user._get_current_object())


def _all_sites() -> list[Site]:
    return list(db.session.scalars(select(Site).order_by(Site.name, Site.id)))


def _site_or_404(site_id: int | None) -> Site:
    site = db.session.get(Site, site_id) if site_id is not None else None
    if site is None:
        abort(404, _("No site with this id."))
    return site


def _message(exc: DomainError) -> str:
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


# ---- doors --------------------------------------------------------------------------------------------------------


@bp.get("/doors")
@require_role(*MANAGERS)
def doors() -> ResponseReturnValue:
    """Every site's doors with the entry methods they accept and the terminals serving them."""
    found = db.session.scalars(
        select(Site).order_by(Site.name, Site.id).options(selectinload(Site.doors).selectinload(Door.terminals))
    ).all()
    return render_template("access/doors.html", sites=found, methods=METHODS)


def _door_methods(form: MultiDict[str, str]) -> DoorMethods:
    return DoorMethods(**{key: key in form for key, _label in METHODS})


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
        return {"methods": _message(exc)}
    return {"name": _message(exc)}


def _render_door(door: Door | None, values: dict[str, Any], errors: dict[str, str], status: int) -> ResponseReturnValue:
    return (
        render_template(
            "access/door_form.html", door=door, values=values, errors=errors, sites=_all_sites(), methods=METHODS
        ),
        status,
    )


@bp.route("/doors/new", methods=["GET", "POST"])
@require_role(*MANAGERS)
def new_door() -> ResponseReturnValue:
    """Add a door to a site."""
    if request.method == "GET":
        values: dict[str, Any] = {"name": "", "site_id": request.args.get("site", type=int), "methods": DoorMethods()}
        return _render_door(None, values, {}, 200)
    methods = _door_methods(request.form)
    site_id = request.form.get("site_id", type=int)
    name = request.form.get("name", "")
    values = {"name": name, "site_id": site_id, "methods": methods}
    site = db.session.get(Site, site_id) if site_id is not None else None
    if site is None:
        return _render_door(None, values, {"site": _("Choose the site this door belongs to.")}, 422)
    try:
        door = sites.save_door(db.session, _actor(), site, name, methods)
    except DomainError as exc:
        db.session.rollback()
        return _render_door(None, values, _door_errors(exc, methods), exc.http_status)
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
        values: dict[str, Any] = {"name": door.name, "site_id": door.site_id, "methods": sites.methods_of(door)}
        return _render_door(door, values, {}, 200)
    methods = _door_methods(request.form)
    name = request.form.get("name", "")
    values = {"name": name, "site_id": door.site_id, "methods": methods}
    try:
        sites.edit_door(db.session, _actor(), door, name, methods)
    except DomainError as exc:
        db.session.rollback()
        return _render_door(door, values, _door_errors(exc, methods), exc.http_status)
    db.session.commit()
    flash(_("Door %(name)s saved.", name=door.name), "success")
    return redirect(url_for(".doors"))


# ---- access groups ------------------------------------------------------------------------------------------------


def clock(minute: int) -> str:
    """Minutes from midnight as read in a schedule summary: 450 -> '07:30', 1440 -> '24:00'."""
    return f"{minute // 60:02d}:{minute % 60:02d}"


def hhmm(minute: int) -> str:
    """Minutes from midnight as the value of a time input; the end of the day is 00:00."""
    minute %= MINUTES_PER_DAY
    return f"{minute // 60:02d}:{minute % 60:02d}"


@dataclass
class Slot:
    """One from/to pair of the schedule editor, as typed."""

    start: str = ""
    end: str = ""


@dataclass
class ScheduleForm:
    """The weekly schedule editor: per weekday a list of slots, with per-field errors."""

    days: list[list[Slot]]
    errors: dict[str, str] = field(default_factory=dict)
    windows: list[Window] = field(default_factory=list)
    # Position in `windows` -> (weekday, slot), to put the service's complaints next to the right fields.
    origin: list[tuple[int, int]] = field(default_factory=list)

    @classmethod
    def of(cls, group: AccessGroup | None) -> ScheduleForm:
        days: list[list[Slot]] = [[] for _day in range(7)]
        for w in group.windows if group is not None else ():
            days[w.weekday].append(Slot(hhmm(w.start_minute), hhmm(w.end_minute)))
        return cls(_padded(days))

    @classmethod
    def parse(cls, form: MultiDict[str, str]) -> ScheduleForm:
        days: list[dict[int, Slot]] = [{} for _day in range(7)]
        for key, value in form.items():
            match = _SLOT_FIELD.match(key)
            if match is None or int(match[2]) >= MAX_SLOTS_PER_DAY:
                continue
            slot = days[int(match[1])].setdefault(int(match[2]), Slot())
            if match[3] == "from":
                slot.start = value.strip()
            else:
                slot.end = value.strip()
        parsed = cls(_padded([[slots[k] for k in sorted(slots)] for slots in days]))
        parsed._read()
        return parsed

    def _read(self) -> None:
        for day, slots in enumerate(self.days):
            for index, slot in enumerate(slots):
                if not slot.start and not slot.end:
                    continue
                start_key, end_key = f"w{day}_{index}_from", f"w{day}_{index}_to"
                if not slot.start or not slot.end:
                    self.errors[end_key if slot.start else start_key] = _(
                        "Give both a start and an end time, or clear both."
                    )
                    continue
                start, end = _minute(slot.start), _minute(slot.end)
                if start is None:
                    self.errors[start_key] = _("Enter a time like 07:30.")
                if end is None:
                    self.errors[end_key] = _("Enter a time like 17:30 (00:00 means midnight, the end of the day).")
                if start is None or end is None:
                    continue
                if end == 0:
                    end = MINUTES_PER_DAY  # "to 00:00" is midnight at the end of the day
                if not start < end:
                    self.errors[end_key] = _("End the window after it starts (00:00 means midnight).")
                    continue
                self.windows.append(Window(day, start, end))
                self.origin.append((day, index))

    def rejected(self, exc: WindowsRejected) -> None:
        """Mark the windows the service refused."""
        for position in exc.problems:
            day, index = self.origin[position]
            self.errors[f"w{day}_{index}_from"] = _(
                "This window overlaps another one on %(day)s; join them or move one.", day=WEEKDAYS[day]
            )


def _padded(days: list[list[Slot]]) -> list[list[Slot]]:
    """At least SLOTS_PER_DAY pairs a day, and always one empty pair to add a window without scripts."""
    for slots in days:
        while slots and not slots[-1].start and not slots[-1].end and len(slots) > SLOTS_PER_DAY:
            slots.pop()
        filled = sum(1 for s in slots if s.start or s.end)
        while len(slots) < min(MAX_SLOTS_PER_DAY, max(SLOTS_PER_DAY, filled + 1)):
            slots.append(Slot())
    return days


def _minute(text: str) -> int | None:
    # Browsers send HH:MM, or HH:MM:SS when seconds are shown.
    if len(text) == 8 and text.endswith(":00"):
        text = text[:5]
    try:
        return parse_hhmm(text)
    except ValueError:
        return None


def people_link(group_id: int) -> str | None:
    """The people list filtered to a group's members, if the console has that page."""
    if "people.index" not in current_app.view_functions:
        return None
    return url_for("people.index", group=group_id)


def _member_counts(group_ids: list[int]) -> dict[int, int]:
    if not group_ids:
        return {}
    rows = db.session.execute(
        select(access_group_members.c.group_id, func.count())
        .where(access_group_members.c.group_id.in_(group_ids))
        .group_by(access_group_members.c.group_id)
    )
    return {gid: n for gid, n in rows}


@bp.get("/groups")
@require_role(*MANAGERS)
def groups() -> ResponseReturnValue:
    """Every site's access groups with their doors, weekly windows and number of members."""
    found = db.session.scalars(
        select(AccessGroup)
        .order_by(AccessGroup.site_id, AccessGroup.name)
        .options(selectinload(AccessGroup.doors), selectinload(AccessGroup.windows))
    ).all()
    by_site: dict[int, list[AccessGroup]] = {}
    for group in found:
        by_site.setdefault(group.site_id, []).append(group)
    return render_template(
        "access/groups.html",
        sites=_all_sites(),
        by_site=by_site,
        counts=_member_counts([g.id for g in found]),
        weekdays=WEEKDAYS,
        clock=clock,
        people_link=people_link,
    )


def _render_group(
    site: Site,
    group: AccessGroup | None,
    values: dict[str, Any],
    schedule: ScheduleForm,
    errors: dict[str, str],
    status: int = 200,
) -> ResponseReturnValue:
    members = _member_counts([group.id]).get(group.id, 0) if group is not None else 0
    return (
        render_template(
            "access/group_form.html",
            site=site,
            group=group,
            values=values,
            schedule=schedule,
            errors={**schedule.errors, **errors},
            weekdays=WEEKDAYS,
            members=members,
            people_url=people_link(group.id) if group is not None else None,
        ),
        status,
    )


def _save_group(site: Site, group: AccessGroup | None) -> ResponseReturnValue:
    form = request.form
    door_ids = {int(v) for v in form.getlist("door") if v.isdigit()}
    name, open_on_holidays = form.get("name", ""), "open_on_holidays" in form
    values: dict[str, Any] = {"name": name, "doors": door_ids, "open_on_holidays": open_on_holidays}
    schedule = ScheduleForm.parse(form)
    if schedule.errors:
        return _render_group(site, group, values, schedule, {}, 422)
    chosen = list(db.session.scalars(select(Door).where(Door.id.in_(door_ids)))) if door_ids else []
    try:
        if group is None:
            group = access.create_group(
                db.session,
                _actor(),
                site,
                name,
                chosen,
                schedule.windows,
                open_on_holidays=open_on_holidays,
            )
        else:
            access.update_group(
                db.session,
                _actor(),
                group,
                name=name,
                doors=chosen,
                windows=schedule.windows,
                open_on_holidays=open_on_holidays,
            )
    except WindowsRejected as exc:
        db.session.rollback()
        schedule.rejected(exc)
        return _render_group(site, group, values, schedule, {}, exc.http_status)
    except DomainError as exc:
        db.session.rollback()
        where = "doors" if exc.code == "foreign_door" else "name"
        return _render_group(site, group, values, schedule, {where: _message(exc)}, exc.http_status)
    db.session.commit()
    flash(_("Access group %(name)s saved.", name=group.name), "success")
    return redirect(url_for(".edit_group", group_id=group.id))


@bp.route("/groups/new", methods=["GET", "POST"])
@require_role(*MANAGERS)
def new_group() -> ResponseReturnValue:
    """Create an access group; with several sites, the site is chosen first."""
    site_id = request.values.get("site", type=int)
    if site_id is None:
        choices = _all_sites()
        if len(choices) != 1:
            return render_template("access/group_site.html", sites=choices)
        site_id = choices[0].id
    site = _site_or_404(site_id)
    if request.method == "POST":
        return _save_group(site, None)
    values: dict[str, Any] = {"name": "", "doors": set(), "open_on_holidays": True}
    # A new group starts open all day, every day; an empty schedule would let nobody in.
    all_day = ScheduleForm([[Slot("00:00", "00:00")] for _day in range(7)])
    return _render_group(site, None, values, ScheduleForm(_padded(all_day.days)), {})


@bp.route("/groups/<int:group_id>", methods=["GET", "POST"])
@require_role(*MANAGERS)
def edit_group(group_id: int) -> ResponseReturnValue:
    """Change an access group's name, doors, weekly windows and holiday rule."""
    group = db.session.get(AccessGroup, group_id)
    if group is None:
        abort(404, _("No access group with this id."))
    if request.method == "POST":
        return _save_group(group.site, group)
    values: dict[str, Any] = {
        "name": group.name,
        "doors": {d.id for d in group.doors},
        "open_on_holidays": group.open_on_holidays,
    }
    return _render_group(group.site, group, values, ScheduleForm.of(group), {})


# ---- holidays -----------------------------------------------------------------------------------------------------


def _render_holidays(
    errors: dict[str, str] | None = None, values: dict[str, Any] | None = None, status: int = 200
) -> ResponseReturnValue:
    all_sites = _all_sites()
    by_site: dict[int, list[Holiday]] = {}
    for holiday in db.session.scalars(select(Holiday).order_by(Holiday.site_id, Holiday.day)):
        by_site.setdefault(holiday.site_id, []).append(holiday)
    return (
        render_template(
            "access/holidays.html",
            sites=all_sites,
            by_site=by_site,
            errors=errors or {},
            values=values or {},
            weekdays=WEEKDAYS,
            today={s.id: datetime.now(ZoneInfo(s.timezone)).date() for s in all_sites},
        ),
        status,
    )


@bp.get("/holidays")
@require_role(*MANAGERS)
def holidays() -> ResponseReturnValue:
    """Each site's holidays, with forms to add and remove them."""
    return _render_holidays()


@bp.post("/holidays")
@require_role(*MANAGERS)
def add_holiday() -> ResponseReturnValue:
    """Declare a holiday at a site."""
    site = _site_or_404(request.form.get("site_id", type=int))
    day_text, name = request.form.get("day", ""), request.form.get("name", "")
    values = {"site_id": site.id, "day": day_text, "name": name}
    try:
        day = date.fromisoformat(day_text.strip())
    except ValueError:
        return _render_holidays({"day": _("Choose a date.")}, values, 422)
    try:
        holiday = access.add_holiday(db.session, _actor(), site, day, name)
    except DomainError as exc:
        db.session.rollback()
        where = "day" if exc.code == "duplicate_holiday" else "name"
        return _render_holidays({where: _message(exc)}, values, exc.http_status)
    db.session.commit()
    flash(_("Holiday %(name)s on %(day)s added.", name=holiday.name, day=day.isoformat()), "success")
    return redirect(url_for(".holidays"))


@bp.post("/holidays/<int:holiday_id>/remove")
@require_role(*MANAGERS)
def remove_holiday(holiday_id: int) -> ResponseReturnValue:
    """Make a holiday an ordinary day again."""
    holiday = db.session.get(Holiday, holiday_id)
    if holiday is None:
        abort(404, _("This holiday has already been removed."))
    name, day = holiday.name, holiday.day.isoformat()
    access.remove_holiday(db.session, _actor(), holiday)
    db.session.commit()
    flash(_("Holiday %(name)s on %(day)s removed.", name=name, day=day), "success")
    return redirect(url_for(".holidays"))
