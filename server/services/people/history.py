"""A person's recent decisions at doors, newest first, for their page in the console."""

from __future__ import annotations

from server.models import Person
from server.services.reports import event_log
from server.services.reports.event_log import EventRow
from server.services.session import DbSession

RECENT = 20


def recent_events(session: DbSession, person: Person, limit: int = RECENT) -> list[EventRow]:
    """The person's latest `limit` access events (looked up by their pseudonym, as terminals report them)."""
    return event_log.recent_for_pseudonym(session, person.pseudonym, limit)
