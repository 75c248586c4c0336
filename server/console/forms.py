"""What the console's forms share: their errors, as the templates show them next to each field."""

from __future__ import annotations

from flask_wtf import FlaskForm


def field_errors(form: FlaskForm) -> dict[str, str]:
    """The errors of each refused field, keyed by its name in the HTML (the templates build error ids on it)."""
    return {field.name: " ".join(str(error) for error in field.errors) for field in form if field.errors}
