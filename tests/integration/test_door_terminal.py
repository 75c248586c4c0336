"""Door terminals deciding at real doors: visitor passes across terminals over real MQTT, offline checks,
resident app codes from the server, keypad lockout alarms, and the local control socket."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from gatehouse_core import app_code
from gatehouse_core.schedule import ALWAYS
from server.extensions import db
from server.models import AccessEvent, Decision, PassStatus, VisitorPass, utcnow
from server.services.access import access
from server.services.people import credentials
from server.services.visitors import passes
from terminals import control
from terminals.inputs import CardPresented, CodeEntered, Presentation, QrScanned
from terminals.relay import SimulatedRelay
from terminals.runtime import LinkState, TerminalRuntime
from tests.conftest import TEST_ACTOR
from tests.integration.sync_rig import SyncRig, TerminalHandle, wait_for

pytestmark = pytest.mark.integration

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def estate(app, make_site, make_door, make_person):
    """A site with a front gate and a side gate, one group over both, and a host resident."""
    site = make_site()
    front = make_door(site, "Front gate")
    side = make_door(site, "Side gate")
    group = access.create_group(db.session, TEST_ACTOR, site, "Residents", [front, side], ALWAYS.windows)
    db.session.commit()
    host = make_person(site, "Host")
    access.add_member(db.session, TEST_ACTOR, group, host)
    db.session.commit()
    return {"site": site, "front": front, "side": side, "host": host}


def present(runtime: TerminalRuntime, presentation: Presentation) -> dict[str, Any]:
    return runtime.present(presentation).result(timeout=10)


def server_events(**where: Any) -> list[AccessEvent]:
    db.session.expire_all()
    stmt = select(AccessEvent).filter_by(**where).order_by(AccessEvent.id)
    found = list(db.session.scalars(stmt))
    db.session.rollback()
    return found


def held_pass(handle: TerminalHandle, pass_id: int):  # type: ignore[no-untyped-def]
    store = handle.store()
    try:
        return store.visitor_pass(pass_id)
    finally:
        store.close()


def issue(keys, estate, doors, uses: int = 1) -> passes.IssuedPass:  # type: ignore[no-untyped-def]
    now = utcnow()
    issued = passes.issue_pass(
        db.session,
        TEST_ACTOR,
        keys,
        estate["host"],
        "Visitor",
        now - timedelta(minutes=1),
        now + timedelta(hours=2),
        doors,
        uses,
    )
    db.session.commit()
    return issued


def test_single_use_pass_used_at_one_terminal_is_refused_at_another(rig: SyncRig, keys, estate) -> None:
    front, side = estate["front"], estate["side"]
    a = rig.add_terminal(estate["site"], [front], "A")
    b = rig.add_terminal(estate["site"], [side], "B")
    rig.start_worker()
    relay_a, relay_b = SimulatedRelay(), SimulatedRelay()
    runtime_a, runtime_b = a.start(relay=relay_a), b.start(relay=relay_b)
    issued = issue(keys, estate, [front, side])
    pass_id = issued.visitor_pass.id
    wait_for(lambda: held_pass(a, pass_id) is not None and held_pass(b, pass_id) is not None, what="pass on A and B")

    assert present(runtime_a, CodeEntered(front.id, issued.code))["granted"]
    assert relay_a.history and relay_a.history[0][1:] == (front.id, True)

    # A's event reaches the server, which counts the use and tells B the pass is used up.
    def used_up_on_b() -> bool:
        record = held_pass(b, pass_id)
        return record is not None and record.uses_count == 1

    wait_for(used_up_on_b, what="B to learn the pass is used up")
    db.session.expire_all()
    assert db.session.get(VisitorPass, pass_id).status is PassStatus.USED_UP

    answer = present(runtime_b, QrScanned(side.id, issued.token))
    assert not answer["granted"] and answer["message"].startswith("Not admitted")
    assert relay_b.history == []
    wait_for(lambda: len(server_events(pass_id=pass_id)) == 2, what="both events on the server")
    granted, refused = server_events(pass_id=pass_id)
    assert (granted.decision, granted.reason, granted.door_id) == (Decision.GRANT, "granted", front.id)
    assert (refused.decision, refused.reason, refused.door_id) == (Decision.DENY, "used_up", side.id)


@sqlite_only
def test_visitor_pass_is_verified_with_the_terminal_cut_off(rig: SyncRig, keys, estate, secure_broker) -> None:
    front = estate["front"]
    a = rig.add_terminal(estate["site"], [front], "A")
    rig.start_worker()
    runtime = a.start()
    wait_for(a.in_sync, what="terminal in sync")
    secure_broker.stop()
    wait_for(lambda: runtime.state is not LinkState.ONLINE, what="terminal offline")

    # Issued while the terminal cannot hear about it: the signed token alone gets the visitor in, once.
    issued = issue(keys, estate, [front])
    assert present(runtime, QrScanned(front.id, issued.token))["granted"]
    assert not present(runtime, QrScanned(front.id, issued.token))["granted"]
    assert server_events(pass_id=issued.visitor_pass.id) == []

    secure_broker.start()
    wait_for(lambda: len(server_events(pass_id=issued.visitor_pass.id)) == 2, what="offline events delivered")
    db.session.expire_all()
    assert db.session.get(VisitorPass, issued.visitor_pass.id).uses_count == 1
    reasons = [e.reason for e in server_events(pass_id=issued.visitor_pass.id)]
    assert reasons == ["granted", "used_up"]


@sqlite_only
def test_resident_app_code_from_the_server_opens_the_door(rig: SyncRig, keys, estate) -> None:
    front = estate["front"]
    a = rig.add_terminal(estate["site"], [front], "A")
    rig.start_worker()
    runtime = a.start()
    credential, seed = credentials.issue_app_code_secret(db.session, TEST_ACTOR, keys, estate["host"])
    db.session.commit()
    pseudonym = estate["host"].pseudonym
    wait_for(lambda: any(c.kind == "app_code" for c in (a.person(pseudonym) or _nobody()).credentials), what="seed")

    generator = app_code.totp(seed)
    code = generator.now()
    assert present(runtime, CodeEntered(front.id, code))["granted"]
    assert not present(runtime, CodeEntered(front.id, code))["granted"]  # replayed
    qr = app_code.AppCodeQr(credential.id, code).text()
    assert not present(runtime, QrScanned(front.id, qr))["granted"]  # the same code in a QR is a replay too
    wait_for(lambda: len(server_events(person_pseudonym=pseudonym)) == 3, what="events on the server")
    assert [e.reason for e in server_events(person_pseudonym=pseudonym)] == ["granted", "replayed", "replayed"]

    credentials.revoke(db.session, TEST_ACTOR, credential)
    db.session.commit()
    wait_for(lambda: not (a.person(pseudonym) or _nobody()).credentials, what="seed revoked on the terminal")
    later = app_code.AppCodeQr(credential.id, generator.at(utcnow() + timedelta(seconds=30))).text()
    assert not present(runtime, QrScanned(front.id, later))["granted"]


def _nobody():  # type: ignore[no-untyped-def]
    from gatehouse_core.wire.records import PersonRecord

    return PersonRecord(pseudonym="p-0000000000000000", groups=(1,))


@sqlite_only
def test_wrong_codes_raise_an_alarm_and_a_guard_clears_the_lockout(rig: SyncRig, keys, estate) -> None:
    front = estate["front"]
    a = rig.add_terminal(estate["site"], [front], "A")
    rig.start_worker()
    a.start()
    issued = issue(keys, estate, [front], uses=2)
    wait_for(lambda: held_pass(a, issued.visitor_pass.id) is not None, what="pass on the terminal")
    socket_path = a.document["control_socket"]

    wrong = [c for c in ("111111", "222222", "333333", "444444", "555555", "666666") if c != issued.code][:5]
    for code in wrong:
        assert control.send(socket_path, {"op": "code", "digits": code})["granted"] is False
    assert control.send(socket_path, {"op": "code", "digits": issued.code})["granted"] is False  # locked
    status = control.send(socket_path, {"op": "status"})
    assert status["locked_out_for_s"] > 0 and status["doors"] == [front.id] and status["link"] == "online"

    wait_for(lambda: len(server_events(decision=Decision.ALARM)) == 1, what="alarm on the server")
    alarm = server_events(decision=Decision.ALARM)[0]
    assert (alarm.reason, alarm.door_id) == ("brute_force", front.id)
    # The refusal while locked out may arrive in the batch after the alarm's.
    wait_for(
        lambda: "locked_out" in [e.reason for e in server_events(door_id=front.id, decision=Decision.DENY)],
        what="locked-out refusal on the server",
    )
    assert [e.reason for e in server_events(door_id=front.id, decision=Decision.DENY)][-1] == "locked_out"

    assert control.send(socket_path, {"op": "clear_lockout"}) == {"cleared": True}
    assert control.send(socket_path, {"op": "code", "digits": issued.code})["granted"] is True


@sqlite_only
def test_control_socket_rejects_bad_requests_clearly(rig: SyncRig, estate) -> None:
    a = rig.add_terminal(estate["site"], [estate["front"], estate["side"]], "A")
    rig.start_worker()
    a.start()
    socket_path = a.document["control_socket"]
    assert "name the" in control.send(socket_path, {"op": "card", "uid": "04A2B3C4D5E6F7"})["error"]
    assert "unknown op" in control.send(socket_path, {"op": "open_sesame", "door": 1})["error"]
    assert "needs" in control.send(socket_path, {"op": "card", "door": 1})["error"]
    answer = control.send(socket_path, {"op": "card", "door": estate["front"].id, "uid": "04A2B3C4D5E6F7"})
    assert answer == {"door": estate["front"].id, "granted": False, "message": answer["message"]}
    assert control.send(socket_path, {"op": "qr", "door": estate["front"].id, "text": "https://x"}) == {"ignored": True}


@sqlite_only
def test_cards_work_while_a_camera_driver_is_broken(rig: SyncRig, keys, estate, make_person) -> None:
    front = estate["front"]
    credentials.add_card(db.session, TEST_ACTOR, keys, estate["host"], "04A2B3C4D5E6F7")
    db.session.commit()
    a = rig.add_terminal(estate["site"], [front], "A")
    rig.start_worker()

    class BrokenCamera:
        def start(self, submit) -> None:  # type: ignore[no-untyped-def]
            raise OSError("camera unplugged")

        def stop(self) -> None:
            pass

    runtime = a.start(drivers=[BrokenCamera()])
    wait_for(a.in_sync, what="terminal in sync")
    assert present(runtime, CardPresented(front.id, "04a2b3c4d5e6f7"))["granted"]


@sqlite_only
def test_visitor_shows_the_qr_to_the_camera_and_the_door_opens(rig: SyncRig, keys, estate) -> None:
    import numpy as np
    import segno

    from terminals.drivers.qr import CameraQrReader, FrameFeed

    front = estate["front"]
    a = rig.add_terminal(estate["site"], [front], "A")
    rig.start_worker()
    feed = FrameFeed()
    relay = SimulatedRelay()
    a.start(relay=relay, drivers=[CameraQrReader(front.id, feed, stall_s=None)])
    issued = issue(keys, estate, [front])
    # Online is not yet in sync: a terminal that has not received its door policy refuses the door.
    wait_for(a.in_sync, what="terminal in sync")

    # A phone held up to the door camera: the token's QR in a 640x480 grey frame, made in memory only.
    qr = segno.make(issued.token, error="m", micro=False)
    modules = np.where(np.array(qr.matrix, dtype=bool), 0, 255).astype(np.uint8)
    code = np.kron(np.pad(modules, 4, constant_values=255), np.ones((4, 4), dtype=np.uint8))
    frame = np.full((480, 640), 100, dtype=np.uint8)
    frame[60 : 60 + code.shape[0], 150 : 150 + code.shape[1]] = code.astype(np.uint8)
    for _ in range(5):  # the same code in several frames is one presentation
        feed.push(frame)
    wait_for(lambda: relay.history[:1] and relay.history[0][1:] == (front.id, True), what="door opened by QR")
    wait_for(lambda: len(server_events(pass_id=issued.visitor_pass.id)) == 1, what="event on the server")
    event = server_events(pass_id=issued.visitor_pass.id)[0]
    assert (event.method.value, event.reason) == ("visitor_qr", "granted")
