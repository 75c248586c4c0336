"""The console's main navigation: one list, filtered by role and by which pages are installed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from server.models import ConsoleRole

_ALL = (ConsoleRole.ADMIN, ConsoleRole.MANAGER, ConsoleRole.GUARD)
_MANAGERS = (ConsoleRole.ADMIN, ConsoleRole.MANAGER)


@dataclass(frozen=True)
class NavItem:
    """A main-menu entry: the view it opens and who may see it."""

    endpoint: str
    label: Any  # a lazy string, translated when rendered
    roles: tuple[ConsoleRole, ...]


NAV: tuple[NavItem, ...] = (
    NavItem("views.dashboard", _l("Dashboard"), _ALL),
    NavItem("people.index", _l("People"), _MANAGERS),
    NavItem("passes.index", _l("Visitor passes"), _ALL),
    NavItem("access.doors", _l("Doors & groups"), _MANAGERS),
    NavItem("terminals.index", _l("Terminals"), _ALL),
    NavItem("monitor.events", _l("Events"), _ALL),
    NavItem("monitor.audit", _l("Audit log"), (ConsoleRole.ADMIN,)),
    NavItem("privacy.index", _l("Privacy"), _MANAGERS),
)


def nav_items() -> list[NavItem]:
    """Entries the current user may open, skipping pages this app does not have."""
    if not current_user.is_authenticated:
        return []
    views = current_app.view_functions
    return [item for item in NAV if item.endpoint in views and current_user.role in item.roles]
