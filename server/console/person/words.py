"""Console person page: its answers in words: schedules, reasons nobody gets in, methods, photo quality gates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from gatehouse_core.face.quality import QualityLimits
from server.services.access.reach import Blocker, Method, ScheduleLine
from server.services.face.consent import FaceState

DASH = "\u2013"  # an en dash between the ends of a range, as in Mon\u2013Fri
DAY_NAMES = (_l("Mon"), _l("Tue"), _l("Wed"), _l("Thu"), _l("Fri"), _l("Sat"), _l("Sun"))
METHOD_LABELS = {
    Method.CARD: _l("Key card"),
    Method.ID_DOCUMENT: _l("ID document"),
    Method.APP_CODE: _l("App code"),
    Method.FACE: _l("Face"),
}
BLOCKER_TEXT = {
    Blocker.MOVED_OUT: _l("They have moved out: no door admits them any more."),
    Blocker.SUSPENDED: _l("They are suspended: no door admits them until they are active again."),
    Blocker.NO_GROUPS: _l("They are in no access group. Add them to one below (usually the site's usual group)."),
    Blocker.NO_DOORS: _l("Their access groups contain no door. Add doors to the group on the Doors & groups page."),
    Blocker.NO_CREDENTIAL: _l("They have no active credential. Add a key card, an ID document or an app code below."),
    Blocker.NO_ACCEPTED_METHOD: _l(
        "Their doors accept none of their credentials. Add a credential of a kind those doors accept."
    ),
    Blocker.NO_TERMINAL: _l("No terminal serves their doors yet, so nothing can open them."),
    Blocker.HOLIDAY: _l("Today is a site holiday and their access groups are closed on holidays."),
    Blocker.OUTSIDE_SCHEDULE: _l("It is outside all their access groups' hours right now; see the hours below."),
}

# A person's face state in words; "withdrawn" is the console's name for a DECLINED that came from a withdrawal.
FACE_STATE_LABELS = {
    FaceState.OFF.value: _l("switched off at this site"),
    FaceState.NOT_ASKED.value: _l("not asked yet"),
    FaceState.DECLINED.value: _l("declined"),
    "withdrawn": _l("consent withdrawn"),
    FaceState.MINOR_NOT_OFFERED.value: _l("not offered (under the site's minimum age)"),
    FaceState.STALE.value: _l("consent must be renewed"),
    FaceState.CONSENTED.value: _l("consent given, no photo yet"),
    FaceState.ENROLLED.value: _l("enrolled"),
}
# The badge kind of each state: enrolled is good news, the rest is neutral (face is optional, never a fault).
FACE_STATE_BADGES = {
    FaceState.OFF.value: "muted",
    FaceState.NOT_ASKED.value: "muted",
    FaceState.DECLINED.value: "muted",
    "withdrawn": "muted",
    FaceState.MINOR_NOT_OFFERED.value: "muted",
    FaceState.STALE.value: "warn",
    FaceState.CONSENTED.value: "pending",
    FaceState.ENROLLED.value: "ok",
}


def hhmm(minute: int) -> str:
    """Minutes from midnight as 24-hour HH:MM; the end of the day is 24:00."""
    return f"{minute // 60:02d}:{minute % 60:02d}"


def schedule_text(line: ScheduleLine) -> str:
    """One schedule line, e.g. Mon-Fri 07:00-22:00 (with en dashes); every day 00:00-24:00."""
    if (line.first_day, line.last_day) == (0, 6):
        days = _("Every day")
    elif line.first_day == line.last_day:
        days = str(DAY_NAMES[line.first_day])
    else:
        days = f"{DAY_NAMES[line.first_day]}{DASH}{DAY_NAMES[line.last_day]}"
    times = ", ".join(f"{hhmm(start)}{DASH}{hhmm(end)}" for start, end in line.intervals)
    return f"{days} {times}"


def schedule_texts(lines: Sequence[ScheduleLine]) -> list[str]:
    """A group's whole week, line by line; a group with no hours says so."""
    return [schedule_text(line) for line in lines] or [_("No hours: this group opens nothing")]


def method_list(methods: Sequence[Method]) -> str:
    """Methods joined for a table cell."""
    return ", ".join(str(METHOD_LABELS[m]) for m in methods)


# ---- photo quality --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gate:
    """One enrollment gate against a measured photo: the figure, the threshold and whether it passed."""

    label: str
    value: str
    needs: str
    passed: bool

    def text(self) -> str:
        """E.g. Sharpness 182 — pass (needs ≥ 100)."""
        verdict = _("pass") if self.passed else _("fail")
        return _(
            "%(label)s %(value)s — %(verdict)s (needs %(needs)s)",
            label=self.label,
            value=self.value,
            verdict=verdict,
            needs=self.needs,
        )


def _number(value: float) -> str:
    return f"{value:g}" if abs(value) >= 10 or value == int(value) else f"{value:.2f}".rstrip("0")


def gate_thresholds(limits: QualityLimits, enroll_score: float | None) -> dict[str, float | None]:
    """The configured thresholds of each gate (the detector's own score where the config sets none)."""
    return {
        "face_px": limits.min_face_px,
        "score": limits.min_score if limits.min_score is not None else enroll_score,
        "contrast": limits.min_contrast,
        "yaw_deg": limits.max_yaw_deg,
        "pitch_deg": limits.max_pitch_deg,
        "roll_deg": limits.max_roll_deg,
        "sharpness": limits.min_sharpness,
    }


# The gates in the order gatehouse_core.face.quality.check_enrollment applies them: at least, or at most (by size).
_GATES: tuple[tuple[str, Any, bool], ...] = (
    ("face_px", _l("Face size (pixels)"), True),
    ("score", _l("Detector score"), True),
    ("contrast", _l("Contrast"), True),
    ("yaw_deg", _l("Head turned (degrees)"), False),
    ("pitch_deg", _l("Head tilted (degrees)"), False),
    ("roll_deg", _l("Head rolled (degrees)"), False),
    ("sharpness", _l("Sharpness"), True),
)


def gates(figures: Mapping[str, float], thresholds: Mapping[str, float | None]) -> list[Gate]:
    """Each gate's figure as pass or fail against its threshold, as enrollment judged it."""
    found = []
    for key, label, at_least in _GATES:
        if key not in figures:
            continue
        value, limit = float(figures[key]), thresholds.get(key)
        if limit is None:
            continue
        passed = value >= limit if at_least else abs(value) <= limit
        needs = f"≥ {_number(limit)}" if at_least else f"≤ {_number(limit)}"
        found.append(Gate(str(label), _number(value), needs, passed))
    return found
