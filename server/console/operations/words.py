"""The operations screen's words: door states, alarm kinds and severities, each with the badge that shows it."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

from server.models import AlarmKind, AlarmSeverity

# A door's live state: its words and its badge (kind, icon). "unknown": the terminal has not reported one.
DOOR_STATES: dict[str, tuple[Any, str, str]] = {
    "locked": (_l("Locked"), "ok", "lock"),
    "unlocked": (_l("Unlocked"), "info", "lock-open"),
    "open": (_l("Open"), "info", "door-open"),
    "held_open": (_l("Held open"), "warn", "alarm-clock"),
    "forced_open": (_l("Forced open"), "bad", "siren"),
    "unknown": (_l("State unknown"), "muted", "circle-help"),
}
# A terminal's link to the server, as the door board shows it.
LINKS: dict[str, tuple[Any, str, str]] = {
    "online": (_l("Online"), "ok", "wifi"),
    "offline": (_l("Offline"), "bad", "wifi-off"),
    "unknown": (_l("No terminal report"), "muted", "circle-help"),
    "none": (_l("No terminal"), "muted", "minus-circle"),
}
SEVERITIES: dict[str, tuple[Any, str, str]] = {
    AlarmSeverity.CRITICAL.value: (_l("Critical"), "bad", "siren"),
    AlarmSeverity.WARNING.value: (_l("Warning"), "warn", "alert-triangle"),
    AlarmSeverity.NOTICE.value: (_l("Notice"), "info", "info"),
}
ALARM_KINDS: dict[str, Any] = {
    AlarmKind.ERASURE_OVERDUE.value: _l("Erasure overdue"),
    AlarmKind.FACE_COUNT.value: _l("Face count near the filing threshold"),
    AlarmKind.SNAPSHOT_BUDGET.value: _l("Terminal over its snapshot budget"),
    AlarmKind.DOOR_FORCED.value: _l("Door forced open"),
    AlarmKind.DOOR_HELD_OPEN.value: _l("Door held open too long"),
    AlarmKind.KEYPAD_LOCKOUT.value: _l("Keypad locked after wrong codes"),
    AlarmKind.TERMINAL_OFFLINE.value: _l("Terminal offline"),
    AlarmKind.TERMINAL_TAMPER.value: _l("Terminal tampering"),
    AlarmKind.CLOCK_SKEW.value: _l("Terminal clock wrong"),
    AlarmKind.SYNC_DIVERGENCE.value: _l("Terminal out of step with the server"),
    AlarmKind.TERMINAL_ALARM.value: _l("Terminal alarm"),
}


def door_state(state: str | None) -> tuple[str, str, str]:
    """A door state's words, badge kind and icon ('unknown' for none or a state this version does not know)."""
    text, kind, icon = DOOR_STATES.get(state or "unknown", DOOR_STATES["unknown"])
    return str(text), kind, icon


def link(status: str | None) -> tuple[str, str, str]:
    """A terminal link's words, badge kind and icon."""
    text, kind, icon = LINKS.get(status or "none", LINKS["unknown"])
    return str(text), kind, icon


def severity(value: str) -> tuple[str, str, str]:
    """An alarm severity's words, badge kind and icon."""
    text, kind, icon = SEVERITIES.get(value, SEVERITIES[AlarmSeverity.NOTICE.value])
    return str(text), kind, icon


def alarm_kind(value: str) -> str:
    """An alarm kind in the user's language (the code itself when this version does not know it)."""
    label = ALARM_KINDS.get(value)
    return str(label) if label is not None else value
