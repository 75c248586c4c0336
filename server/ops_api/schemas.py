"""The integration API's requests and answers: they validate each request and make the OpenAPI document."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from gatehouse_core.wire.messages import DoorState
from server.models import AlarmKind, AlarmSeverity, OverrideMode, TerminalStatus
from server.services.operations import feed

MAX_ID = 2**63 - 1
Topic = Literal[feed.TOPICS]  # type: ignore[valid-type]


class Query(BaseModel):
    """Base of query strings: an unknown parameter is an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class EventsQuery(Query):
    """Paging through the feed with a cursor."""

    after: int = Field(0, ge=0, le=MAX_ID, description="Return items with an id above this (the last id you saw).")
    limit: int = Field(100, ge=1, le=500, description="Items per page.")
    site_id: int | None = Field(None, ge=1, le=2**31 - 1, description="Only this site's items (and server-wide ones).")
    topic: list[Topic] | None = Field(None, description="Only these event types (repeat the parameter for more).")


class AlarmsQuery(Query):
    """Which alarms."""

    state: Literal["open", "all"] = Field("open", description="`open`: unresolved alarms; `all`: resolved ones too.")
    site_id: int | None = Field(None, ge=1, le=2**31 - 1, description="Only this site's alarms (and server-wide ones).")
    limit: int = Field(100, ge=1, le=500, description="At most this many, newest first.")


class DoorsQuery(Query):
    """Which doors."""

    site_id: int | None = Field(None, ge=1, le=2**31 - 1, description="Only this site's doors.")


class OpenDoorBody(BaseModel):
    """Why the door is opened (kept in the audit log)."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(None, max_length=200, description="Why; defaults to the API key's name.")


class Answer(BaseModel):
    """Base of answers."""

    model_config = ConfigDict(from_attributes=True)


class ApiError(Answer):
    """Every error this API returns."""

    error: str = Field(description="A stable code to branch on, e.g. 'unauthorized', 'forbidden', 'not_found'.")
    message: str = Field(description="A sentence saying what went wrong and what to do.")


class EventOut(Answer):
    """One item of the operations feed."""

    id: int = Field(description="The feed id: pass the last one you saw as `after`.")
    type: Topic = Field(description="The event type, e.g. access.granted, alarm.raised, door.state.")
    at: AwareDatetime = Field(description="When it was recorded.")
    site_id: int | None
    data: dict[str, Any] = Field(
        description="What happened: ids, times, method, decision, reason and the person's pseudonym; never a name, "
        "a biometric, or a card or ID number."
    )


class EventPage(Answer):
    """A page of the feed, oldest first."""

    items: list[EventOut]
    next_after: int = Field(description="Pass as `after` for the next page (the last item's id, or yours).")
    has_more: bool = Field(description="Whether more items wait after this page.")


class AlarmOut(Answer):
    """An alarm and where it stands."""

    id: int
    kind: AlarmKind
    severity: AlarmSeverity
    state: Literal["open", "acknowledged", "resolved"]
    site_id: int | None
    door_id: int | None
    terminal_id: int | None
    message: str
    raised_at: AwareDatetime
    acknowledged_at: AwareDatetime | None
    resolved_at: AwareDatetime | None


class AlarmList(Answer):
    """Alarms, newest first."""

    items: list[AlarmOut]


class TerminalLink(Answer):
    """A terminal serving a door, and its link to the server."""

    id: int
    name: str
    status: TerminalStatus
    last_seen_at: AwareDatetime | None


class DoorOut(Answer):
    """A door and its live state."""

    id: int
    name: str
    site_id: int
    state: DoorState | None = Field(description="The state its terminal last reported; null if none has.")
    supervised: bool = Field(description="Whether a door contact reports open and closed.")
    since: AwareDatetime | None = Field(description="When the door entered the state.")
    mode: OverrideMode | None = Field(
        None, description="A live lockdown or emergency release of the door; null when it runs normally."
    )
    terminals: list[TerminalLink]


class DoorList(Answer):
    """Every door within the key's reach."""

    items: list[DoorOut]


class DoorOpened(Answer):
    """A door-open command queued for a terminal."""

    command: str = Field(description="The command's reference (its outcome is in the console's terminal page).")
    door_id: int
    terminal_id: int
