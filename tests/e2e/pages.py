"""The console's main pages, by a short name, for the screenshot and Lighthouse sweeps (routes in server/console)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MainPage:
    """A main page: its short name (file names, test ids) and its path, with {person} and {terminal} to fill."""

    name: str
    path: str
    public: bool = False  # shown logged out

    def url(self, person_id: int, terminal_id: int) -> str:
        """The page's path for this console's resident and terminal."""
        return self.path.format(person=person_id, terminal=terminal_id)


MAIN_PAGES = [
    MainPage("login", "/login", public=True),
    MainPage("dashboard", "/"),
    MainPage("operations", "/operations"),
    MainPage("people", "/people"),
    MainPage("person", "/people/{person}"),
    MainPage("person-new", "/people/new"),
    MainPage("passes", "/passes"),
    MainPage("doors", "/doors"),
    MainPage("groups", "/groups"),
    MainPage("holidays", "/holidays"),
    MainPage("door-modes", "/door-modes"),
    MainPage("offline-bound", "/offline-bound"),
    MainPage("terminals", "/terminals"),
    MainPage("terminal", "/terminals/{terminal}"),
    MainPage("events", "/events"),
    MainPage("audit", "/audit"),
    MainPage("privacy", "/privacy"),
    MainPage("subject-access", "/people/{person}/subject-access"),
    MainPage("integrations", "/integrations"),
]
