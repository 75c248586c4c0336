"""What the console's forms share: one check of every text input, and their errors as the templates show them."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from flask import abort, request
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from wtforms import DateField

from server.models.text_guard import control_character, refusal
from server.services.wording.operators import describe


def refuse_control_characters() -> None:
    """400 for a request whose query or form holds a control character (NUL included), before any form reads it.

    Every console form reads request.args or request.form, so this one check covers each of them, and any added
    later; tab and line breaks stay allowed for the multi-line fields.
    """
    for values in (request.args, request.form):
        for name, value in values.items(multi=True):
            if (character := control_character(value, multiline=True)) is not None:
                abort(400, description=describe(refusal(name, character)))


def field_errors(form: FlaskForm) -> dict[str, str]:
    """The errors of each refused field, keyed by its name in the HTML (the templates build error ids on it)."""
    return {field.name: " ".join(str(error) for error in field.errors) for field in form if field.errors}


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class CalendarDateField(DateField):
    """A YYYY-MM-DD date whose refusal says which was wrong: the form, or a day the calendar lacks (1985-02-30)."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        """Read the date; a well-written day that does not exist is reported as such."""
        text = " ".join(str(value) for value in valuelist or []).strip()
        if not text:
            self.data = None
            return
        try:
            self.data = date.fromisoformat(text) if _ISO_DATE.fullmatch(text) else None
        except ValueError:
            self.data = None
            raise ValueError(
                _("%(value)s is not a date on the calendar; check the day and the month.", value=text)
            ) from None
        if self.data is None:
            raise ValueError(_("Write the date as YYYY-MM-DD, for example 1990-04-30."))
