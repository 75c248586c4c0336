"""Snapshots streamed a few parts per turn of the worker's loop: one in flight per terminal, within a budget.

A snapshot of 50,000 people is about 300 parts and seconds of work. Built in one go on the worker's one
loop thread it held back every other terminal's revocations, and a stolen terminal could ask for one with
every birth. So a snapshot is a `Stream`: each loop turn sends at most PARTS_PER_TURN parts of one stream
(round robin over terminals), and pending journal ranges are published between turns. While a terminal's
stream is under way, everything else for its sync topic (deltas, InSyncs) waits behind the stream and
follows its last part, so the terminal still sees its messages in order. Births while a stream is in flight
(or waiting for its turn) are answered by it. A terminal may cause at most SNAPSHOT_BUDGET snapshots per
SNAPSHOT_WINDOW; one more is put off until the window allows it, and raises an alarm.

Streams live in the worker's memory. If the worker stops mid-stream, terminals announce themselves again
when it is back (they answer its retained "online"), and each gets what it lacks then.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from gatehouse_core.wire.base import WireModel
from gatehouse_core.wire.messages import InSync, SnapshotPart
from gatehouse_core.wire.records import Record, fingerprint, roster_hash
from gatehouse_core.wire.topics import Channel, terminal_topic
from server.link import roster
from server.link.changes import estimated_size, template_ids
from server.link.roster import SiteData, TerminalScope, TerminalSealer
from server.models import Site, Terminal
from server.services.privacy import alarms, erasure
from server.services.session import DbSession

log = logging.getLogger(__name__)

# Snapshots one terminal may cause by its births per window; one more waits for the window and raises an
# alarm. Not in the server config yet (server/config.py's [sync] section is a candidate).
SNAPSHOT_BUDGET = 3
SNAPSHOT_WINDOW = 3600.0  # seconds
PARTS_PER_TURN = 4  # about 2 MiB of parts per loop turn, then pending journal ranges get their turn
PEOPLE_PER_LOAD = 200  # people read from the database at a time
# An open budget alarm is resolved once its terminal has asked for nothing over budget for this long.
ALARM_QUIET = 24 * 3600.0

SendFn = Callable[[str, WireModel], object]
PublishFn = Callable[[str, bytes], object]


@dataclass
class Stream:
    """One terminal's snapshot: waiting for its turn, or partly sent."""

    site_id: int
    terminal_id: int
    ident: str
    topic: str
    counted: bool  # caused by the terminal's birth (spends its budget), not by a change at the site
    not_before: float = 0.0  # monotonic time before which it may not start (budget spent)
    nonce: str | None = None  # the latest birth's nonce, confirmed by an InSync after the last part
    started: bool = False
    done: bool = False
    seq: int = 0
    snapshot_id: str = ""
    site_code: str = ""
    scope: TerminalScope | None = None
    data: SiteData | None = None
    sealer: TerminalSealer | None = None
    person_ids: list[int] = field(default_factory=list)
    next_person: int = 0  # index into person_ids of the next block to load
    loaded: deque[Record] = field(default_factory=deque)  # records read but not yet put into a part
    pending: list[Record] = field(default_factory=list)  # the part being filled
    size: int = 0
    entries: list[tuple[str, str, str]] = field(default_factory=list)  # for the roster hash of the last part
    parts: int = 0
    behind: list[bytes] = field(default_factory=list)  # signed messages for the topic, sent after the last part


class SnapshotStreams:
    """The worker's snapshots in flight or waiting, and each terminal's budget."""

    def __init__(
        self,
        keys_sealer: Callable[[str], TerminalSealer],
        send: SendFn,
        publish: PublishFn,
        part_budget: Callable[[], int],
        *,
        budget: int = SNAPSHOT_BUDGET,
        window: float = SNAPSHOT_WINDOW,
        parts_per_turn: int = PARTS_PER_TURN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sealer = keys_sealer
        self._send = send
        self._publish = publish
        self._part_budget = part_budget
        self.budget = budget
        self.window = window
        self.parts_per_turn = parts_per_turn
        self._clock = clock
        self._streams: dict[str, Stream] = {}  # by sync topic, in round-robin order
        self._spent: dict[int, deque[float]] = {}  # per terminal: when its counted snapshots started
        self.over_budget: dict[str, float] = {}  # per terminal ident: when it last asked over its budget

    # ---- asking --------------------------------------------------------------------------------------------

    def in_flight(self, site_code: str, ident: str) -> Stream | None:
        """The terminal's stream, started or waiting, if any."""
        return self._streams.get(terminal_topic(site_code, ident, Channel.SYNC))

    def hold(self, topic: str, payload: bytes) -> bool:
        """Keep a signed message for a terminal whose snapshot is under way until after its last part."""
        stream = self._streams.get(topic)
        if stream is None or not stream.started:
            return False
        stream.behind.append(payload)
        return True

    def request(
        self, session: DbSession, site: Site, scope: TerminalScope, *, counted: bool, nonce: str | None = None
    ) -> Stream:
        """A snapshot for the terminal: the one in flight, or a new one (put off if its budget is spent)."""
        topic = terminal_topic(site.code, scope.ident, Channel.SYNC)
        now = self._clock()
        stream = self._streams.get(topic)
        if stream is not None:
            if nonce is not None:
                stream.nonce = nonce
            if not counted and not stream.started:
                stream.not_before = min(stream.not_before, now)  # a change at the site needs it now
            return stream
        stream = Stream(site.id, scope.terminal_id, scope.ident, topic, counted, not_before=now, nonce=nonce)
        if counted:
            spent = self._window(scope.terminal_id, now)
            if len(spent) >= self.budget:
                stream.not_before = spent[0] + self.window
                self._over_budget(session, site, scope, len(spent), stream.not_before - now)
        self._streams[topic] = stream
        return stream

    def restart(self, session: DbSession, site: Site, scope: TerminalScope) -> None:
        """The site changed what the terminal may hold: a snapshot from scratch, now (not counted)."""
        topic = terminal_topic(site.code, scope.ident, Channel.SYNC)
        old = self._streams.get(topic)
        if old is not None and old.started:
            # What waits behind it is older than the new snapshot will be; its birth's nonce carries over.
            del self._streams[topic]
            log.info("restarting the snapshot for %s: the site changed what it may hold", scope.ident)
        stream = self.request(session, site, scope, counted=False, nonce=None if old is None else old.nonce)
        stream.not_before = min(stream.not_before, self._clock())

    def _window(self, terminal_id: int, now: float) -> deque[float]:
        spent = self._spent.setdefault(terminal_id, deque())
        while spent and spent[0] <= now - self.window:
            spent.popleft()
        return spent

    def _over_budget(self, session: DbSession, site: Site, scope: TerminalScope, count: int, wait: float) -> None:
        self.over_budget[scope.ident] = self._clock()
        terminal = session.get(Terminal, scope.terminal_id)
        name = terminal.name if terminal is not None else scope.ident
        log.warning(
            "terminal %s asked for more than %d snapshots in %.0f min; the next waits %.0f min",
            scope.ident,
            count,
            self.window / 60,
            wait / 60,
        )
        alarms.raise_snapshot_budget(session, site.id, name, scope.ident, count, self.window, wait)

    # ---- streaming -----------------------------------------------------------------------------------------

    def busy(self) -> bool:
        """Whether a stream could send parts now (the loop should not sleep)."""
        now = self._clock()
        return any(s.started or s.not_before <= now for s in self._streams.values())

    def advance(self, session: DbSession) -> bool:
        """Send up to `parts_per_turn` parts of the next stream due; True if one made progress. Commits."""
        now = self._clock()
        due = next((s for s in self._streams.values() if s.started or s.not_before <= now), None)
        if due is None:
            return False
        # Round robin: this terminal goes to the back of the line.
        del self._streams[due.topic]
        self._streams[due.topic] = due
        try:
            if not due.started and not self._start(session, due):
                self._streams.pop(due.topic, None)
                session.commit()
                return True
            held = self._fill(session, due)
            erasure.record_holdings(session, due.terminal_id, held)
            session.commit()
        except Exception:
            session.rollback()
            self._streams.pop(due.topic, None)
            raise
        if due.done:
            self._finish(due)
        return True

    def _start(self, session: DbSession, stream: Stream) -> bool:
        terminal = session.get(Terminal, stream.terminal_id)
        if terminal is None:
            log.info("dropped a snapshot for %s: the terminal is gone", stream.ident)
            return False
        site = terminal.site
        scope = roster.scope_of(session, terminal)
        stream.scope = scope
        stream.site_code = site.code
        stream.seq = site.published_seq
        stream.snapshot_id = uuid.uuid4().hex
        stream.data = roster.load_site(session, site)
        stream.sealer = self._sealer(scope.ident)
        stream.loaded.extend(roster.head_records(session, site.id, stream.data, scope))
        stream.person_ids = roster.active_person_ids(session, site.id)
        stream.started = True
        if stream.counted:
            self._window(stream.terminal_id, self._clock()).append(self._clock())
        return True

    def _fill(self, session: DbSession, stream: Stream) -> set[int]:
        """Put records into parts until `parts_per_turn` parts went out or the roster is done."""
        assert stream.scope is not None and stream.data is not None and stream.sealer is not None  # noqa: S101
        budget = self._part_budget()
        sent = 0
        held: set[int] = set()
        while sent < self.parts_per_turn:
            if not stream.loaded:
                if stream.next_person >= len(stream.person_ids):
                    self._part(stream, last=True)
                    stream.done = True
                    break
                block = stream.person_ids[stream.next_person : stream.next_person + PEOPLE_PER_LOAD]
                stream.next_person += len(block)
                people = roster.load_people_between(session, stream.site_id, block[0], block[-1])
                stream.loaded.extend(
                    r for p in people if (r := roster.person_record(stream.data, stream.scope, p, stream.sealer))
                )
                continue
            record = stream.loaded.popleft()
            cost = estimated_size(record)
            if stream.pending and stream.size + cost > budget:
                self._part(stream, last=False)
                sent += 1
            stream.pending.append(record)
            stream.size += cost
            stream.entries.append((record.kind, record.key, fingerprint(record)))
            held |= template_ids([record])
        return held

    def _part(self, stream: Stream, *, last: bool) -> None:
        stream.parts += 1
        self._send(
            stream.topic,
            SnapshotPart(
                site=stream.site_code,
                terminal=stream.ident,
                snapshot_id=stream.snapshot_id,
                seq=stream.seq,
                part=stream.parts,
                last=last,
                roster_hash=roster_hash(stream.entries) if last else None,
                records=tuple(stream.pending),
            ),
        )
        stream.pending = []
        stream.size = 0

    def _finish(self, stream: Stream) -> None:
        """After the last part: what waited behind the stream, then the InSync for the latest birth."""
        self._streams.pop(stream.topic, None)
        for payload in stream.behind:
            self._publish(stream.topic, payload)
        if stream.nonce is not None:
            self._send(
                stream.topic, InSync(site=stream.site_code, terminal=stream.ident, seq=stream.seq, nonce=stream.nonce)
            )
        log.info(
            "snapshot of %d records at seq %d sent to %s in %d parts (%d message(s) waited behind it)",
            len(stream.entries),
            stream.seq,
            stream.ident,
            stream.parts,
            len(stream.behind),
        )

    # ---- alarms --------------------------------------------------------------------------------------------

    def flooding(self) -> set[str]:
        """Terminals that asked over their budget within ALARM_QUIET (their alarms stay open)."""
        now = self._clock()
        for ident in [i for i, at in self.over_budget.items() if at <= now - ALARM_QUIET]:
            del self.over_budget[ident]
        return set(self.over_budget)
