"""Text Gatehouse accepts and stores: one rule for every surface, and a guard on every write.

What people type never holds control characters: the phone-app API's request models and the console check every
text input with `control_character` and answer 400. Whatever else writes (the CLI, the worker, an import, a
surface added later), the ORM refuses NUL and unpaired surrogates in any text or JSON column on flush with
TextRefused (400): PostgreSQL cannot store NUL at all and SQLite would keep it silently, and neither can encode a
lone surrogate.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import JSON, String, event, inspect
from sqlalchemy.orm import Session

from server.services.errors import DomainError

# C0 and C1 controls, DEL and unpaired surrogates; typed multi-line text keeps tab and line breaks.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
# What no database column may hold, whoever writes it.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


class TextRefused(DomainError):
    """Text holding a character that is never typed or cannot be stored (NUL, a control character)."""

    code = "bad_text"
    http_status = 400


def control_character(text: str, *, multiline: bool = False) -> str | None:
    """The first control character (or unpaired surrogate) in `text` as 'U+0000', or None if there is none."""
    found = (_CONTROL_MULTILINE if multiline else _CONTROL).search(text)
    return None if found is None else f"U+{ord(found.group()):04X}"


def refusal(field: str, character: str) -> TextRefused:
    """The refusal of a field holding `character` (as control_character names it)."""
    return TextRefused(f"The {field} field holds a control character ({character}); remove it and try again.")


def _unstorable(value: Any) -> str | None:
    if isinstance(value, str):
        found = _UNSTORABLE.search(value)
        return None if found is None else f"U+{ord(found.group()):04X}"
    if isinstance(value, dict):
        value = [*value.keys(), *value.values()]
    if isinstance(value, list | tuple):
        for item in value:
            if (character := _unstorable(item)) is not None:
                return character
    return None


@event.listens_for(Session, "before_flush")
def _refuse_unstorable_text(session: Session, flush_context: Any, instances: Any) -> None:
    for obj in (*session.new, *session.dirty):
        state = inspect(obj)
        for column_attr in state.mapper.column_attrs:
            if not any(isinstance(c.type, String | JSON) for c in column_attr.columns):
                continue
            history = state.attrs[column_attr.key].history
            values = history.added if obj not in session.new else [getattr(obj, column_attr.key)]
            for value in values:
                if (character := _unstorable(value)) is not None:
                    table = column_attr.columns[0].table.name
                    raise refusal(f"{table}.{column_attr.key}", character)
