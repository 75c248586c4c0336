"""Console: the operations screen (door board, alarm inbox, live events) and its Server-Sent Events stream."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    get_template_attribute,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask import session as cookie_session
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.console.operations import rows, stream, words
from server.console.operations.forms import AlarmActionForm, WatchForm
from server.console.operations.scope import Scope, scope_for, user_sites
from server.console.roles import ANY_ROLE, MANAGERS, require_role
from server.extensions import db
from server.models import AccessGroup, Alarm, FeedItem, FeedKind, Site
from server.services.accounts.users import load_session_user
from server.services.audit import Actor
from server.services.errors import DomainError
from server.services.operations import alarms, feed
from server.services.session import DbSession
from server.services.wording.operators import describe

bp = Blueprint("operations", __name__, url_prefix="/operations")

# Tests and benchmarks shorten the stream's pacing through this config key (a stream.Settings).
SETTINGS_KEY = "GATEHOUSE_OPERATIONS_STREAM"
DOOR_ALARM_STATES = frozenset({"forced_open", "held_open"})

for _name, _helper in (
    ("door_state_words", words.door_state),
    ("link_words", words.link),
    ("severity_words", words.severity),
    ("alarm_kind_words", words.alarm_kind),
    ("ops_time", rows.short_time),
):
    bp.add_app_template_global(_helper, _name)


def _number(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _watch_args() -> dict[str, Any]:
    """The page's filters as query arguments (kept across an alarm action and in the stream's URL)."""
    return {key: value for key in ("site", "group") if (value := request.args.get(key, "")).isdigit()}


def _watch_form() -> tuple[WatchForm, Scope]:
    """The filter form with its choices, and the scope it selects (every door of the user's sites if invalid)."""
    form = WatchForm(request.args)
    allowed = user_sites(db.session, current_user)
    sites_stmt = select(Site.id, Site.name).order_by(Site.name, Site.id)
    groups_stmt = select(AccessGroup.id, AccessGroup.site_id, AccessGroup.name).order_by(AccessGroup.name)
    if allowed is not None:
        sites_stmt = sites_stmt.where(Site.id.in_(allowed))
        groups_stmt = groups_stmt.where(AccessGroup.site_id.in_(allowed))
    sites = db.session.execute(sites_stmt).all()
    names = {site_id: name for site_id, name in sites}
    several = len(sites) > 1

    def named(site_id: int, name: str) -> str:
        return _("%(site)s: %(name)s", site=names.get(site_id, "?"), name=name) if several else name

    form.site.choices = [("", _("Every site")), *((str(i), n) for i, n in sites)]
    form.group.choices = [
        ("", _("Every door")),
        *((str(i), named(s, n)) for i, s, n in db.session.execute(groups_stmt)),
    ]
    for select_field in (form.site, form.group):
        if select_field.data is None:
            select_field.data = ""
    if not form.validate():
        return form, scope_for(db.session, current_user, None, None)
    return form, scope_for(db.session, current_user, _number(form.site.data), _number(form.group.data))


def _render_page(
    status: int = 200,
    action_errors: dict[int, list[str]] | None = None,
    action_comments: dict[int, str] | None = None,
) -> ResponseReturnValue:
    form, scope = _watch_form()
    places = rows.Places()
    places.load(db.session)
    # The stream starts after the newest item the page was drawn from: nothing between is missed or shown twice.
    last_id = feed.latest_id(db.session)
    args = _watch_args()
    page = render_template(
        "operations/page.html",
        form=form,
        filtered=bool(args),
        args=args,
        doors=rows.board(db.session, scope, places),
        alarms=rows.open_alarms(db.session, scope, places),
        feed=rows.recent_feed(db.session, scope, last_id, places),
        feed_cap=rows.FEED_CAP,
        can_resolve=current_user.role in MANAGERS,
        action_errors=action_errors or {},
        action_comments=action_comments or {},
        stream_url=url_for(".events", after=last_id, **args),
    )
    return page, status


@bp.get("")
@require_role(*ANY_ROLE)
def page() -> ResponseReturnValue:
    """The guard's home page: door board, alarm inbox and live events, drawn now and kept live by the stream."""
    return _render_page()


def _alarm_action(alarm_id: int, act: Callable[..., Alarm], done: str) -> ResponseReturnValue:
    """Validate the comment, call the alarms service, and answer with the page (re-drawn on a refusal)."""
    form = AlarmActionForm()
    comment = (form.comment.data or "").strip()
    if not form.validate_on_submit():
        errors = [str(e) for e in form.comment.errors] or [_("The form expired; send it again.")]
        return _render_page(400, {alarm_id: errors}, {alarm_id: comment})
    try:
        act(
            db.session,
            Actor.of(current_user._get_current_object()),
            alarm_id,
            comment,
            site_ids=user_sites(db.session, current_user),
        )
    except DomainError as exc:
        db.session.rollback()
        return _render_page(exc.http_status, {alarm_id: [describe(exc)]}, {alarm_id: comment})
    db.session.commit()
    flash(done, "success")
    return redirect(url_for(".page", **_watch_args()))


@bp.post("/alarms/<int:alarm_id>/acknowledge")
@require_role(*ANY_ROLE)
def acknowledge(alarm_id: int) -> ResponseReturnValue:
    """Acknowledge an alarm with a comment (guards and managers)."""
    return _alarm_action(alarm_id, alarms.acknowledge, _("Alarm acknowledged."))


@bp.post("/alarms/<int:alarm_id>/resolve")
@require_role(*MANAGERS)
def resolve(alarm_id: int) -> ResponseReturnValue:
    """Resolve an alarm with a comment (managers)."""
    return _alarm_action(alarm_id, alarms.resolve, _("Alarm resolved."))


# ---- the stream ---------------------------------------------------------------------------------------------------


class Renderer:
    """Feed items as the screen's events, each with the HTML the page's script inserts (rendered by the same
    macros as the first paint, so escaped the same way)."""

    def __init__(self, scope: Scope, can_resolve: bool, args: dict[str, Any]) -> None:
        self.scope = scope
        self.can_resolve = can_resolve
        self.args = args
        self.places = rows.Places()

    def __call__(self, session: DbSession, items: Sequence[FeedItem]) -> list[stream.Message]:
        """Messages for the items in scope, in feed order."""
        events = {row.feed_id: row for row in rows.feed_rows(session, items, self.scope, self.places)}
        messages = []
        for item in items:
            message: stream.Message | None = None
            if item.kind == FeedKind.EVENT and item.id in events:
                message = self._access(events[item.id])
            elif item.kind == FeedKind.ALARM:
                message = self._alarm(session, item)
            elif item.kind == FeedKind.DOOR and self.scope.shows_door(item.ref_id):
                message = self._door(session, item)
            if message is not None:
                messages.append(message)
        return messages

    def _access(self, row: rows.FeedRow) -> stream.Message:
        html = get_template_attribute("operations/_parts.html", "feed_row")(row)
        data = {"door": row.door_id, "decision": row.decision, "html": str(html)}
        return stream.Message(row.feed_id, "access", data)

    def _alarm(self, session: DbSession, item: FeedItem) -> stream.Message | None:
        alarm = session.get(Alarm, item.ref_id)
        if alarm is None or not self.scope.shows_door(alarm.door_id):
            return None
        self.places.ensure(session, [alarm.door_id], [alarm.site_id])
        row = rows.alarm_row(alarm, self.places)
        data: dict[str, Any] = {"alarm": alarm.id, "step": item.topic, "open": not row.resolved, "cue": False}
        if not row.resolved:
            data["html"] = str(
                get_template_attribute("operations/_parts.html", "alarm_item")(row, self.can_resolve, self.args)
            )
            data["cue"] = item.topic == "alarm.raised"
        return stream.Message(item.id, "alarm", data)

    def _door(self, session: DbSession, item: FeedItem) -> stream.Message | None:
        row = rows.board_row(session, item.ref_id, item.site_id, self.places)
        if row is None:
            return None
        html = get_template_attribute("operations/_parts.html", "door_row")(row)
        data = {"door": row.door_id, "state": row.state, "cue": row.state in DOOR_ALARM_STATES, "html": str(html)}
        return stream.Message(item.id, "door", data)


@bp.get("/stream", endpoint="events")
@require_role(*ANY_ROLE)
def events() -> ResponseReturnValue:
    """Server-Sent Events: each feed item in the user's scope after Last-Event-ID (or ?after=), as it is stored."""
    scope = scope_for(db.session, current_user, _number(request.args.get("site")), _number(request.args.get("group")))
    after = stream.parse_after(request.headers.get("Last-Event-ID"), request.args.get("after"))
    settings: stream.Settings = current_app.config.get(SETTINGS_KEY) or stream.Settings()
    render = Renderer(scope, current_user.role in MANAGERS, _watch_args())
    login_id = str(cookie_session.get("_user_id", ""))
    engine = db.engine
    # waitress tells whether the browser is still there; other servers find out at the next write.
    gone: Callable[[], bool] = request.environ.get("waitress.client_disconnected") or (lambda: False)
    # The user's language is chosen now, while their row can still be read; the rows are then drawn in it.
    get_locale()
    # The request's own session would hold its connection for the stream's lifetime: end it now.
    db.session.commit()

    @contextmanager
    def short_session() -> Iterator[DbSession]:
        with Session(engine) as session:
            yield session

    def still_logged_in(session: DbSession) -> bool:
        return load_session_user(session, login_id) is not None

    body = stream.events(short_session, scope, after, render, settings, still_allowed=still_logged_in, gone=gone)
    return Response(
        stream_with_context(body),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
