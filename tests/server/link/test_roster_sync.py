"""Server side of terminal sync: what each terminal holds, deltas, events and erasure receipts (both databases)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from gatehouse_core.keyring import ServerKeys, terminal_seal_key
from gatehouse_core.schedule import ALWAYS
from gatehouse_core.sealed import SealError, unseal
from gatehouse_core.wire.base import MessageError, WireModel, decode, encode
from gatehouse_core.wire.messages import Ack, Decision, Delta, EntryMethod, Erased, EventBatch, EventRecord
from gatehouse_core.wire.records import (
    DoorRecord,
    PassRecord,
    PersonRecord,
    Record,
    Removal,
    SiteRecord,
    TemplateRecord,
    fingerprint,
    roster_hash,
    seed_context,
    template_context,
)
from server.extensions import db
from server.link import event_ingest as events
from server.link import roster
from server.link.changes import changes_in, delta_items, estimated_size, split_parts
from server.models import (
    AccessEvent,
    AccessGroup,
    ConfirmedBy,
    ConsentRecord,
    Door,
    ErasureReason,
    ErasureReceipt,
    FaceTemplate,
    JournalKind,
    PassStatus,
    Person,
    PersonStatus,
    Site,
    TemplateHolding,
    Terminal,
    VisitorPass,
    utcnow,
)
from server.services import journal
from server.services.access import access
from server.services.errors import Conflict, RuleViolation
from server.services.face import templates as face_templates
from server.services.people import credentials, people
from server.services.privacy import erasure
from server.services.terminals import terminals
from server.services.visitors import passes
from terminals.store import TerminalStore
from tests.conftest import TEST_ACTOR
from tests.support.privacy import consent_row

VECTOR = bytes(range(256)) * 8  # a 2 KiB stand-in for a face embedding
MODEL = "test-model"


# ---- a site with doors, groups, terminals and people --------------------------------------------------------------


@dataclass
class World:
    """Doors A and B take face, C does not; terminals TA [A], TB [B], TAC [A, C], TC [C]."""

    site: Site
    doors: dict[str, Door]
    groups: dict[str, AccessGroup]
    terminals: dict[str, Terminal]
    people: dict[str, Person]


@pytest.fixture
def world(make_site, make_door, make_person) -> World:
    site = make_site()
    site.face_enabled = True
    db.session.commit()
    doors = {"A": make_door(site, "A", face=True), "B": make_door(site, "B", face=True), "C": make_door(site, "C")}
    groups = {
        name: access.create_group(db.session, TEST_ACTOR, site, name, [doors[d] for d in covered], ALWAYS.windows)
        for name, covered in {"GA": "A", "GB": "B", "GAB": "AB", "GC": "C"}.items()
    }
    terms = {
        name: terminals.provision_terminal(db.session, TEST_ACTOR, site, name, [doors[d] for d in served]).terminal
        for name, served in {"TA": "A", "TB": "B", "TAC": "AC", "TC": "C"}.items()
    }
    db.session.commit()
    members = {"alice": ["GA"], "bob": ["GB"], "carol": ["GAB"], "dave": ["GC"], "erin": ["GA", "GB"]}
    persons = {}
    for name, group_names in members.items():
        persons[name] = make_person(site, name.title())
        for g in group_names:
            access.add_member(db.session, TEST_ACTOR, groups[g], persons[name])
    db.session.commit()
    return World(site, doors, groups, terms, persons)


def scope(w: World, terminal: str) -> roster.TerminalScope:
    return roster.scope_of(db.session, w.terminals[terminal])


def roster_of(w: World, terminal: str, keys: ServerKeys) -> list[Record]:
    sealer = roster.TerminalSealer(keys, w.terminals[terminal].ident)
    return roster.full_roster(db.session, w.site, scope(w, terminal), sealer)


def by_kind(records: list[Record], kind: str) -> dict[str, Any]:
    return {r.key: r for r in records if r.kind == kind}


def hash_of(records: list[Record]) -> str:
    return roster_hash((r.kind, r.key, fingerprint(r)) for r in records)


def give_consent(person: Person, **fields: Any) -> ConsentRecord:
    return consent_row(person, **fields)


def give_face(person: Person, keys: ServerKeys, **consent_fields: Any) -> FaceTemplate:
    template = face_templates.store_template(
        db.session, TEST_ACTOR, keys, person, give_consent(person, **consent_fields), MODEL, VECTOR
    )
    db.session.commit()
    return template


# ---- minimisation ---------------------------------------------------------------------------------------------


def test_terminal_holds_only_people_and_groups_of_its_doors(world: World, keys: ServerKeys) -> None:
    w = world
    records = roster_of(w, "TA", keys)
    p = {name: w.people[name].pseudonym for name in w.people}
    g = {name: w.groups[name].id for name in w.groups}
    a, b = w.doors["A"].id, w.doors["B"].id

    assert set(by_kind(records, "person")) == {p["alice"], p["carol"], p["erin"]}
    assert set(by_kind(records, "door")) == {str(a)}
    groups = by_kind(records, "group")
    assert set(groups) == {str(g["GA"]), str(g["GAB"])}
    assert groups[str(g["GAB"])].doors == (a,)  # cut down to this terminal's doors
    assert groups[str(g["GA"])].windows == tuple(
        sorted((x.weekday, x.start_minute, x.end_minute) for x in ALWAYS.windows)
    )
    # Erin is in GA and GB; this terminal learns only of GA.
    assert by_kind(records, "person")[p["erin"]].groups == (g["GA"],)
    assert by_kind(records, "site") == {"site": SiteRecord(timezone=w.site.timezone, face_enabled=True, holidays=())}

    other = roster_of(w, "TB", keys)
    assert set(by_kind(other, "person")) == {p["bob"], p["carol"], p["erin"]}
    assert by_kind(other, "group")[str(g["GAB"])].doors == (b,)
    assert by_kind(other, "person")[p["erin"]].groups == (g["GB"],)

    assert set(by_kind(roster_of(w, "TC", keys), "person")) == {p["dave"]}
    assert set(by_kind(roster_of(w, "TAC", keys), "person")) == {p["alice"], p["carol"], p["dave"], p["erin"]}


def test_doors_carry_their_methods(world: World, keys: ServerKeys) -> None:
    doors = by_kind(roster_of(world, "TAC", keys), "door")
    a, c = world.doors["A"].id, world.doors["C"].id
    assert doors == {
        str(a): DoorRecord(id=a, face=True, card=True, id_document=True, app_code=True),
        str(c): DoorRecord(id=c, face=False, card=True, id_document=True, app_code=True),
    }


@pytest.mark.parametrize("how", ["suspended", "moved_out"])
def test_inactive_people_are_not_held(world: World, keys: ServerKeys, how: str) -> None:
    alice = world.people["alice"]
    if how == "suspended":
        alice.status = PersonStatus.SUSPENDED
    else:
        people.move_out(db.session, TEST_ACTOR, alice)
    db.session.commit()
    held = by_kind(roster_of(world, "TA", keys), "person")
    assert alice.pseudonym not in held
    assert world.people["carol"].pseudonym in held


def test_people_hold_only_active_credentials(world: World, keys: ServerKeys) -> None:
    alice = world.people["alice"]
    old = credentials.add_card(db.session, TEST_ACTOR, keys, alice, "04:a2:b3:c4:d5:e6:f7")
    new = credentials.add_card(db.session, TEST_ACTOR, keys, alice, "04:a2:b3:c4:d5:e6:f8")
    credentials.revoke(db.session, TEST_ACTOR, old)
    db.session.commit()
    record = by_kind(roster_of(world, "TA", keys), "person")[alice.pseudonym]
    assert [(c.id, c.kind, c.hash) for c in record.credentials] == [(new.id, "card", new.lookup_hash)]


def test_passes_are_held_only_for_the_terminals_doors(world: World, keys: ServerKeys) -> None:
    w = world
    now = utcnow()
    a, b, c = (w.doors[d] for d in "ABC")

    def make_pass(doors: list[Door], **kw: Any) -> VisitorPass:
        fields: dict[str, Any] = {"valid_from": now - timedelta(hours=1), "valid_until": now + timedelta(hours=5)}
        fields.update(kw)
        vp = VisitorPass(
            site_id=w.site.id, host=w.people["alice"], visitor_name="V", code_hash="ab" * 32, doors=doors, **fields
        )
        db.session.add(vp)
        return vp

    both = make_pass([a, b])
    only_c = make_pass([c])
    revoked = make_pass([a], status=PassStatus.REVOKED)
    ended = make_pass([a], valid_from=now - timedelta(days=2), valid_until=now - timedelta(days=1))
    make_pass([a], status=PassStatus.EXPIRED, valid_from=now - timedelta(days=2), valid_until=now - timedelta(days=1))
    db.session.commit()
    held = by_kind(roster_of(w, "TA", keys), "pass")
    # Revoked passes stay (flagged) so terminals can refuse their signed QR tokens; ended ones stay until
    # the worker expires them through the journal, never by the clock alone.
    assert set(held) == {str(both.id), str(revoked.id), str(ended.id)}
    first = held[str(both.id)]
    assert isinstance(first, PassRecord) and first.doors == (a.id,) and not first.revoked
    flagged = held[str(revoked.id)]
    assert isinstance(flagged, PassRecord) and flagged.revoked
    assert set(by_kind(roster_of(w, "TC", keys), "pass")) == {str(only_c.id)}

    start = w.site.journal_seq
    assert passes.expire_passes(db.session) == 1
    db.session.commit()
    assert set(by_kind(roster_of(w, "TA", keys), "pass")) == {str(both.id), str(revoked.id)}
    entries = journal.entries_after(db.session, w.site.id, start)
    assert [(e.kind, e.payload["pass"]) for e in entries] == [(JournalKind.PASS_REVOKE, ended.id)]


def test_roster_loaded_in_small_blocks_is_the_whole_roster(
    world: World, keys: ServerKeys, make_site, make_person
) -> None:
    w = world
    elsewhere = make_site()
    for i in range(5):
        # Interleave ids with an inactive person and a person of another site.
        person = make_person(w.site, f"Extra {i}")
        access.add_member(db.session, TEST_ACTOR, w.groups["GA"], person)
        make_person(elsewhere, f"Other {i}")
        make_person(w.site, f"Suspended {i}").status = PersonStatus.SUSPENDED
    db.session.commit()
    sealer = roster.HashOnlySealer()
    whole = [(r.kind, r.key, fingerprint(r)) for r in roster.full_roster(db.session, w.site, scope(w, "TA"), sealer)]
    blocks = list(roster.iter_roster(db.session, w.site, scope(w, "TA"), sealer, batch=2))
    assert len(blocks) > 3
    in_blocks = [(r.kind, r.key, fingerprint(r)) for block in blocks for r in block]
    assert len(in_blocks) == len(set(in_blocks)) == len(whole)
    assert set(in_blocks) == set(whole)
    assert sum(1 for kind, _, _ in whole if kind == "person") == 3 + 5  # alice, carol, erin and the extras


# ---- face templates ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "terminal", "case", "held"),
    [
        ("carol", "TA", "active", True),
        ("carol", "TAC", "active", True),
        ("carol", "TA", "expires_later", True),
        ("carol", "TA", "face_off", False),
        ("carol", "TA", "withdrawn", False),
        ("carol", "TA", "expired", False),
        ("dave", "TC", "active", False),  # no face door on the terminal
        ("dave", "TAC", "active", False),  # a face door is served, but not one Dave may use
    ],
)
def test_templates_only_with_consent_and_a_usable_face_door(
    world: World, keys: ServerKeys, name: str, terminal: str, case: str, held: bool
) -> None:
    person = world.people[name]
    now = utcnow()
    consent_fields = {"expires_at": now + timedelta(days=30)} if case == "expires_later" else {}
    template = give_face(person, keys, **consent_fields)
    consent = db.session.get(ConsentRecord, template.consent_id)
    assert consent is not None
    if case == "face_off":
        world.site.face_enabled = False
    elif case == "withdrawn":
        consent.withdrawn_at = now - timedelta(minutes=1)
    elif case == "expired":
        consent.expires_at = now - timedelta(minutes=1)
    db.session.commit()

    record = by_kind(roster_of(world, terminal, keys), "person")[person.pseudonym]
    # The person is held with the same access either way; only the template depends on consent.
    assert isinstance(record, PersonRecord)
    assert [t.id for t in record.templates] == ([template.id] if held else [])
    if held:
        assert record.templates[0].model == MODEL


def test_sealed_template_and_seed_open_only_with_the_terminals_key(world: World, keys: ServerKeys) -> None:
    alice = world.people["alice"]
    template = give_face(alice, keys)
    credential, seed = credentials.issue_app_code_secret(db.session, TEST_ACTOR, keys, alice)
    db.session.commit()

    record = by_kind(roster_of(world, "TA", keys), "person")[alice.pseudonym]
    assert isinstance(record, PersonRecord)
    (sealed_template,) = record.templates
    (sealed_seed,) = [c for c in record.credentials if c.kind == "app_code"]
    assert sealed_seed.id == credential.id and sealed_seed.sealed is not None and sealed_seed.hash is None
    t_context = template_context(alice.pseudonym, template.id)
    s_context = seed_context(alice.pseudonym, credential.id)

    mine = terminal_seal_key(keys.template_key, world.terminals["TA"].ident)
    assert unseal(mine, sealed_template.sealed, t_context) == VECTOR
    assert unseal(mine, sealed_seed.sealed, s_context) == seed
    assert VECTOR not in encode(record) and seed not in encode(record)

    theirs = terminal_seal_key(keys.template_key, world.terminals["TAC"].ident)
    for key, sealed, context in [
        (theirs, sealed_template.sealed, t_context),
        (theirs, sealed_seed.sealed, s_context),
        (keys.template_key, sealed_template.sealed, t_context),
        (mine, sealed_template.sealed, template_context(world.people["carol"].pseudonym, template.id)),
        (mine, sealed_template.sealed, s_context),
        (mine, sealed_seed.sealed, t_context),
    ]:
        with pytest.raises(SealError):
            unseal(key, sealed, context)


# ---- roster hash ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("terminal", ["TA", "TAC", "TC"])
def test_expected_hash_is_the_hash_of_the_full_roster(world: World, keys: ServerKeys, terminal: str) -> None:
    give_face(world.people["carol"], keys)
    credentials.issue_app_code_secret(db.session, TEST_ACTOR, keys, world.people["alice"])
    credentials.add_card(db.session, TEST_ACTOR, keys, world.people["dave"], "04:a2:b3:c4:d5:e6:f7")
    db.session.commit()
    expected = roster.expected_hash(db.session, world.site, scope(world, terminal))
    assert expected == hash_of(roster_of(world, terminal, keys))
    # Sealing differs per call (fresh nonces), the hash does not.
    assert expected == hash_of(roster_of(world, terminal, keys))
    # A change the terminal must learn about changes the hash.
    access.remove_member(db.session, TEST_ACTOR, world.groups["GAB"], world.people["carol"])
    access.remove_member(db.session, TEST_ACTOR, world.groups["GC"], world.people["dave"])
    db.session.commit()
    assert roster.expected_hash(db.session, world.site, scope(world, terminal)) != expected


def test_terminal_store_reports_the_expected_hash_after_a_snapshot(
    world: World, keys: ServerKeys, tmp_path: Path
) -> None:
    give_face(world.people["carol"], keys)
    credentials.issue_app_code_secret(db.session, TEST_ACTOR, keys, world.people["alice"])
    db.session.commit()
    store = TerminalStore(tmp_path / "t.db")
    try:
        store.stage(roster_of(world, "TA", keys))
        expected = roster.expected_hash(db.session, world.site, scope(world, "TA"))
        assert store.swap_in("ab" * 16, 1, expected) is not None
        assert store.roster_hash() == expected
    finally:
        store.close()


# ---- deltas -----------------------------------------------------------------------------------------------------


def test_delta_removes_those_who_lost_access_and_sends_those_who_gained_it(
    world: World, keys: ServerKeys, tmp_path: Path
) -> None:
    w = world
    p = {name: w.people[name].pseudonym for name in w.people}
    card = credentials.add_card(db.session, TEST_ACTOR, keys, w.people["carol"], "04:a2:b3:c4:d5:e6:f7")
    db.session.commit()
    start = w.site.journal_seq
    store = TerminalStore(tmp_path / "t.db")
    try:
        store.stage(roster_of(w, "TA", keys))
        assert store.swap_in("ab" * 16, start, roster.expected_hash(db.session, w.site, scope(w, "TA"))) is not None

        access.remove_member(db.session, TEST_ACTOR, w.groups["GA"], w.people["alice"])  # loses A
        access.add_member(db.session, TEST_ACTOR, w.groups["GA"], w.people["bob"])  # gains A
        credentials.revoke(db.session, TEST_ACTOR, card)  # keeps A, loses the card
        people.move_out(db.session, TEST_ACTOR, w.people["erin"])  # loses everything
        db.session.commit()

        entries = journal.entries_after(db.session, w.site.id, start)
        changes = changes_in((e.kind, e.payload) for e in entries)
        assert changes.people == {p["alice"], p["bob"], p["carol"], p["erin"]}
        data = roster.load_site(db.session, w.site)
        loaded = roster.load_people(db.session, w.site.id, changes.people)
        passes = roster.load_passes(db.session, w.site.id, changes.passes)
        sealer = roster.TerminalSealer(keys, w.terminals["TA"].ident)
        removals, records = delta_items(changes, data, scope(w, "TA"), loaded, passes, sealer)

        assert sorted(r.key for r in removals) == sorted([p["alice"], p["erin"]])
        assert all(r.kind == "person" for r in removals)
        sent = {r.key: r for r in records}
        assert set(sent) == {p["bob"], p["carol"]}
        assert sent[p["bob"]].groups == (w.groups["GA"].id,)
        assert sent[p["carol"]].credentials == ()

        erased = store.apply(removals, records, w.site.journal_seq)
        assert Erased(kind="person", ref=p["alice"]) in erased and Erased(kind="person", ref=p["erin"]) in erased
        assert store.roster_hash() == roster.expected_hash(db.session, w.site, scope(w, "TA"))
    finally:
        store.close()


def test_change_elsewhere_gives_a_terminal_only_removals_of_what_it_never_held(world: World, keys: ServerKeys) -> None:
    # Dave (door C only) changes; terminal TA never held him, so it gets at most a harmless removal.
    start = world.site.journal_seq
    credentials.add_card(db.session, TEST_ACTOR, keys, world.people["dave"], "04:a2:b3:c4:d5:e6:f7")
    db.session.commit()
    changes = changes_in((e.kind, e.payload) for e in journal.entries_after(db.session, world.site.id, start))
    loaded = roster.load_people(db.session, world.site.id, changes.people)
    data = roster.load_site(db.session, world.site)
    sealer = roster.TerminalSealer(keys, world.terminals["TA"].ident)
    removals, records = delta_items(changes, data, scope(world, "TA"), loaded, {}, sealer)
    assert records == []
    assert removals == [Removal(kind="person", key=world.people["dave"].pseudonym)]
    removals, records = delta_items(changes, data, scope(world, "TC"), loaded, {}, sealer)
    assert removals == [] and [r.key for r in records] == [world.people["dave"].pseudonym]


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ([(JournalKind.GRANT, {"person": "p-1", "group": 1})], {"people": {"p-1"}}),
        ([(JournalKind.CREDENTIAL_REVOKE, {"person": "p-1", "credential": 2})], {"people": {"p-1"}}),
        ([(JournalKind.TEMPLATE_DELETE, {"person": "p-1", "template": 2})], {"people": {"p-1"}}),
        ([(JournalKind.PERSON_STATUS, {"person": "p-1", "status": "moved_out"})], {"people": {"p-1"}}),
        ([(JournalKind.PASS_ISSUE, {"pass": 4})], {"passes": {4}}),
        ([(JournalKind.DOOR_POLICY, {"door": 3, "face": True})], {"policy_doors": {3}}),
        ([(JournalKind.SCHEDULE, {"group": 5, "doors": [1]})], {"groups": {5}}),
        ([(JournalKind.SCHEDULE, {"holiday": "2027-01-01"})], {"site": True}),
        ([(JournalKind.GRANT, {"person": 7})], {}),  # malformed payloads are skipped
        ([(JournalKind.PASS_ISSUE, {"pass": "4"})], {}),
    ],
)
def test_changes_in(entries: list[tuple[JournalKind, dict[str, Any]]], expected: dict[str, Any]) -> None:
    changes = changes_in(entries)
    defaults: dict[str, Any] = {"people": set(), "groups": set(), "passes": set(), "site": False, "policy_doors": set()}
    defaults.update(expected)
    assert {k: getattr(changes, k) for k in defaults} == defaults


# ---- splitting into parts ---------------------------------------------------------------------------------------


def _removals(n: int) -> list[Removal]:
    return [Removal(kind="person", key=f"p-{i:016x}") for i in range(n)]


def _people(n: int) -> list[Record]:
    return [
        PersonRecord(
            pseudonym=f"p-{i + 1000:016x}",
            groups=(1, 2),
            templates=(TemplateRecord(id=i + 1, model=MODEL, sealed=bytes(29) + VECTOR[: 300 + 37 * i]),),
        )
        for i in range(n)
    ]


@pytest.mark.parametrize(("n_removals", "n_records"), [(0, 0), (5, 0), (0, 5), (40, 12), (200, 30)])
@pytest.mark.parametrize("budget", [1500, 4000, 20_000])
def test_split_parts_sends_removals_first_and_keeps_parts_under_budget(
    n_removals: int, n_records: int, budget: int
) -> None:
    removals, records = _removals(n_removals), _people(n_records)
    parts = split_parts(removals, records, budget)
    assert parts, "there is always at least one part"
    # Nothing is lost, reordered or duplicated.
    assert [r for part_removals, _ in parts for r in part_removals] == removals
    assert [r for _, part_records in parts for r in part_records] == records
    # No part carries a removal after any part that carried a record.
    seen_record = False
    for part_removals, part_records in parts:
        assert not (seen_record and part_removals)
        seen_record = seen_record or bool(part_records)
    for i, (part_removals, part_records) in enumerate(parts):
        items: list[Any] = [*part_removals, *part_records]
        assert items or len(parts) == 1
        estimate = sum(estimated_size(x) for x in items)
        # Only an item bigger than the budget on its own may exceed it, alone in its part.
        assert estimate <= budget or len(items) == 1
        message = Delta(
            site="s",
            terminal="t",
            base_seq=0,
            seq=1,
            part=i + 1,
            parts=len(parts),
            removals=tuple(part_removals),
            records=tuple(part_records),
        )
        assert len(encode(message)) <= max(budget, estimate) + 256


def test_split_parts_gives_an_oversized_item_a_part_of_its_own() -> None:
    big = _people(1)[0]
    parts = split_parts(_removals(2), [big], budget=estimated_size(big) - 1)
    assert parts[-1] == ([], [big])
    assert len(parts) == 2


# ---- events -----------------------------------------------------------------------------------------------------


def event(door: Door, person: Person, uid: str | None = None) -> EventRecord:
    return EventRecord(
        uid=uid or str(uuid.uuid4()),
        door=door.id,
        method=EntryMethod.CARD,
        decision=Decision.GRANT,
        reason="ok",
        person=person.pseudonym,
        at=utcnow(),
    )


def stored_events() -> list[AccessEvent]:
    return list(db.session.scalars(select(AccessEvent).order_by(AccessEvent.event_uid)))


def test_ingest_stores_each_event_once(world: World) -> None:
    sender = events.sender_of(db.session, world.terminals["TA"])
    first, second = event(world.doors["A"], world.people["alice"]), event(world.doors["A"], world.people["carol"])
    result = events.ingest(db.session, [(sender, [first])])
    db.session.commit()
    assert result.settled == [first.uid] and result.rejected == []
    assert [r.event_uid for r in stored_events()] == [first.uid]
    # Redelivered with a new one, and the new one twice in the same batch.
    again = events.ingest(db.session, [(sender, [first, second, second])])
    db.session.commit()
    assert sorted(set(again.settled)) == sorted([first.uid, second.uid]) and again.rejected == []
    rows = stored_events()
    assert sorted(r.event_uid for r in rows) == sorted([first.uid, second.uid])
    row = next(r for r in rows if r.event_uid == first.uid)
    assert (row.terminal_id, row.door_id, row.site_id) == (world.terminals["TA"].id, world.doors["A"].id, world.site.id)
    assert (row.person_pseudonym, row.method, row.decision, row.reason) == (
        world.people["alice"].pseudonym,
        EntryMethod.CARD,
        Decision.GRANT,
        "ok",
    )
    assert row.occurred_at == first.at


def test_ingest_refuses_events_for_doors_the_sender_does_not_serve(make_site, make_door, world: World) -> None:
    sender = events.sender_of(db.session, world.terminals["TA"])
    assert sender.doors == frozenset({world.doors["A"].id})
    foreign_door = make_door(make_site(), "Elsewhere")
    good = event(world.doors["A"], world.people["alice"])
    wrong_door = event(world.doors["B"], world.people["bob"])
    other_site = event(foreign_door, world.people["alice"])
    result = events.ingest(db.session, [(sender, [wrong_door, good, other_site])])
    db.session.commit()
    assert result.settled == [good.uid]
    assert sorted(result.rejected) == sorted([wrong_door.uid, other_site.uid])
    assert [r.event_uid for r in stored_events()] == [good.uid]


def test_ingest_keeps_the_first_sender_of_a_uid(world: World) -> None:
    ta = events.sender_of(db.session, world.terminals["TA"])
    tac = events.sender_of(db.session, world.terminals["TAC"])
    shared = event(world.doors["A"], world.people["alice"])
    result = events.ingest(db.session, [(ta, [shared]), (tac, [shared])])
    assert result.settled == [shared.uid, shared.uid]
    db.session.commit()
    (row,) = stored_events()
    assert row.terminal_id == world.terminals["TA"].id


# ---- erasure ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["withdrawn", "expired", "someone_elses", "withdrawn_earlier_today"])
def test_store_template_without_active_consent_is_refused(world: World, keys: ServerKeys, case: str) -> None:
    alice = world.people["alice"]
    now = utcnow()
    if case == "withdrawn":
        consent = give_consent(alice, withdrawn_at=now - timedelta(days=1))
    elif case == "withdrawn_earlier_today":
        consent = give_consent(alice, withdrawn_at=now - timedelta(seconds=1))
    elif case == "expired":
        consent = give_consent(alice, expires_at=now - timedelta(seconds=1))
    else:
        consent = give_consent(world.people["carol"])
    db.session.commit()
    # Missing consent is a conflict with the person's state (HTTP 409 in the APIs).
    with pytest.raises(Conflict) as info:
        face_templates.store_template(db.session, TEST_ACTOR, keys, alice, consent, MODEL, VECTOR)
    assert info.value.code == "no_consent"
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(FaceTemplate)) == 0


def test_store_template_on_a_site_with_face_off_is_refused(world: World, keys: ServerKeys) -> None:
    world.site.face_enabled = False
    db.session.commit()
    consent = give_consent(world.people["alice"])
    with pytest.raises(RuleViolation):
        face_templates.store_template(db.session, TEST_ACTOR, keys, world.people["alice"], consent, MODEL, VECTOR)


def _receipt_lines(receipt: ErasureReceipt) -> dict[int, tuple[Any, Any]]:
    db.session.refresh(receipt)
    return {c.terminal_id: (c.confirmed_by, c.confirmed_at is not None) for c in receipt.confirmations}


def _holdings() -> set[tuple[int, int]]:
    return {(t, h) for t, h in db.session.execute(select(TemplateHolding.terminal_id, TemplateHolding.template_id))}


@pytest.fixture
def deleted(world: World, keys: ServerKeys) -> tuple[World, ErasureReceipt, int]:
    """Carol's template, sent to TA and TB, then deleted: an open receipt."""
    carol = world.people["carol"]
    template = give_face(carol, keys)
    template_id = template.id
    for name in ("TA", "TB"):
        erasure.record_holdings(db.session, world.terminals[name].id, [template_id])
    db.session.commit()
    receipt = face_templates.delete_template(db.session, TEST_ACTOR, carol, template, ErasureReason.CONSENT_WITHDRAWN)
    db.session.commit()
    return world, receipt, template_id


def test_delete_template_opens_a_receipt_per_holding_terminal(deleted: tuple[World, ErasureReceipt, int]) -> None:
    world, receipt, template_id = deleted
    ta, tb = world.terminals["TA"].id, world.terminals["TB"].id
    assert db.session.get(FaceTemplate, template_id) is None
    assert receipt.template_id == template_id and receipt.person_pseudonym == world.people["carol"].pseudonym
    assert receipt.reason is ErasureReason.CONSENT_WITHDRAWN
    assert _receipt_lines(receipt) == {ta: (None, False), tb: (None, False)}
    assert not receipt.complete
    entry = journal.entries_after(db.session, world.site.id, receipt.journal_seq - 1, limit=1)[0]
    assert (entry.seq, entry.kind, entry.payload["template"]) == (
        receipt.journal_seq,
        JournalKind.TEMPLATE_DELETE,
        template_id,
    )
    # The holdings stay until each terminal confirms.
    assert _holdings() == {(ta, template_id), (tb, template_id)}


def test_confirm_items_marks_the_terminals_line_and_drops_its_holding(
    deleted: tuple[World, ErasureReceipt, int],
) -> None:
    world, receipt, template_id = deleted
    ta, tb = world.terminals["TA"].id, world.terminals["TB"].id
    erasure.confirm_items(db.session, world.terminals["TA"], [template_id])
    db.session.commit()
    assert _receipt_lines(receipt) == {ta: (ConfirmedBy.ITEM_ACK, True), tb: (None, False)}
    assert _holdings() == {(tb, template_id)}
    erasure.confirm_items(db.session, world.terminals["TB"], [template_id, 99_999])
    db.session.commit()
    assert _receipt_lines(receipt) == {ta: (ConfirmedBy.ITEM_ACK, True), tb: (ConfirmedBy.ITEM_ACK, True)}
    assert receipt.complete and _holdings() == set()


def test_confirm_items_from_a_terminal_without_a_line_adds_a_confirmed_line(
    deleted: tuple[World, ErasureReceipt, int],
) -> None:
    world, receipt, template_id = deleted
    erasure.confirm_items(db.session, world.terminals["TAC"], [template_id])
    db.session.commit()
    lines = _receipt_lines(receipt)
    assert lines[world.terminals["TAC"].id] == (ConfirmedBy.ITEM_ACK, True)
    assert lines[world.terminals["TA"].id] == (None, False)


@pytest.mark.parametrize(("offset", "confirmed"), [(-1, False), (0, True), (5, True)])
def test_confirm_through_marks_receipts_at_or_below_the_applied_sequence(
    deleted: tuple[World, ErasureReceipt, int], offset: int, confirmed: bool
) -> None:
    world, receipt, template_id = deleted
    ta, tb = world.terminals["TA"].id, world.terminals["TB"].id
    erasure.confirm_through(db.session, world.terminals["TB"], receipt.journal_seq + offset)
    db.session.commit()
    assert _receipt_lines(receipt) == {ta: (None, False), tb: (ConfirmedBy.SEQUENCE if confirmed else None, confirmed)}
    assert ((tb, template_id) in _holdings()) is not confirmed
    assert (ta, template_id) in _holdings()


def test_confirm_through_leaves_later_receipts_pending(world: World, keys: ServerKeys) -> None:
    ta = world.terminals["TA"]
    owners = [world.people["alice"], world.people["carol"]]
    templates = [give_face(person, keys) for person in owners]
    erasure.record_holdings(db.session, ta.id, [t.id for t in templates])
    db.session.commit()
    first, second = (
        face_templates.delete_template(db.session, TEST_ACTOR, person, template, ErasureReason.MANAGER)
        for person, template in zip(owners, templates, strict=True)
    )
    db.session.commit()
    assert first.journal_seq < second.journal_seq
    erasure.confirm_through(db.session, ta, first.journal_seq)
    db.session.commit()
    assert _receipt_lines(first) == {ta.id: (ConfirmedBy.SEQUENCE, True)}
    assert _receipt_lines(second) == {ta.id: (None, False)}
    assert _holdings() == {(ta.id, second.template_id)}


def test_template_ids_are_never_reused(
    world: World, keys: ServerKeys, request: pytest.FixtureRequest, db_url: str
) -> None:
    alice, carol = world.people["alice"], world.people["carol"]
    old = give_face(alice, keys)
    old_id = old.id
    face_templates.delete_template(db.session, TEST_ACTOR, alice, old, ErasureReason.CONSENT_WITHDRAWN)
    db.session.commit()
    assert give_face(carol, keys).id != old_id


def test_erasure_receipt_waits_for_every_terminal_sent_the_template(
    world: World, keys: ServerKeys, request: pytest.FixtureRequest, db_url: str
) -> None:
    ta = world.terminals["TA"]
    alice, carol = world.people["alice"], world.people["carol"]
    # Alice's template is sent to TA, then deleted; TA has not confirmed yet.
    old = give_face(alice, keys)
    erasure.record_holdings(db.session, ta.id, [old.id])
    db.session.commit()
    first = face_templates.delete_template(db.session, TEST_ACTOR, alice, old, ErasureReason.CONSENT_WITHDRAWN)
    db.session.commit()
    # Carol's new template is sent to TA as well.
    new = give_face(carol, keys)
    erasure.record_holdings(db.session, ta.id, [new.id])
    db.session.commit()
    # TA confirms Alice's deletion by sequence, then Carol's template is deleted too.
    erasure.confirm_through(db.session, ta, first.journal_seq)
    db.session.commit()
    second = face_templates.delete_template(db.session, TEST_ACTOR, carol, new, ErasureReason.CONSENT_WITHDRAWN)
    db.session.commit()
    # TA still holds Carol's template: the receipt must wait for it.
    assert _receipt_lines(second) == {ta.id: (None, False)}
    assert not second.complete


def test_record_ack_never_lowers_the_applied_sequence(deleted: tuple[World, ErasureReceipt, int]) -> None:
    world, receipt, _ = deleted
    tb = world.terminals["TB"]
    tb.applied_seq = receipt.journal_seq - 1
    db.session.commit()
    terminals.record_ack(db.session, tb, Ack(terminal=tb.ident, applied_seq=receipt.journal_seq + 3))
    db.session.commit()
    assert tb.applied_seq == receipt.journal_seq + 3
    assert tb.last_ack_at is not None
    assert _receipt_lines(receipt)[tb.id] == (ConfirmedBy.SEQUENCE, True)
    # A late ack from before is reordered after the newer one: nothing moves back.
    terminals.record_ack(db.session, tb, Ack(terminal=tb.ident, applied_seq=1))
    db.session.commit()
    db.session.refresh(tb)
    assert tb.applied_seq == receipt.journal_seq + 3


def test_record_ack_confirms_erased_templates(deleted: tuple[World, ErasureReceipt, int]) -> None:
    world, receipt, template_id = deleted
    ta = world.terminals["TA"]
    erased = (Erased(kind="person", ref=world.people["carol"].pseudonym), Erased(kind="template", ref=str(template_id)))
    # The ack names the erased template but has not yet moved past the deletion's sequence.
    assert terminals.record_ack(db.session, ta, Ack(terminal=ta.ident, applied_seq=0, erased=erased)) == list(erased)
    db.session.commit()
    assert _receipt_lines(receipt)[ta.id] == (ConfirmedBy.ITEM_ACK, True)
    assert ta.applied_seq == 0


# ---- hostile or broken input from an authenticated terminal -------------------------------------------------------
# The worker records every ack and event batch of a round in one transaction, and a terminal resends
# until it gets a receipt: an exception here rolls back the other terminals' acks and events as well,
# on every retry. What decodes must therefore be recorded, or refused, without raising.


def _decodes(message: WireModel) -> bool:
    try:
        decode(type(message), encode(message))
    except MessageError:
        return False
    return True


@pytest.mark.parametrize(
    ("ref", "broken"),
    [("p-0123456789abcdef", False), ("-1", False), ("0x10", False), ("²", True), ("9" * 30, True)],
    ids=["pseudonym", "negative", "hex", "superscript-digit", "beyond-integer-range"],
)
def test_record_ack_survives_template_refs_that_are_no_template_id(
    deleted: tuple[World, ErasureReceipt, int], request: pytest.FixtureRequest, ref: str, broken: bool
) -> None:
    world, receipt, template_id = deleted
    ta = world.terminals["TA"]
    try:
        ack = Ack(
            terminal=ta.ident,
            applied_seq=0,
            erased=(Erased(kind="template", ref=ref), Erased(kind="template", ref=str(template_id))),
        )
    except ValidationError:
        assert broken or not ref.isdigit()  # refused at the edge, as every ref that is no template id must be
        return
    terminals.record_ack(db.session, ta, ack)
    db.session.commit()
    assert _receipt_lines(receipt)[ta.id] == (ConfirmedBy.ITEM_ACK, True)


@pytest.mark.parametrize("seq", [2**31 - 1, 2**31, 2**63])
def test_record_ack_survives_any_sequence_that_decodes(
    deleted: tuple[World, ErasureReceipt, int], request: pytest.FixtureRequest, db_url: str, seq: int
) -> None:
    world, _, _ = deleted
    ta = world.terminals["TA"]
    try:
        ack = Ack(terminal=ta.ident, applied_seq=seq)
    except ValidationError:
        assert seq >= 2**31  # refused at the edge: the server's columns are 32-bit
        return
    terminals.record_ack(db.session, ta, ack)
    db.session.commit()
    db.session.refresh(ta)
    assert ta.applied_seq == seq


def _bad_event(door: Door, case: str) -> EventRecord:
    fields: dict[str, Any] = {
        "uid": str(uuid.uuid4()),
        "door": door.id,
        "method": EntryMethod.VISITOR_CODE,
        "decision": Decision.DENY,
        "reason": "unknown_pass",
        "at": utcnow(),
    }
    if case == "unknown_pass":
        fields["pass_id"] = 424_242
    elif case == "pass_beyond_integer_range":
        fields["pass_id"] = 2**40
    elif case == "time_beyond_calendar":
        fields["at"] = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=8)))
    return EventRecord(**fields)


@pytest.mark.parametrize(
    ("case", "broken"),
    [("plain", False), ("unknown_pass", False), ("pass_beyond_integer_range", True), ("time_beyond_calendar", True)],
)
def test_ingest_settles_or_refuses_every_event_that_decodes(
    world: World, request: pytest.FixtureRequest, case: str, broken: bool
) -> None:
    sender = events.sender_of(db.session, world.terminals["TA"])
    good = event(world.doors["A"], world.people["alice"])
    try:
        bad = _bad_event(world.doors["A"], case)
    except ValidationError:
        assert broken  # refused at the edge
        return
    assert _decodes(EventBatch(terminal=world.terminals["TA"].ident, events=(good, bad)))
    result = events.ingest(db.session, [(sender, [good, bad])])
    db.session.commit()
    assert good.uid in result.settled
    assert bad.uid in result.settled or bad.uid in result.rejected
    assert good.uid in {r.event_uid for r in stored_events()}
