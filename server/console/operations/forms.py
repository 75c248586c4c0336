"""The operations screen's forms: what to watch (a GET form), and acknowledging or resolving an alarm."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, TextAreaField
from wtforms.validators import DataRequired, Length

COMMENT_MAX = 500


class WatchForm(FlaskForm):
    """Which site and door group the screen shows, read from the query string (no CSRF: it changes nothing)."""

    class Meta:
        csrf = False

    site = SelectField(_l("Site"))
    group = SelectField(_l("Door group"))


class AlarmActionForm(FlaskForm):
    """A comment on an alarm: required to acknowledge it (what the guard saw or did), and to resolve it."""

    comment = TextAreaField(
        _l("Comment"),
        validators=[
            DataRequired(message=_l("Write what you saw or did; an alarm is acknowledged with a comment.")),
            Length(max=COMMENT_MAX, message=_l("Keep the comment to at most %(max)d characters.")),
        ],
    )
