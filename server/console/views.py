"""Console: the dashboard."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, current_app, render_template
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from server.console import charts
from server.console.monitor import method_label, reason_label
from server.console.roles import ANY_ROLE, MANAGERS, require_role
from server.extensions import db
from server.models import AlarmKind, AlarmSeverity
from server.services.reports import activity
from server.services.reports import dashboard as service
from server.services.reports.activity import Activity, ReportCache
from server.services.reports.alarm_board import RECENT_DAYS

bp = Blueprint("views", __name__)

# The same words as the privacy page's list of alarms, and the kinds terminals raise.
ALARM_KIND_LABELS: dict[AlarmKind, Any] = {
    AlarmKind.ERASURE_OVERDUE: _l("Erasure overdue"),
    AlarmKind.FACE_COUNT: _l("Face count near the filing threshold"),
    AlarmKind.SNAPSHOT_BUDGET: _l("Terminal over its snapshot budget"),
    AlarmKind.DOOR_FORCED: _l("Door forced open"),
    AlarmKind.DOOR_HELD_OPEN: _l("Door held open"),
    AlarmKind.KEYPAD_LOCKOUT: _l("Keypad locked after wrong codes"),
    AlarmKind.TERMINAL_OFFLINE: _l("Terminal offline too long"),
    AlarmKind.TERMINAL_TAMPER: _l("Terminal tampered with"),
    AlarmKind.CLOCK_SKEW: _l("Terminal clock wrong"),
    AlarmKind.SYNC_DIVERGENCE: _l("Terminal out of step with the server"),
    AlarmKind.TERMINAL_ALARM: _l("Terminal alarm"),
}
SEVERITY_LABELS: dict[AlarmSeverity, Any] = {
    AlarmSeverity.CRITICAL: _l("Critical"),
    AlarmSeverity.WARNING: _l("Warning"),
    AlarmSeverity.NOTICE: _l("Notice"),
}
# Each severity's badge colour.
SEVERITY_TONES = {AlarmSeverity.CRITICAL: "bad", AlarmSeverity.WARNING: "warn", AlarmSeverity.NOTICE: "info"}
# Reasons the refusal chart names; the rest are added up as "other reasons" (the table lists every one).
REASONS_CHARTED = 8
# The entries chart spans the page: a wider viewBox keeps its text near its CSS size there.
ENTRIES_WIDTH = 640
# Name the day under every seventh column of the entries chart, counting back from today.
LABEL_EVERY = 7


def alarm_kind_label(kind: AlarmKind) -> str:
    """A server alarm's kind in the user's language."""
    return str(ALARM_KIND_LABELS.get(kind, kind.value))


def severity_label(severity: AlarmSeverity) -> str:
    """An alarm's severity in the user's language."""
    return str(SEVERITY_LABELS[severity])


def severity_tone(severity: AlarmSeverity) -> str:
    """The badge colour of an alarm's severity."""
    return SEVERITY_TONES[severity]


def day_cache() -> ReportCache:
    """This app's short-lived cache of the counts over all people (one per process; day counts are stored)."""
    cache: ReportCache = current_app.extensions.setdefault("gatehouse.dashboard_counts", ReportCache())
    return cache


def entries_chart(figures: Activity) -> tuple[charts.StackedColumns, list[Any]]:
    """Entries per day stacked by method (the largest five and 'other' when more methods were used)."""
    methods = activity.methods_seen(figure for _, figure in figures.days)
    totals = {method: figures.window.entries.get(method, 0) for method in methods}
    if len(methods) > charts.SERIES:
        kept = {m for m, _ in sorted(totals.items(), key=lambda kv: -kv[1])[: charts.SERIES - 1]}
        groups = [[m] for m in methods if m in kept] + [[m for m in methods if m not in kept]]
        names = [method_label(group[0]) for group in groups[:-1]] + [_("Other methods")]
    else:
        groups = [[m] for m in methods]
        names = [method_label(m) for m in methods]
    values = [[sum(day.entries.get(m, 0) for m in group) for group in groups] for _, day in figures.days]
    chart = charts.stacked_columns(
        [day.isoformat() for day, _ in figures.days],
        names,
        values,
        short_labels=[short_day(day) for day, _ in figures.days],
        label_every=LABEL_EVERY,
        width=ENTRIES_WIDTH,
        height=240,
    )
    return chart, methods


def refusals_chart(figures: Activity) -> charts.Bars:
    """Refusals over the window by reason, in words; beyond REASONS_CHARTED the rest as one bar."""
    ranked = activity.top(figures.window.refusals, len(figures.window.refusals))
    items = [(reason_label(reason), count) for reason, count in ranked[:REASONS_CHARTED]]
    rest = sum(count for _, count in ranked[REASONS_CHARTED:])
    if rest:
        items.append((_("Other reasons"), rest))
    return charts.bars(items)


def short_day(day: date) -> str:
    """A day under a chart's axis: month and day, '12-07'."""
    return f"{day:%m-%d}"


@bp.get("/")
@require_role(*ANY_ROLE)
def dashboard() -> ResponseReturnValue:
    """Today and the last 30 days at the doors, open alarms, and the terminals and doors needing attention."""
    figures = service.dashboard(db.session, cache=day_cache())
    entries, methods = entries_chart(figures.activity)
    return render_template(
        "dashboard.html",
        figures=figures,
        entries_chart=entries,
        column_shapes=charts.column_shapes,
        methods=methods,
        refusals_chart=refusals_chart(figures.activity),
        refusals=activity.top(figures.activity.window.refusals, len(figures.activity.window.refusals)),
        shown=service.SHOWN,
        manager=current_user.role in MANAGERS,
        alarm_kind_label=alarm_kind_label,
        severity_label=severity_label,
        severity_tone=severity_tone,
        recent_days=RECENT_DAYS,
    )
