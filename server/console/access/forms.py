"""Console forms of doors, access groups (with their weekly schedule) and holidays.

They parse what was posted and check its shape (a chosen site, a date, times that read as times and end after they
start); the access services decide the rest: names, duplicates, the face rule, overlapping windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, Field, IntegerField, RadioField, StringField
from wtforms.validators import InputRequired

from gatehouse_core.schedule import MINUTES_PER_DAY, Window, parse_hhmm
from gatehouse_core.wire.records import OfflinePolicy
from server.console.access.common import WEEKDAYS
from server.models import AccessGroup
from server.services.access.access import WindowsRejected
from server.services.access.sites import DoorMethods, OfflineBound

SLOTS_PER_DAY = 3  # empty "from/to" pairs offered per weekday (one more appears when these are all used)
MAX_SLOTS_PER_DAY = 12

CHOOSE_SITE = _l("Choose the site this door belongs to.")
CHOOSE_DATE = _l("Choose a date.")


# ---- doors --------------------------------------------------------------------------------------------------------


class DoorForm(FlaskForm):
    """A door's name and the entry methods it accepts (one checkbox per DoorMethods field)."""

    name = StringField(default="")
    face = BooleanField()
    card = BooleanField()
    id_document = BooleanField()
    app_code = BooleanField()

    def methods(self) -> DoorMethods:
        """The ticked entry methods, as the service takes them."""
        return DoorMethods(
            face=self.face.data, card=self.card.data, id_document=self.id_document.data, app_code=self.app_code.data
        )


class NewDoorForm(DoorForm):
    """A new door: its site as well (a door never moves to another site)."""

    site_id = IntegerField(validators=[InputRequired(CHOOSE_SITE)], invalid_value_message=CHOOSE_SITE)


# ---- access groups ------------------------------------------------------------------------------------------------


@dataclass
class Slot:
    """One from/to pair of the schedule editor, as typed."""

    start: str = ""
    end: str = ""


def slot_field(day: int, index: int, end: str) -> str:
    """The name of a schedule editor field: w<weekday>_<slot>_from or w<weekday>_<slot>_to."""
    return f"w{day}_{index}_{end}"


def hhmm(minute: int) -> str:
    """Minutes from midnight as the editor shows them, 24-hour; the end of the day is 24:00."""
    return f"{minute // 60:02d}:{minute % 60:02d}"


def padded(days: list[list[Slot]]) -> list[list[Slot]]:
    """At least SLOTS_PER_DAY pairs a day, and always one empty pair to add a window without scripts."""
    for slots in days:
        while slots and not slots[-1].start and not slots[-1].end and len(slots) > SLOTS_PER_DAY:
            slots.pop()
        filled = sum(1 for s in slots if s.start or s.end)
        while len(slots) < min(MAX_SLOTS_PER_DAY, max(SLOTS_PER_DAY, filled + 1)):
            slots.append(Slot())
    return days


def days_of(group: AccessGroup) -> list[list[Slot]]:
    """A group's weekly windows as the editor shows them."""
    days: list[list[Slot]] = [[] for _day in range(7)]
    for w in group.windows:
        days[w.weekday].append(Slot(hhmm(w.start_minute), hhmm(w.end_minute)))
    return padded(days)


def all_day() -> list[list[Slot]]:
    """Open all day, every day: what a new group starts with (an empty schedule would let nobody in)."""
    return padded([[Slot("00:00", "24:00")] for _day in range(7)])


def _minute(text: str) -> int | None:
    # Browsers send HH:MM, or HH:MM:SS when seconds are shown.
    if len(text) == 8 and text.endswith(":00"):
        text = text[:5]
    try:
        return parse_hhmm(text)
    except ValueError:
        return None


def _stripped(value: str | None) -> str:
    return value.strip() if value else ""


class DoorIdsField(Field):
    """The ids of the ticked door checkboxes (all named "door"); anything that is not a number is ignored."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        self.data = {int(v) for v in valuelist if v.isdigit()}


class GroupForm(FlaskForm):
    """An access group: its name, doors, holiday rule and weekly schedule.

    The schedule has, per weekday, MAX_SLOTS_PER_DAY from/to time fields named by slot_field (added below the class).
    Validation reads them into `windows`, each slot either empty, or a start and an end that read as times with the
    end after the start ("to 24:00", or "to 00:00", is midnight at the end of the day).
    """

    name = StringField(default="")
    door = DoorIdsField(default=set)
    open_on_holidays = BooleanField()
    usual = BooleanField()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.windows: list[Window] = []
        # Position in `windows` -> (weekday, slot), to put the service's complaints next to the right fields.
        self.origin: list[tuple[int, int]] = []

    def validate(self, extra_validators: Any = None) -> bool:
        """Check every field, then read the schedule's slots into windows."""
        valid = super().validate(extra_validators)
        self.windows, self.origin = [], []
        for day in range(7):
            for index in range(MAX_SLOTS_PER_DAY):
                valid = self._read_slot(day, index) and valid
        return valid

    def _read_slot(self, day: int, index: int) -> bool:
        start_field, end_field = self[slot_field(day, index, "from")], self[slot_field(day, index, "to")]
        start_text, end_text = start_field.data, end_field.data
        if not start_text and not end_text:
            return True
        if not start_text or not end_text:
            (end_field if start_text else start_field).errors.append(
                _("Give both a start and an end time, or clear both.")
            )
            return False
        start, end = _minute(start_text), _minute(end_text)
        if start is None:
            start_field.errors.append(_("Enter a time like 07:30, on the 24-hour clock."))
        if end is None:
            end_field.errors.append(
                _("Enter a time like 17:30, on the 24-hour clock (24:00 is midnight at the end of the day).")
            )
        if start is None or end is None:
            return False
        if end == 0:
            end = MINUTES_PER_DAY  # "to 00:00" is midnight at the end of the day
        if not start < end:
            end_field.errors.append(_("End the window after it starts (24:00 is midnight at the end of the day)."))
            return False
        self.windows.append(Window(day, start, end))
        self.origin.append((day, index))
        return True

    def rejected(self, exc: WindowsRejected) -> None:
        """Mark the windows the service refused."""
        for position in exc.problems:
            day, index = self.origin[position]
            self[slot_field(day, index, "from")].errors.append(
                _("This window overlaps another one on %(day)s; join them or move one.", day=WEEKDAYS[day])
            )

    def days(self) -> list[list[Slot]]:
        """The schedule as typed, for showing the form again."""
        return padded(
            [
                [
                    Slot(self[slot_field(day, index, "from")].data, self[slot_field(day, index, "to")].data)
                    for index in range(MAX_SLOTS_PER_DAY)
                ]
                for day in range(7)
            ]
        )


def _add_slot_fields() -> None:
    # 7 x MAX_SLOTS_PER_DAY pairs are too many to spell out; WTForms takes fields added to the class like this.
    for day in range(7):
        for index in range(MAX_SLOTS_PER_DAY):
            for end in ("from", "to"):
                setattr(GroupForm, slot_field(day, index, end), StringField(default="", filters=[_stripped]))


_add_slot_fields()


class NewGroupForm(GroupForm):
    """A new access group: its site as well (a group never moves to another site)."""

    site = IntegerField()


# ---- holidays -----------------------------------------------------------------------------------------------------


class HolidayForm(FlaskForm):
    """A holiday to declare at one site (the page has one such form per site)."""

    site_id = IntegerField()
    day = DateField(validators=[InputRequired(CHOOSE_DATE)], invalid_value_message=CHOOSE_DATE)
    name = StringField(default="")


# ---- a site's offline bound ---------------------------------------------------------------------------------------

WHOLE_MINUTES = _l("Enter a whole number of minutes.")
WHOLE_HOURS = _l("Enter a whole number of hours.")


class OfflineBoundForm(FlaskForm):
    """A site's offline alarm, offline bound and policy (the page has one such form per site)."""

    offline_alarm_minutes = IntegerField(validators=[InputRequired(WHOLE_MINUTES)], invalid_value_message=WHOLE_MINUTES)
    max_offline_hours = IntegerField(validators=[InputRequired(WHOLE_HOURS)], invalid_value_message=WHOLE_HOURS)
    offline_policy = RadioField(
        choices=[p.value for p in OfflinePolicy], invalid_choice_message=_l("Choose one of the two policies.")
    )

    def bound(self) -> OfflineBound:
        """The settings as the site service takes them."""
        return OfflineBound(
            self.offline_alarm_minutes.data, self.max_offline_hours.data, OfflinePolicy(self.offline_policy.data)
        )
