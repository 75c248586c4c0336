"""What the console's forms share: one check of every text input, and their errors as the templates show them."""

from __future__ import annotations

from flask import abort, request
from flask_wtf import FlaskForm

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
