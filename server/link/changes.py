"""Which roster records a run of journal entries touches, and the delta each terminal needs for it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from gatehouse_core.wire.records import (
    PassRecord,
    PersonRecord,
    Record,
    Removal,
)
from server.link.roster import (
    PassData,
    PersonData,
    Sealer,
    SiteData,
    TerminalScope,
    group_record,
    pass_record,
    person_record,
)
from server.models import JournalKind

_PERSON_KINDS = {
    JournalKind.GRANT,
    JournalKind.REVOKE,
    JournalKind.CREDENTIAL_ADD,
    JournalKind.CREDENTIAL_REVOKE,
    JournalKind.TEMPLATE_ADD,
    JournalKind.TEMPLATE_DELETE,
    JournalKind.PERSON_STATUS,
    JournalKind.FACE_CONSENT,
}
_PASS_KINDS = {JournalKind.PASS_ISSUE, JournalKind.PASS_CONSUME, JournalKind.PASS_REVOKE}


@dataclass
class Changes:
    """What changed in a journal range."""

    people: set[str] = field(default_factory=set)
    groups: set[int] = field(default_factory=set)
    passes: set[int] = field(default_factory=set)
    site: bool = False
    # A door's entry methods changed: terminals serving it get a fresh snapshot, since whether they may
    # hold face templates at all can change with it.
    policy_doors: set[int] = field(default_factory=set)
    # A door's mode or unlock schedule changed: only its door record is sent, first in the delta (a lockdown is
    # a restriction and must not wait behind a snapshot of everyone).
    doors: set[int] = field(default_factory=set)
    # Something changed for everybody at the site (a new notice or face model, face switched on or off).
    everyone: bool = False

    def needs_snapshot(self, scope: TerminalScope) -> bool:
        """Whether this terminal must be sent its whole roster rather than a delta."""
        return self.everyone or bool(scope.doors & self.policy_doors)


def changes_in(entries: Iterable[tuple[JournalKind, dict[str, Any]]]) -> Changes:
    """Collect the records touched by journal entries."""
    changes = Changes()
    for kind, payload in entries:
        if kind in _PERSON_KINDS and isinstance(payload.get("person"), str):
            changes.people.add(payload["person"])
        elif kind in _PASS_KINDS and isinstance(payload.get("pass"), int):
            changes.passes.add(payload["pass"])
        elif kind is JournalKind.ROSTER_RESET:
            changes.everyone = True
        elif kind is JournalKind.DOOR_POLICY and isinstance(payload.get("door"), int):
            door_mode = "mode" in payload or "unlock_windows" in payload
            (changes.doors if door_mode else changes.policy_doors).add(payload["door"])
        elif kind is JournalKind.SCHEDULE:
            if isinstance(payload.get("group"), int):
                changes.groups.add(payload["group"])
            if "holiday" in payload:
                changes.site = True
    return changes


def delta_items(
    changes: Changes,
    site: SiteData,
    scope: TerminalScope,
    people: dict[str, PersonData],
    passes: dict[int, PassData],
    sealer: Sealer,
) -> tuple[list[Removal], list[Record]]:
    """Removals and records bringing one terminal up to date with `changes`; removals always come first."""
    removals: list[Removal] = []
    records: list[Record] = [site.doors[d] for d in sorted(changes.doors & scope.doors) if d in site.doors]
    if changes.site:
        records.append(site.site)
    for gid in sorted(changes.groups):
        group = group_record(site, scope, gid)
        if group is None:
            removals.append(Removal(kind="group", key=str(gid)))
        else:
            records.append(group)
    for pseudonym in sorted(changes.people):
        data = people.get(pseudonym)
        person: PersonRecord | None = None if data is None else person_record(site, scope, data, sealer)
        if person is None:
            removals.append(Removal(kind="person", key=pseudonym))
        else:
            records.append(person)
    for pass_id in sorted(changes.passes):
        found = passes.get(pass_id)
        pass_: PassRecord | None = None if found is None else pass_record(scope, found)
        if pass_ is None:
            removals.append(Removal(kind="pass", key=str(pass_id)))
        else:
            records.append(pass_)
    return removals, records


def estimated_size(item: Record | Removal) -> int:
    """Rough JSON size of an item, to cut messages into parts without serialising twice."""
    if isinstance(item, PersonRecord):
        return (
            120
            + 8 * len(item.groups)
            + sum(140 + len(c.sealed or b"") * 4 // 3 for c in item.credentials)
            + sum(70 + len(t.sealed) * 4 // 3 for t in item.templates)
        )
    if isinstance(item, Removal):
        return 60
    return 300 + 12 * sum(len(v) for v in item.model_dump().values() if isinstance(v, tuple))


def split_parts(
    removals: list[Removal], records: list[Record], budget: int
) -> list[tuple[list[Removal], list[Record]]]:
    """Cut items into parts of about `budget` bytes, removals first; always at least one (maybe empty) part."""
    parts: list[tuple[list[Removal], list[Record]]] = [([], [])]
    size = 0
    for item in [*removals, *records]:
        cost = estimated_size(item)
        if size + cost > budget and (parts[-1][0] or parts[-1][1]):
            parts.append(([], []))
            size = 0
        if isinstance(item, Removal):
            parts[-1][0].append(item)
        else:
            parts[-1][1].append(item)
        size += cost
    return parts


def template_ids(records: Iterable[Record]) -> set[int]:
    """Ids of the face templates among records (to remember which terminal was sent which)."""
    return {t.id for r in records if isinstance(r, PersonRecord) for t in r.templates}
