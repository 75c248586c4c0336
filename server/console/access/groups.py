"""Console: access groups, their doors and weekly schedules, and who is in them."""

from __future__ import annotations

from itertools import groupby

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from server.console.access.common import WEEKDAYS, actor, all_sites, bp, message, site_or_404
from server.console.access.forms import GroupForm, NewGroupForm, Slot, all_day, days_of
from server.console.forms import field_errors
from server.console.roles import MANAGERS, require_role
from server.extensions import db
from server.models import AccessGroup, Door, Site, access_group_members
from server.services.access import access
from server.services.access.access import WindowsRejected
from server.services.access.usual_group import set_usual_group
from server.services.errors import DomainError


def clock(minute: int) -> str:
    """Minutes from midnight as read in a schedule summary: 450 -> '07:30', 1440 -> '24:00'."""
    return f"{minute // 60:02d}:{minute % 60:02d}"


def schedule_lines(group: AccessGroup) -> list[tuple[str, str]]:
    """A group's week in a list's words: runs of days alike, e.g. ("Monday\u2013Friday", "07:00\u201309:00")."""
    windows = sorted(group.windows, key=lambda w: (w.weekday, w.start_minute))
    days = [
        ", ".join(f"{clock(w.start_minute)}\u2013{clock(w.end_minute)}" for w in windows if w.weekday == d)
        for d in range(7)
    ]
    lines: list[tuple[str, str]] = []
    for times, run in groupby(range(7), key=lambda d: days[d]):
        first, *rest = run
        if times:
            names = f"{WEEKDAYS[first]}\u2013{WEEKDAYS[rest[-1]]}" if rest else str(WEEKDAYS[first])
            lines.append((names, times))
    return lines


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
        sites=all_sites(),
        by_site=by_site,
        counts=_member_counts([g.id for g in found]),
        schedule_lines=schedule_lines,
        people_link=people_link,
    )


def _render_group(
    site: Site,
    group: AccessGroup | None,
    values: dict[str, object],
    days: list[list[Slot]],
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
            days=days,
            errors=errors,
            weekdays=WEEKDAYS,
            members=members,
            people_url=people_link(group.id) if group is not None else None,
        ),
        status,
    )


def _save_group(site: Site, group: AccessGroup | None, form: GroupForm) -> ResponseReturnValue:
    """Create or change a group from the posted form; a refusal shows the form again as typed."""
    values: dict[str, object] = {
        "name": form.name.data,
        "doors": form.door.data,
        "open_on_holidays": form.open_on_holidays.data,
        "usual": form.usual.data,
    }
    if not form.validate_on_submit():
        return _render_group(site, group, values, form.days(), field_errors(form), 422)
    chosen = list(db.session.scalars(select(Door).where(Door.id.in_(form.door.data)))) if form.door.data else []
    try:
        if group is None:
            group = access.create_group(
                db.session,
                actor(),
                site,
                form.name.data,
                chosen,
                form.windows,
                open_on_holidays=form.open_on_holidays.data,
            )
        else:
            access.update_group(
                db.session,
                actor(),
                group,
                name=form.name.data,
                doors=chosen,
                windows=form.windows,
                open_on_holidays=form.open_on_holidays.data,
            )
        if form.usual.data != group.usual:  # the group new people at this site are offered first
            set_usual_group(db.session, actor(), site, group if form.usual.data else None)
    except WindowsRejected as exc:
        db.session.rollback()
        form.rejected(exc)
        return _render_group(site, group, values, form.days(), field_errors(form), exc.http_status)
    except DomainError as exc:
        db.session.rollback()
        where = "doors" if exc.code == "foreign_door" else "name"
        return _render_group(site, group, values, form.days(), {where: message(exc)}, exc.http_status)
    db.session.commit()
    flash(_("Access group %(name)s saved.", name=group.name), "success")
    return redirect(url_for(".edit_group", group_id=group.id))


@bp.route("/groups/new", methods=["GET", "POST"])
@require_role(*MANAGERS)
def new_group() -> ResponseReturnValue:
    """Create an access group; with several sites, the site is chosen first."""
    form = NewGroupForm()
    # The site is chosen in the query string (on the site page), and posted again in a hidden field of the form.
    site_id = request.args.get("site", type=int)
    if site_id is None:
        site_id = form.site.data
    if site_id is None:
        choices = all_sites()
        if len(choices) != 1:
            return render_template("access/group_site.html", sites=choices)
        site_id = choices[0].id
    site = site_or_404(site_id)
    if form.is_submitted():
        return _save_group(site, None, form)
    values: dict[str, object] = {"name": "", "doors": set(), "open_on_holidays": True, "usual": False}
    return _render_group(site, None, values, all_day(), {})


@bp.route("/groups/<int:group_id>", methods=["GET", "POST"])
@require_role(*MANAGERS)
def edit_group(group_id: int) -> ResponseReturnValue:
    """Change an access group's name, doors, weekly windows and holiday rule."""
    group = db.session.get(AccessGroup, group_id)
    if group is None:
        abort(404, _("No access group with this id."))
    form = GroupForm()
    if form.is_submitted():
        return _save_group(group.site, group, form)
    values: dict[str, object] = {
        "name": group.name,
        "doors": {d.id for d in group.doors},
        "open_on_holidays": group.open_on_holidays,
        "usual": group.usual,
    }
    return _render_group(group.site, group, values, days_of(group), {})
