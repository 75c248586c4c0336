"""terminals.door_modes and lockdown decisions: what a door's mode and unlock schedule ask of its lock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gatehouse_core.wire.records import DoorMode, DoorRecord, fingerprint
from terminals import door_modes
from terminals.decision import Reason
from terminals.door_state import DoorMachine
from terminals.doors import DoorController
from terminals.inputs import CardPresented, CodeEntered, FaceAttempt, IdEntered, QrScanned
from terminals.relay import SimulatedRelay
from terminals.supervision import DoorSupervisor
from tests.terminal.test_decision import (
    ALICE,
    ALICE_CARD,
    ALICE_ID,
    BOB_CARD,
    FRONT,
    NOW,
    Rig,
    claims,
    door,
    person,
)
from tests.terminal.test_decision import rig as decision_rig  # noqa: F401  (a fixture)

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY_9_TO_5 = ((0, 540, 1020),)


@pytest.fixture
def rig(decision_rig: Rig) -> Rig:  # noqa: F811  (the imported fixture)
    """test_decision's terminal store and engine."""
    return decision_rig


def scheduled(**kw: object) -> DoorRecord:
    return DoorRecord.model_validate({**door(FRONT).model_dump(), "unlock_windows": MONDAY_9_TO_5, **kw})


def lockdown(rig: Rig) -> None:
    rig.apply(DoorRecord.model_validate({**door(FRONT).model_dump(), "mode": DoorMode.LOCKDOWN}))


def make_alice_staff(rig: Rig) -> None:
    record = rig.store.person(ALICE)
    assert record is not None
    rig.apply(record.model_copy(update={"person_kind": "staff"}))


# ---- lockdown decisions -------------------------------------------------------------------------------------


def test_lockdown_refuses_a_residents_card_and_admits_a_staff_card(rig: Rig) -> None:
    make_alice_staff(rig)
    assert rig.decide(CardPresented(FRONT, BOB_CARD)).granted
    lockdown(rig)
    refused = rig.decide(CardPresented(FRONT, BOB_CARD))
    assert (refused.granted, refused.reason) == (False, Reason.LOCKDOWN)
    assert rig.store.pending_events(10)[-1].reason == "lockdown"  # still logged
    admitted = rig.decide(CardPresented(FRONT, ALICE_CARD))
    assert admitted.granted and admitted.person == ALICE
    assert rig.decide(IdEntered(FRONT, ALICE_ID)).granted


def test_lockdown_refuses_face_codes_and_passes_even_for_staff(rig: Rig) -> None:
    make_alice_staff(rig)
    lockdown(rig)
    assert rig.decide(FaceAttempt(FRONT, ALICE, 0.9, 77)).reason is Reason.LOCKDOWN
    assert rig.decide(CodeEntered(FRONT, rig.code(NOW))).reason is Reason.LOCKDOWN
    assert rig.decide(QrScanned(FRONT, rig.token(claims(doors=(FRONT,))))).reason is Reason.LOCKDOWN
    assert rig.decide(CodeEntered(FRONT, "12345678")).reason is Reason.LOCKDOWN


def test_lockdown_keeps_the_staff_members_own_permissions(rig: Rig) -> None:
    keys = (rig.credential_key, rig.seal_key)
    rig.apply(person(keys, ALICE, ALICE_CARD, groups=(20,)).model_copy(update={"person_kind": "staff"}))
    lockdown(rig)
    assert rig.decide(CardPresented(FRONT, ALICE_CARD)).reason is Reason.WRONG_DOOR


def test_lifting_a_lockdown_admits_residents_again(rig: Rig) -> None:
    lockdown(rig)
    assert not rig.decide(CardPresented(FRONT, BOB_CARD)).granted
    rig.apply(door(FRONT))
    assert rig.decide(CardPresented(FRONT, BOB_CARD)).granted


# ---- what the lock is held in -------------------------------------------------------------------------------


def test_emergency_release_holds_unlocked_and_lockdown_never_does() -> None:
    base = door(FRONT)
    released = base.model_copy(update={"mode": DoorMode.EMERGENCY_RELEASE})
    locked = DoorRecord.model_validate({**scheduled().model_dump(), "mode": DoorMode.LOCKDOWN})
    monday_noon = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
    assert door_modes.desired(released, monday_noon, BERLIN) == door_modes.Hold(True, "emergency_release")
    assert not door_modes.desired(locked, monday_noon, BERLIN).unlocked
    assert not door_modes.desired(base, monday_noon, BERLIN).unlocked


@pytest.mark.parametrize(
    ("utc", "unlocked"),
    [
        # Winter (CET, UTC+1): the Monday 09:00-17:00 window is 08:00-16:00 UTC.
        (datetime(2026, 11, 23, 7, 59, tzinfo=UTC), False),
        (datetime(2026, 11, 23, 8, 0, tzinfo=UTC), True),
        (datetime(2026, 11, 23, 15, 59, tzinfo=UTC), True),
        (datetime(2026, 11, 23, 16, 0, tzinfo=UTC), False),
        # Summer (CEST, UTC+2), Monday 30 March 2026: 07:00-15:00 UTC.
        (datetime(2026, 3, 30, 6, 59, tzinfo=UTC), False),
        (datetime(2026, 3, 30, 7, 0, tzinfo=UTC), True),
        (datetime(2026, 3, 30, 14, 59, tzinfo=UTC), True),
        (datetime(2026, 3, 30, 15, 0, tzinfo=UTC), False),
        # A Tuesday.
        (datetime(2026, 11, 24, 10, 0, tzinfo=UTC), False),
    ],
)
def test_unlock_window_follows_the_sites_wall_clock(utc: datetime, unlocked: bool) -> None:
    hold = door_modes.desired(scheduled(), utc, BERLIN)
    assert hold.unlocked is unlocked
    assert hold.mode == ("scheduled_unlock" if unlocked else "normal")


def test_holidays_keep_the_door_locked_unless_it_opens_on_them() -> None:
    holiday = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    holidays = {date(2026, 11, 23)}
    assert not door_modes.desired(scheduled(), holiday, BERLIN, holidays).unlocked
    assert door_modes.desired(scheduled(unlock_on_holidays=True), holiday, BERLIN, holidays).unlocked


def test_first_person_in_waits_for_a_grant_in_the_same_window() -> None:
    record = scheduled(first_person_in=True)
    monday = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    waiting = door_modes.desired(record, monday, BERLIN)
    assert not waiting.unlocked and waiting.window == "2026-11-23@540"
    assert door_modes.desired(record, monday, BERLIN, first_in=waiting.window).unlocked
    # A week later it is a new window: someone must be let in again.
    assert not door_modes.desired(record, monday + timedelta(days=7), BERLIN, first_in=waiting.window).unlocked
    # The window's end relocks it.
    assert not door_modes.desired(record, monday + timedelta(hours=6), BERLIN, first_in=waiting.window).unlocked


# ---- the lock and the door's supervised state ---------------------------------------------------------------


def test_a_held_door_stays_unlocked_through_pulses_and_relocks_when_released() -> None:
    relay = SimulatedRelay(clock=lambda: 0.0)
    changes: list[tuple[int, bool]] = []
    doors = DoorController(relay, 3.0, lambda d, u, _: changes.append((d, u)))
    doors.hold(FRONT, True, 0.0)
    doors.open(FRONT, 1.0)  # a grant while held: no extra switching
    doors.tick(10.0)  # the pulse ends, the hold does not
    assert doors.held(FRONT) and doors.state(FRONT).value == "unlocked"
    assert [(d, u) for _, d, u in relay.history] == [(FRONT, True)]
    doors.hold(FRONT, False, 11.0)
    assert [(d, u) for _, d, u in relay.history] == [(FRONT, True), (FRONT, False)]
    assert changes == [(FRONT, True), (FRONT, False)]


def test_release_during_a_pulse_lets_the_pulse_run_out() -> None:
    relay = SimulatedRelay(clock=lambda: 0.0)
    doors = DoorController(relay, 3.0)
    doors.hold(FRONT, True, 0.0)
    doors.open(FRONT, 1.0)
    doors.hold(FRONT, False, 2.0)
    assert doors.state(FRONT).value == "unlocked"
    doors.tick(4.0)
    assert doors.state(FRONT).value == "locked"


def test_a_held_door_opened_is_not_forced_nor_held_open_until_the_hold_ends() -> None:
    machine = DoorMachine(30.0, 0.0)
    machine.lock_released(0.0)
    machine.set_held(True, 0.0)
    assert machine.contact(True, 1.0) is not None and machine.state.value == "open"
    assert machine.tick(1000.0) is None
    machine.set_held(False, 1000.0)
    machine.lock_engaged(1000.0)
    assert machine.tick(1010.0) is None
    change = machine.tick(1030.0)
    assert change is not None and change.alarm == "door_held_open"


# ---- the wire ---------------------------------------------------------------------------------------------------


def test_a_door_without_mode_or_schedule_encodes_and_hashes_as_before() -> None:
    plain = door(FRONT)
    assert plain.model_dump_json() == (
        '{"kind":"door","id":1,"face":true,"card":true,"id_document":true,"app_code":true}'
    )
    assert fingerprint(plain) != fingerprint(plain.model_copy(update={"mode": DoorMode.LOCKDOWN}))
    assert DoorRecord.model_validate_json(scheduled(first_person_in=True).model_dump_json()).first_person_in


def test_the_published_door_states_carry_each_doors_mode() -> None:
    supervisor = DoorSupervisor("t-1", {FRONT: 30.0}, 0.0)
    supervisor.set_mode(FRONT, "emergency_release", True, 1.0)
    assert supervisor.changed
    (status,) = supervisor.message().doors
    assert status.mode == "emergency_release"
