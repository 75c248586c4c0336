"""server.services.access.door_modes: lockdown, emergency release, lifting and unlock schedules, on both databases."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from gatehouse_core.schedule import Window
from gatehouse_core.wire.records import DoorMode
from server.extensions import db
from server.link import roster
from server.link.changes import changes_in, delta_items
from server.models import AuditEntry, ConsoleRole, DoorOverride, JournalEntry, JournalKind, OverrideMode
from server.services.access import access, door_modes
from server.services.audit import Actor
from server.services.errors import NotFound, RuleViolation
from tests.conftest import TEST_ACTOR


def actor_of(make_user, role: ConsoleRole) -> Actor:
    return Actor.of(make_user(f"{role.value}1", role))


def mode_entries(site_id: int) -> list[dict]:
    rows = db.session.scalars(
        select(JournalEntry).where(JournalEntry.site_id == site_id, JournalEntry.kind == JournalKind.DOOR_POLICY)
    )
    return [e.payload for e in rows if "mode" in e.payload or "unlock_windows" in e.payload]


def test_a_guard_locks_a_door_down_with_a_reason_audited_and_journalled(make_site, make_door, make_user):
    site = make_site()
    front, back = make_door(site, "Front"), make_door(site, "Back")
    guard = actor_of(make_user, ConsoleRole.GUARD)
    batch = door_modes.start_lockdown(db.session, guard, site_id=site.id, door_ids=[front.id], reason="Intruder")
    db.session.commit()
    live = door_modes.live_overrides(db.session)
    assert [(o.batch, o.mode, o.door_ids, o.reason, o.started_by) for o in live] == [
        (batch, OverrideMode.LOCKDOWN, (front.id,), "Intruder", "guard1")
    ]
    assert mode_entries(site.id) == [{"door": front.id, "mode": "lockdown"}]
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "door.lockdown")).one()
    assert entry.details["reason"] == "Intruder" and entry.actor_label == "guard1"
    doors = roster.load_site(db.session, site).doors
    assert (doors[front.id].mode, doors[back.id].mode) == (DoorMode.LOCKDOWN, DoorMode.NORMAL)


def test_the_mode_change_reaches_terminals_as_a_delta_with_the_door_record_first(make_site, make_door):
    site = make_site()
    front = make_door(site, "Front")
    door_modes.start_emergency_release(db.session, TEST_ACTOR, site_id=site.id, reason="Fire alarm")
    db.session.commit()
    changes = changes_in([(JournalKind.DOOR_POLICY, p) for p in mode_entries(site.id)])
    scope = roster.TerminalScope(1, "t-1", site.code, frozenset({front.id}), frozenset())
    assert not changes.needs_snapshot(scope)
    removals, records = delta_items(changes, roster.load_site(db.session, site), scope, {}, {}, roster.HashOnlySealer())
    assert removals == [] and [(r.kind, r.mode) for r in records] == [("door", DoorMode.EMERGENCY_RELEASE)]


def test_a_whole_site_and_a_door_group_are_one_batch_each(make_site, make_door):
    site = make_site()
    a, b, c = (make_door(site, name) for name in ("A", "B", "C"))
    group = access.create_group(db.session, TEST_ACTOR, site, "Staff", [a, b], [Window(0, 0, 1440)])
    whole = door_modes.start_emergency_release(db.session, TEST_ACTOR, site_id=site.id, reason="Fire")
    part = door_modes.start_lockdown(db.session, TEST_ACTOR, site_id=site.id, group_id=group.id, reason="Drill")
    db.session.commit()
    live = {o.batch: o for o in door_modes.live_overrides(db.session, [site.id])}
    assert live[whole].door_ids == (a.id, b.id, c.id) and live[part].door_ids == (a.id, b.id)
    # The one started last decides each door.
    doors = roster.load_site(db.session, site).doors
    assert [doors[d.id].mode for d in (a, b, c)] == [DoorMode.LOCKDOWN, DoorMode.LOCKDOWN, DoorMode.EMERGENCY_RELEASE]


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_reason_is_required(make_site, make_door, reason):
    site = make_site()
    make_door(site)
    with pytest.raises(RuleViolation) as err:
        door_modes.start_lockdown(db.session, TEST_ACTOR, site_id=site.id, reason=reason)
    assert err.value.code == "reason_missing"


def test_a_door_of_another_site_is_not_found(make_site, make_door):
    site, other = make_site(), make_site()
    elsewhere = make_door(other)
    with pytest.raises(NotFound):
        door_modes.start_lockdown(db.session, TEST_ACTOR, site_id=site.id, door_ids=[elsewhere.id], reason="x")


def test_a_guard_may_not_lift_a_lockdown_but_may_lift_a_release(make_site, make_door, make_user):
    site = make_site()
    make_door(site)
    guard = actor_of(make_user, ConsoleRole.GUARD)
    manager = actor_of(make_user, ConsoleRole.MANAGER)
    locked = door_modes.start_lockdown(db.session, guard, site_id=site.id, reason="Intruder")
    released = door_modes.start_emergency_release(db.session, guard, site_id=site.id, reason="Fire")
    db.session.commit()
    with pytest.raises(door_modes.Forbidden):
        door_modes.lift(db.session, guard, locked, "All clear")
    door_modes.lift(db.session, guard, released, "Fire out")
    with pytest.raises(RuleViolation):
        door_modes.lift(db.session, manager, locked, "")
    door_modes.lift(db.session, manager, locked, "Police left")
    db.session.commit()
    assert door_modes.live_overrides(db.session) == []
    row = db.session.scalars(select(DoorOverride).where(DoorOverride.batch == locked)).one()
    assert (row.lifted_by, row.lift_reason) == ("manager1", "Police left")
    assert mode_entries(site.id)[-1]["mode"] == "lifted"
    assert roster.load_site(db.session, site).doors[row.door_id].mode is DoorMode.NORMAL
    with pytest.raises(NotFound):
        door_modes.lift(db.session, manager, locked, "again")


def test_guards_may_not_set_unlock_schedules(make_site, make_door, make_user):
    site = make_site()
    door = make_door(site)
    with pytest.raises(door_modes.Forbidden):
        door_modes.set_unlock_schedule(db.session, actor_of(make_user, ConsoleRole.GUARD), door, [(0, 540, 1020)])


def test_unlock_schedule_is_saved_journalled_and_sent_with_the_door(make_site, make_door):
    site = make_site()
    door = make_door(site)
    door_modes.set_unlock_schedule(db.session, TEST_ACTOR, door, [(0, 540, 1020), (1, 540, 1020)], True, False)
    db.session.commit()
    row = door_modes.unlock_schedule(db.session, door.id)
    assert row is not None and json.loads(row.windows) == [[0, 540, 1020], [1, 540, 1020]]
    record = roster.load_site(db.session, site).doors[door.id]
    assert record.unlock_windows == ((0, 540, 1020), (1, 540, 1020)) and record.first_person_in
    assert mode_entries(site.id) == [{"door": door.id, "unlock_windows": True}]
    door_modes.set_unlock_schedule(db.session, TEST_ACTOR, door, [])
    db.session.commit()
    assert door_modes.unlock_schedule(db.session, door.id) is None
    assert roster.load_site(db.session, site).doors[door.id].unlock_windows == ()


@pytest.mark.parametrize("window", [(7, 0, 60), (0, 600, 600), (0, 0, 1441), (0, 1)])
def test_bad_unlock_windows_are_refused(make_site, make_door, window):
    door = make_door(make_site())
    with pytest.raises(RuleViolation):
        door_modes.set_unlock_schedule(db.session, TEST_ACTOR, door, [window])


def test_the_door_board_and_live_screens_show_a_mode_from_start_to_lift(make_site, make_door):
    from server.services.operations import door_states, feed

    site = make_site()
    front, _back = make_door(site, "Front"), make_door(site, "Back")
    start = feed.latest_id(db.session)
    batch = door_modes.start_lockdown(db.session, TEST_ACTOR, site_id=site.id, door_ids=[front.id], reason="Intruder")
    db.session.commit()
    modes = {line.door: line.mode for line in door_states.board(db.session, [site.id])}
    assert modes == {"Front": "lockdown", "Back": None}
    started = feed.items_after(db.session, start, topics=["door.state"])
    assert [(i.ref_id, feed.payload(i)["mode"]) for i in started] == [(front.id, "lockdown")]
    release = door_modes.start_emergency_release(db.session, TEST_ACTOR, site_id=site.id, reason="Fire")
    db.session.commit()
    modes = {line.door: line.mode for line in door_states.board(db.session, [site.id])}
    assert modes == {"Front": "emergency_release", "Back": "emergency_release"}  # the one started last decides
    door_modes.lift(db.session, TEST_ACTOR, release, "Fire out")
    door_modes.lift(db.session, TEST_ACTOR, batch, "All clear")
    db.session.commit()
    assert {line.mode for line in door_states.board(db.session, [site.id])} == {None}
    last = feed.items_after(db.session, start, topics=["door.state"])[-1]
    assert last.ref_id == front.id and feed.payload(last)["mode"] is None
