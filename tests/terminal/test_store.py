"""terminals.store: the terminal's durable roster, applied sequence, snapshot staging and outboxes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gatehouse_core.wire.messages import Decision, EntryMethod, Erased, EventRecord
from gatehouse_core.wire.records import (
    EMPTY_ROSTER_HASH,
    CredentialRecord,
    DoorRecord,
    GroupRecord,
    PersonRecord,
    Record,
    Removal,
    SiteRecord,
    TemplateRecord,
    fingerprint,
    roster_hash,
)
from terminals.store import TerminalStore

ALICE = "p-000000000000000a"
BOB = "p-000000000000000b"
CAROL = "p-000000000000000c"
SEALED = b"\x01" + bytes(range(40))
SNAPSHOT_ID = "ab" * 16


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "terminal" / "store.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[TerminalStore]:
    s = TerminalStore(db_path)
    yield s
    s.close()


def door(id_: int, face: bool = False) -> DoorRecord:
    return DoorRecord(id=id_, face=face, card=True, id_document=True, app_code=True)


def person(pseudonym: str, *templates: int, groups: tuple[int, ...] = (1,)) -> PersonRecord:
    return PersonRecord(
        pseudonym=pseudonym,
        groups=groups,
        credentials=(CredentialRecord(id=1, kind="card", hash="cd" * 32),),
        templates=tuple(TemplateRecord(id=t, model="m1", sealed=SEALED) for t in templates),
    )


def group(id_: int, *doors: int) -> GroupRecord:
    return GroupRecord(id=id_, doors=doors, windows=((0, 0, 1440),), open_on_holidays=True)


def hash_of(records: list[Record]) -> str:
    return roster_hash((r.kind, r.key, fingerprint(r)) for r in records)


def event(n: int) -> EventRecord:
    return EventRecord(
        uid=f"{n:08x}-0000-4000-8000-000000000000",
        door=1,
        method=EntryMethod.CARD,
        decision=Decision.GRANT,
        reason="ok",
        person=ALICE,
        at=datetime(2026, 11, 23, 8, n % 60, tzinfo=UTC),
    )


SITE = SiteRecord(timezone="Asia/Shanghai", face_enabled=True, holidays=())


# ---- applying deltas -------------------------------------------------------------------------------------------


def test_new_store_is_empty(store: TerminalStore) -> None:
    assert store.applied_seq() == 0
    assert store.last_snapshot() is None
    assert store.roster_hash() == EMPTY_ROSTER_HASH
    assert store.pending_erasures() == [] and store.event_count() == 0


def test_apply_upserts_records(store: TerminalStore) -> None:
    records: list[Record] = [SITE, door(1), door(2, face=True), group(1, 1, 2), person(ALICE, 3)]
    assert store.apply([], records, 5) == []
    assert store.records("door") == [door(1), door(2, face=True)]
    assert store.record("person", ALICE) == person(ALICE, 3)
    assert store.record("site", "site") == SITE
    assert store.record("person", BOB) is None
    assert store.count("door") == 2 and store.count("person") == 1
    assert store.roster_hash() == hash_of(records)
    # The same key again replaces the record.
    store.apply([], [door(1, face=True), person(ALICE, 3, groups=(1, 2))], None)
    assert store.count("door") == 2
    assert store.record("door", "1") == door(1, face=True)
    assert store.record("person", ALICE) == person(ALICE, 3, groups=(1, 2))


def test_sealed_bytes_survive_storage(store: TerminalStore) -> None:
    alice = PersonRecord(
        pseudonym=ALICE,
        groups=(1,),
        credentials=(CredentialRecord(id=2, kind="app_code", sealed=bytes(range(255, 200, -1))),),
        templates=(TemplateRecord(id=3, model="m1", sealed=bytes(range(64))),),
    )
    store.apply([], [alice], 1)
    held = store.record("person", ALICE)
    assert held == alice
    assert isinstance(held, PersonRecord) and held.templates[0].sealed == bytes(range(64))


def test_removals_drop_records(store: TerminalStore) -> None:
    store.apply([], [door(1), door(2), group(1, 1), person(ALICE)], 1)
    erased = store.apply([Removal(kind="door", key="2"), Removal(kind="group", key="1")], [], 2)
    assert erased == []
    assert [r.key for r in store.records("door")] == ["1"]
    assert store.count("group") == 0
    assert store.roster_hash() == hash_of([door(1), person(ALICE)])


def test_removal_of_unknown_record_is_harmless(store: TerminalStore) -> None:
    store.apply([], [door(1)], 1)
    erased = store.apply([Removal(kind="person", key=BOB), Removal(kind="door", key="9")], [], 2)
    assert erased == []
    assert store.pending_erasures() == []
    assert store.applied_seq() == 2 and store.count("door") == 1


def test_removal_matches_kind_and_key(store: TerminalStore) -> None:
    store.apply([], [door(1), group(1, 1)], 1)
    store.apply([Removal(kind="group", key="1")], [], 2)
    assert store.record("door", "1") == door(1)
    assert store.record("group", "1") is None


def test_person_removal_erases_the_person_and_each_template(store: TerminalStore) -> None:
    store.apply([], [person(ALICE, 3, 10), person(BOB, 4)], 1)
    erased = store.apply([Removal(kind="person", key=ALICE)], [], 2)
    expected = [Erased(kind="person", ref=ALICE), Erased(kind="template", ref="3"), Erased(kind="template", ref="10")]
    assert sorted(erased, key=repr) == sorted(expected, key=repr)
    assert sorted(store.pending_erasures(), key=repr) == sorted(expected, key=repr)
    assert store.record("person", ALICE) is None
    assert store.record("person", BOB) == person(BOB, 4)


def test_person_without_templates_erases_only_the_person(store: TerminalStore) -> None:
    store.apply([], [person(ALICE)], 1)
    assert store.apply([Removal(kind="person", key=ALICE)], [], 2) == [Erased(kind="person", ref=ALICE)]


def test_removals_come_before_records(store: TerminalStore) -> None:
    store.apply([], [person(ALICE, 3)], 1)
    erased = store.apply([Removal(kind="person", key=ALICE)], [person(ALICE, 5)], 2)
    assert Erased(kind="person", ref=ALICE) in erased and Erased(kind="template", ref="3") in erased
    assert store.record("person", ALICE) == person(ALICE, 5)


def test_upsert_dropping_a_template_erases_it(store: TerminalStore) -> None:
    store.apply([], [person(ALICE, 3, 10, 20)], 1)
    erased = store.apply([], [person(ALICE, 10)], 2)
    assert erased == [Erased(kind="template", ref="3"), Erased(kind="template", ref="20")]
    assert sorted(store.pending_erasures(), key=repr) == sorted(erased, key=repr)
    assert store.record("person", ALICE) == person(ALICE, 10)


@pytest.mark.parametrize(
    ("before", "after"),
    [((), ()), ((), (3,)), ((3,), (3,)), ((3,), (3, 4))],
    ids=["none", "added", "kept", "kept-and-added"],
)
def test_upsert_keeping_templates_erases_nothing(
    store: TerminalStore, before: tuple[int, ...], after: tuple[int, ...]
) -> None:
    store.apply([], [person(ALICE, *before)], 1)
    assert store.apply([], [person(ALICE, *after)], 2) == []
    assert store.pending_erasures() == []


def test_applied_seq_moves_only_when_given(store: TerminalStore) -> None:
    store.apply([], [door(1)], 4)
    assert store.applied_seq() == 4
    store.apply([], [door(2)], None)
    assert store.applied_seq() == 4
    assert store.count("door") == 2
    store.apply([Removal(kind="door", key="2")], [], 7)
    assert store.applied_seq() == 7


# ---- snapshots -------------------------------------------------------------------------------------------------


def test_staging_does_not_touch_the_live_roster(store: TerminalStore) -> None:
    store.apply([], [door(1), person(ALICE)], 3)
    before = store.roster_hash()
    store.stage([door(7)])
    assert store.roster_hash() == before
    assert store.records("door") == [door(1)]
    assert store.roster_hash("staging") == hash_of([door(7)])


def test_swap_in_makes_the_staged_roster_live(store: TerminalStore) -> None:
    store.apply([], [door(1), person(ALICE)], 3)
    part1: list[Record] = [SITE, door(2)]
    part2: list[Record] = [group(1, 2), person(ALICE), person(BOB)]
    store.stage_reset()
    store.stage(part1)
    store.stage(part2)
    erased = store.swap_in(SNAPSHOT_ID, 12, hash_of(part1 + part2))
    assert erased == []
    assert store.roster_hash() == hash_of(part1 + part2)
    assert store.records("door") == [door(2)]
    assert store.count("person") == 2
    assert store.applied_seq() == 12
    assert store.last_snapshot() == SNAPSHOT_ID
    assert store.roster_hash("staging") == EMPTY_ROSTER_HASH


def test_swap_in_with_wrong_hash_keeps_the_live_roster(store: TerminalStore) -> None:
    live: list[Record] = [door(1), person(ALICE, 3)]
    store.apply([], live, 3)
    store.stage([door(2)])
    assert store.swap_in(SNAPSHOT_ID, 12, hash_of([door(2), door(3)])) is None
    assert store.roster_hash() == hash_of(live)
    assert store.record("person", ALICE) == person(ALICE, 3)
    assert store.applied_seq() == 3
    assert store.last_snapshot() is None
    assert store.pending_erasures() == []
    # Staging was emptied, so a retry starts from scratch.
    assert store.roster_hash("staging") == EMPTY_ROSTER_HASH


def test_swap_in_erases_people_and_templates_left_out(store: TerminalStore) -> None:
    store.apply([], [person(ALICE, 3), person(BOB, 4, 5), person(CAROL, 6)], 3)
    snapshot: list[Record] = [person(BOB, 5), person(CAROL, 6)]
    store.stage(snapshot)
    erased = store.swap_in(SNAPSHOT_ID, 9, hash_of(snapshot))
    assert erased is not None
    expected = [Erased(kind="person", ref=ALICE), Erased(kind="template", ref="3"), Erased(kind="template", ref="4")]
    assert sorted(erased, key=repr) == sorted(expected, key=repr)
    assert sorted(store.pending_erasures(), key=repr) == sorted(expected, key=repr)
    assert store.record("person", ALICE) is None


def test_empty_snapshot_empties_the_roster(store: TerminalStore) -> None:
    store.apply([], [door(1), person(ALICE, 3)], 3)
    erased = store.swap_in(SNAPSHOT_ID, 4, EMPTY_ROSTER_HASH)
    assert erased is not None and Erased(kind="person", ref=ALICE) in erased
    assert store.roster_hash() == EMPTY_ROSTER_HASH
    assert store.applied_seq() == 4


def test_stage_reset_discards_staged_parts(store: TerminalStore) -> None:
    store.stage([door(1)])
    store.stage_reset()
    store.stage([door(2)])
    assert store.swap_in(SNAPSHOT_ID, 1, hash_of([door(2)])) == []
    assert store.records("door") == [door(2)]


def test_second_swap_works_after_tables_were_renamed(store: TerminalStore) -> None:
    store.stage([door(1)])
    assert store.swap_in(SNAPSHOT_ID, 1, hash_of([door(1)])) == []
    store.stage([door(2)])
    assert store.swap_in("cd" * 16, 2, hash_of([door(2)])) == []
    assert store.records("door") == [door(2)]
    assert store.last_snapshot() == "cd" * 16
    store.apply([], [door(3)], 3)
    assert store.roster_hash() == hash_of([door(2), door(3)])


# ---- restart ---------------------------------------------------------------------------------------------------


def test_reopened_store_keeps_state_and_clears_staging(db_path: Path) -> None:
    first = TerminalStore(db_path)
    first.stage([door(1)])
    assert first.swap_in(SNAPSHOT_ID, 5, hash_of([door(1)])) == []
    first.apply([], [person(ALICE, 3)], 6)
    first.apply([Removal(kind="person", key=ALICE)], [], 7)
    first.add_events([event(1)])
    first.stage([door(9)])  # a snapshot cut off by the restart
    live = first.roster_hash()
    first.close()

    second = TerminalStore(db_path)
    try:
        assert second.applied_seq() == 7
        assert second.last_snapshot() == SNAPSHOT_ID
        assert second.roster_hash() == live == hash_of([door(1)])
        assert second.roster_hash("staging") == EMPTY_ROSTER_HASH
        assert sorted(second.pending_erasures(), key=repr) == sorted(
            [Erased(kind="person", ref=ALICE), Erased(kind="template", ref="3")], key=repr
        )
        assert second.pending_events(10) == [event(1)]
    finally:
        second.close()


def test_read_only_store_sees_state_and_leaves_staging(db_path: Path, store: TerminalStore) -> None:
    store.apply([], [door(1)], 2)
    store.stage([door(2)])
    reader = TerminalStore(db_path, read_only=True)
    try:
        assert reader.applied_seq() == 2
        assert reader.records("door") == [door(1)]
    finally:
        reader.close()
    assert store.roster_hash("staging") == hash_of([door(2)])


# ---- outboxes --------------------------------------------------------------------------------------------------


def test_event_outbox_add_pending_purge(store: TerminalStore) -> None:
    store.add_events([event(1), event(2)])
    store.add_events([event(3), event(4), event(2)])  # a duplicate uid is kept once
    assert store.event_count() == 4
    assert store.pending_events(2) == [event(1), event(2)]
    assert store.pending_events(2, exclude=[event(1).uid, event(2).uid]) == [event(3), event(4)]
    assert store.pending_events(10, exclude=[event(3).uid]) == [event(1), event(2), event(4)]
    store.purge_events([event(1).uid, event(3).uid, "ffffffff-0000-4000-8000-000000000000"])
    assert store.event_count() == 2
    assert store.pending_events(10) == [event(2), event(4)]


def test_erasure_outbox_purge(store: TerminalStore) -> None:
    store.apply([], [person(ALICE, 3), person(BOB, 4)], 1)
    store.apply([Removal(kind="person", key=ALICE), Removal(kind="person", key=BOB)], [], 2)
    assert len(store.pending_erasures()) == 4
    store.purge_erasures([Erased(kind="person", ref=ALICE), Erased(kind="template", ref="3")])
    assert sorted(store.pending_erasures(), key=repr) == sorted(
        [Erased(kind="person", ref=BOB), Erased(kind="template", ref="4")], key=repr
    )
    # Purging names only: a template ref does not purge a person with the same ref.
    store.purge_erasures([Erased.model_construct(kind="template", ref=BOB)])
    assert len(store.pending_erasures()) == 2


def test_same_erasure_is_queued_once(store: TerminalStore) -> None:
    store.apply([], [person(ALICE, 3)], 1)
    store.apply([Removal(kind="person", key=ALICE)], [], 2)
    store.apply([], [person(ALICE, 3)], 3)
    store.apply([Removal(kind="person", key=ALICE)], [], 4)
    assert len(store.pending_erasures()) == 2
