"""The console's main navigation, grouped by job: one list, filtered by role and by which pages are installed.

Each section is a job a user comes to do (run the gate today, manage people, admit visitors, set up doors,
answer for privacy, administer the console). Later issues add their pages here, in the section of their job."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app, request
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from server.models import ConsoleRole

_ALL = (ConsoleRole.ADMIN, ConsoleRole.MANAGER, ConsoleRole.GUARD)
_MANAGERS = (ConsoleRole.ADMIN, ConsoleRole.MANAGER)


@dataclass(frozen=True)
class NavItem:
    """A main-menu entry: the view it opens, its icon, and who may see it."""

    endpoint: str
    label: Any  # a lazy string, translated when rendered
    roles: tuple[ConsoleRole, ...]
    icon: str = "circle-dot"


@dataclass(frozen=True)
class NavSection:
    """A heading in the side navigation and the entries under it."""

    key: str
    label: Any
    items: tuple[NavItem, ...]


SECTIONS: tuple[NavSection, ...] = (
    NavSection(
        "operations",
        _l("Operations"),
        (
            NavItem("operations.page", _l("Live operations"), _ALL, "radio"),
            NavItem("views.dashboard", _l("Dashboard"), _ALL, "layout-dashboard"),
            NavItem("monitor.events", _l("Events"), _ALL, "activity"),
            NavItem("terminals.index", _l("Terminals"), _ALL, "router"),
        ),
    ),
    NavSection("people", _l("People"), (NavItem("people.index", _l("People"), _MANAGERS, "users"),)),
    NavSection("visitors", _l("Visitors"), (NavItem("passes.index", _l("Visitor passes"), _ALL, "ticket"),)),
    NavSection(
        "access", _l("Doors & access"), (NavItem("access.doors", _l("Doors & groups"), _MANAGERS, "door-open"),)
    ),
    NavSection("privacy", _l("Privacy"), (NavItem("privacy.index", _l("Privacy"), _MANAGERS, "shield-check"),)),
    NavSection(
        "administration",
        _l("Administration"),
        (
            NavItem("monitor.audit", _l("Audit log"), (ConsoleRole.ADMIN,), "scroll-text"),
            NavItem("integrations.index", _l("Integrations"), _MANAGERS, "key-round"),
        ),
    ),
)
NAV: tuple[NavItem, ...] = tuple(item for section in SECTIONS for item in section.items)


def home_endpoint() -> str:
    """Where the current user lands after logging in: a guard on the operations screen, others on the dashboard."""
    guard = current_user.is_authenticated and current_user.role == ConsoleRole.GUARD
    if guard and "operations.page" in current_app.view_functions:
        return "operations.page"
    return "views.dashboard"


def _visible(item: NavItem) -> bool:
    return item.endpoint in current_app.view_functions and current_user.role in item.roles


def nav_items() -> list[NavItem]:
    """Entries the current user may open, skipping pages this app does not have."""
    if not current_user.is_authenticated:
        return []
    return [item for item in NAV if _visible(item)]


def nav_sections() -> list[tuple[NavSection, list[NavItem]]]:
    """The sections the current user sees, each with its visible entries (empty sections left out)."""
    if not current_user.is_authenticated:
        return []
    shown = [(section, [item for item in section.items if _visible(item)]) for section in SECTIONS]
    return [(section, items) for section, items in shown if items]


# Pages that belong to another entry's area: a person's page is part of People.
_AREA_OF = {"person": "people.index", "person_app": "people.index", "subject_access": "people.index"}


def current_endpoint(sections: list[tuple[NavSection, list[NavItem]]]) -> str | None:
    """The entry to mark as the current page: an exact match, else the entry of the same blueprint or area."""
    items = [item for _section, section_items in sections for item in section_items]
    endpoint = request.endpoint or ""
    if any(item.endpoint == endpoint for item in items):
        return endpoint
    blueprint = request.blueprint
    if blueprint:
        for item in items:
            if item.endpoint.startswith(blueprint + "."):
                return item.endpoint
        area = _AREA_OF.get(blueprint)
        if area and any(item.endpoint == area for item in items):
            return area
    return None
