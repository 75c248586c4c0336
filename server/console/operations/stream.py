"""The operations screen's Server-Sent Events: feed items after a remembered id, in order, as they are stored.

Each item goes out with `id: <feed id>`, so a browser that reconnects (after a network cut or a server restart)
sends the last one back as Last-Event-ID and catches up every item it missed, in order. The feed table is polled
in a short database session each time: no connection is held while the stream sleeps. A stream ends after a
bounded lifetime (the browser reconnects at once), so it never holds a server thread for long, and it stops early
when the browser has gone or its login has ended.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from server.console.operations.scope import Scope
from server.models import FeedItem
from server.services.operations import feed
from server.services.session import DbSession


@dataclass(frozen=True)
class Settings:
    """How a stream paces itself."""

    lifetime: float = 300.0  # seconds before the stream ends and the browser reconnects
    poll: float = 0.25  # seconds between reads of the feed table
    heartbeat: float = 15.0  # seconds between comments that keep proxies from closing the connection
    # Seconds of silence before an empty comment: waitress learns that a browser has left only when a write to it
    # fails, and each open stream holds one of its threads, so a stream writes often enough to find out quickly.
    probe: float = 1.0
    retry_ms: int = 2000  # the browser's wait before reconnecting
    batch: int = 200  # feed items read at once; a longer backlog is read again without sleeping


@dataclass(frozen=True)
class Message:
    """One event to send: its feed id, its kind (the SSE event name) and its data."""

    id: int
    kind: str
    data: dict[str, Any]


# Renders the items read (in order) as messages; items it leaves out are only counted as seen.
Render = Callable[[DbSession, Sequence[FeedItem]], list[Message]]


def parse_after(last_event_id: str | None, after: str | None) -> int | None:
    """Where to resume: the Last-Event-ID a reconnecting browser sends, else the page's `after`; None if neither
    is a whole number (the stream then starts at the newest item)."""
    for value in (last_event_id, after):
        if value is not None and value.strip().isdigit():
            return int(value.strip())
    return None


def frame(message: Message) -> str:
    """One SSE event (JSON on one data line: json.dumps never writes a raw newline)."""
    data = json.dumps(message.data, separators=(",", ":"), ensure_ascii=False)
    return f"id: {message.id}\nevent: {message.kind}\ndata: {data}\n\n"


def events(
    open_session: Callable[[], AbstractContextManager[DbSession]],
    scope: Scope,
    after: int | None,
    render: Render,
    settings: Settings,
    *,
    still_allowed: Callable[[DbSession], bool] = lambda _session: True,
    gone: Callable[[], bool] = lambda: False,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[str]:
    """The stream's text: the retry hint, then each item after `after` as it is stored, heartbeats (and probes
    between them), until the lifetime ends, the client is gone or `still_allowed` (checked at each heartbeat)
    says no."""
    started = last_sent = last_beat = clock()
    if after is None:
        with open_session() as session:
            after = feed.latest_id(session)
    # The retry hint, and the position the stream starts from, so a browser that sees nothing yet still resumes there.
    yield f"retry: {settings.retry_ms}\nid: {after}\n\n"
    while clock() - started < settings.lifetime and not gone():
        with open_session() as session:
            items = feed.items_after(session, after, site_ids=scope.site_ids, limit=settings.batch)
            messages = render(session, items) if items else []
            allowed = True
            beat = not items and clock() - last_beat >= settings.heartbeat
            if beat:
                allowed = still_allowed(session)
        if not allowed:
            return
        if items:
            text = "".join(frame(message) for message in messages)
            newest = items[-1].id
            if not messages or messages[-1].id != newest:
                # Items left out by the door filter still count as seen: an id alone moves the browser's
                # Last-Event-ID without an event.
                text += f"id: {newest}\n\n"
            after = newest
            last_sent = clock()
            yield text
            if len(items) == settings.batch:
                continue  # more waiting: read on without sleeping
        elif beat:
            last_sent = last_beat = clock()
            yield ": heartbeat\n\n"
        elif clock() - last_sent >= settings.probe:
            last_sent = clock()
            yield ":\n\n"
        sleep(settings.poll)
