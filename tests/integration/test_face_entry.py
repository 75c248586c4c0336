"""Face entry end to end with the real models and real photos: enrolled on the server, synced over real
MQTT, matched at the terminal from camera frames; strangers, people in the background, frozen frames and
withdrawn templates never open the door, and a failed face leaves card entry exactly as it was."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gatehouse_core.face.config import FaceEngineConfig
from gatehouse_core.face.enroll import template_from_photo
from gatehouse_core.face.types import FaceModel
from gatehouse_core.schedule import ALWAYS
from server.extensions import db
from server.models import AccessEvent, ConsentChannel, ErasureReceipt
from server.services.access import access
from server.services.face import consent
from server.services.face import enrollment as face_enrollment
from server.services.face import templates as face_templates
from server.services.people import credentials
from server.services.privacy import privacy
from terminals.drivers.qr import CameraQrReader, FrameFeed
from terminals.inputs import CardPresented
from terminals.relay import SimulatedRelay
from terminals.runtime import TerminalRuntime
from tests.conftest import TEST_ACTOR
from tests.integration.sync_rig import SyncRig, TerminalHandle, wait_for
from tests.support.faces import MODEL_DIRS, background_frame, door_frame, images_in, people_with, photos_of
from tests.support.privacy import consent_row, give_consent, notice_fields

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)]

ENGINE = "insightface"
CARD = "04A2B3C4D5E6F7"
ALICE_CARD = "04A2B3C4D5E6F8"


@pytest.fixture(scope="module")
def model() -> FaceModel:
    return FaceEngineConfig(engine=ENGINE, model_dir=MODEL_DIRS[ENGINE]).load()


@pytest.fixture
def estate(app, make_site, make_door, make_person, keys, model):  # type: ignore[no-untyped-def]
    """A face-enabled site: Alice enrolled from her first photo; Bob, who declined face, with a card."""
    site = make_site()
    site.face_enabled = True
    front = make_door(site, "Front gate", face=True)
    group = access.create_group(db.session, TEST_ACTOR, site, "Residents", [front], ALWAYS.windows)
    alice = make_person(site, "Alice")
    bob = make_person(site, "Bob")
    for person in (alice, bob):
        access.add_member(db.session, TEST_ACTOR, group, person)
    credentials.add_card(db.session, TEST_ACTOR, keys, bob, CARD)
    names = people_with(3)
    alice_photos, bob_photos, stranger_photos = photos_of(names[0]), photos_of(names[1]), photos_of(names[2])
    consent = consent_row(alice, ConsentChannel.CONSOLE)
    enrolled = template_from_photo(model, alice_photos[0].read_bytes())
    face_templates.store_template(
        db.session, TEST_ACTOR, keys, alice, consent, enrolled.model_id, enrolled.template_bytes()
    )
    db.session.commit()
    return {
        "site": site,
        "front": front,
        "alice": alice,
        "bob": bob,
        "alice_photos": alice_photos,
        "bob_photos": bob_photos,
        "stranger_photos": stranger_photos,
    }


def start_face_terminal(rig: SyncRig, estate: dict[str, Any]) -> tuple[TerminalHandle, TerminalRuntime, FrameFeed]:
    return start_face_terminal_with(rig, estate, templates=1)


def start_face_terminal_with(
    rig: SyncRig, estate: dict[str, Any], templates: int
) -> tuple[TerminalHandle, TerminalRuntime, FrameFeed]:
    front = estate["front"]
    door = front.id
    handle = rig.add_terminal(estate["site"], [front], "A")
    handle.document["cameras"] = [{"door": door, "device": 0}]
    handle.document["face"] = {"engine": ENGINE, "model_dir": str(MODEL_DIRS[ENGINE]), "presence_gap_s": 0.3}
    feed = FrameFeed()
    runtime_of: dict[str, TerminalRuntime] = {}

    def look(frame):  # type: ignore[no-untyped-def]
        faces = runtime_of["runtime"].faces
        assert faces is not None
        return faces.look(door, frame)

    relay = SimulatedRelay()
    reader = CameraQrReader(door, feed, fps_limit=50, stall_s=None, face=look, qr=False)
    rig.start_worker()
    runtime = handle.start(relay=relay, drivers=[reader])
    runtime_of["runtime"] = runtime
    wait_for(handle.in_sync, what="terminal in sync")
    assert runtime.faces is not None
    assert runtime.faces.wait_ready(60), runtime.faces.status()
    wait_for(
        lambda: runtime.faces is not None and runtime.faces.status().get("templates") == templates, what="templates"
    )
    return handle, runtime, feed


def show(feed: FrameFeed, frames: list[Any], gap_s: float = 0.08) -> None:
    """Hold frames up to the camera one after another, as a person standing at the door."""
    for frame in frames:
        feed.push(frame)
        time.sleep(gap_s)


def face_events() -> list[AccessEvent]:
    db.session.expire_all()
    found = list(db.session.scalars(select(AccessEvent).filter_by(method="face").order_by(AccessEvent.id)))
    db.session.rollback()
    return found


def walk_away(feed: FrameFeed) -> None:
    show(feed, [door_frame_empty()] * 6)


def door_frame_empty():  # type: ignore[no-untyped-def]
    import numpy as np

    return np.full((480, 640, 3), 90, dtype=np.uint8)


def test_enrolled_resident_is_let_in_by_face_and_others_are_not(rig: SyncRig, estate) -> None:
    handle, runtime, feed = start_face_terminal(rig, estate)
    relay = runtime.relay
    assert isinstance(relay, SimulatedRelay)
    front = estate["front"].id

    # Alice, from a photo other than the one she enrolled with, standing at the door.
    frames = [door_frame(estate["alice_photos"][1], shift=(i, -i), seed=i) for i in range(4)]
    show(feed, frames)
    wait_for(lambda: any(h[1:] == (front, True) for h in relay.history), what="door opened for Alice")
    wait_for(lambda: len(face_events()) == 1, what="face event on the server")
    event = face_events()[0]
    assert (event.reason, event.person_pseudonym) == ("granted", estate["alice"].pseudonym)
    walk_away(feed)

    # A stranger: refused once for the presentation (not once per frame), and nothing opens.
    opened = len([h for h in relay.history if h[2]])
    show(feed, [door_frame(estate["stranger_photos"][0], shift=(i, i), seed=10 + i) for i in range(8)])
    wait_for(lambda: len(face_events()) == 2, what="stranger's refusal on the server")
    assert face_events()[1].reason == "unknown"
    walk_away(feed)

    # Someone far behind the door is never processed: no event at all.
    show(feed, [background_frame(estate["alice_photos"][1])] * 6)
    walk_away(feed)
    time.sleep(0.5)
    assert len(face_events()) == 2
    assert len([h for h in relay.history if h[2]]) == opened
    handle.stop()


def test_face_failure_falls_back_to_card_and_a_frozen_frame_is_refused(rig: SyncRig, estate) -> None:
    handle, runtime, feed = start_face_terminal(rig, estate)
    front = estate["front"].id

    # Bob declined face: his face fails once for the presentation, and his card opens the door at once.
    show(feed, [door_frame(estate["bob_photos"][0], shift=(i, 0), seed=i) for i in range(6)])
    wait_for(lambda: len(face_events()) == 1, what="Bob's face refused")
    reply = runtime.present(CardPresented(front, CARD.lower())).result(timeout=10)
    assert reply["granted"] is True

    walk_away(feed)
    # Alice's photo held perfectly still (a replayed frame): the PAD check refuses it.
    frozen = door_frame(estate["alice_photos"][1])
    show(feed, [frozen] * 6)
    wait_for(lambda: len(face_events()) == 2, what="frozen presentation refused")
    assert face_events()[1].reason == "unknown"
    handle.stop()


def test_withdrawn_template_leaves_the_terminal_and_no_longer_opens(rig: SyncRig, estate, keys) -> None:
    handle, runtime, feed = start_face_terminal(rig, estate)
    front = estate["front"].id
    alice = estate["alice"]
    db.session.refresh(alice)
    # Alice withdraws at the desk: one call erases her template on the server and queues it to the terminal.
    receipts = consent.withdraw_consent(db.session, TEST_ACTOR, alice, ConsentChannel.DESK)
    db.session.commit()
    assert len(receipts) == 1 and alice.face_templates == []
    receipt_id = receipts[0].id
    wait_for(lambda: runtime.faces is not None and runtime.faces.status()["templates"] == 0, what="gallery emptied")
    record = handle.person(alice.pseudonym)
    assert record is not None and record.templates == ()

    def receipt_complete() -> bool:
        db.session.expire_all()
        receipt = db.session.get(ErasureReceipt, receipt_id)
        done = receipt is not None and receipt.complete and len(receipt.confirmations) == 1
        db.session.rollback()
        return done

    wait_for(receipt_complete, what="erasure receipt complete")
    receipt = db.session.get(ErasureReceipt, receipt_id)
    assert receipt is not None and receipt.confirmations[0].terminal_id == handle.id
    show(feed, [door_frame(estate["alice_photos"][1], shift=(i, -i), seed=i) for i in range(6)])
    wait_for(lambda: len(face_events()) == 1, what="refusal on the server")
    assert face_events()[0].reason == "unknown"
    relay = runtime.relay
    assert isinstance(relay, SimulatedRelay)
    assert not any(h[1:] == (front, True) for h in relay.history)
    handle.stop()


def test_stale_notice_suspends_face_until_renewed_while_card_works(rig: SyncRig, estate, keys) -> None:
    handle, runtime, feed = start_face_terminal(rig, estate)
    front = estate["front"].id
    site, alice = estate["site"], estate["alice"]
    credentials.add_card(db.session, TEST_ACTOR, keys, alice, ALICE_CARD)
    # A new notice version: Alice's consent covered the old text, so face stops for her until she renews.
    privacy.publish_notice(db.session, TEST_ACTOR, site, notice_fields(retention="Until you withdraw or move out."))
    db.session.commit()
    wait_for(lambda: runtime.faces is not None and runtime.faces.status()["templates"] == 0, what="face suspended")
    db.session.refresh(alice)
    assert len(alice.face_templates) == 1  # suspended, not erased: kept on the server until she decides
    relay = runtime.relay
    assert isinstance(relay, SimulatedRelay)

    show(feed, [door_frame(estate["alice_photos"][1], shift=(i, -i), seed=i) for i in range(6)])
    wait_for(lambda: len(face_events()) == 1, what="face refused under the stale notice")
    assert face_events()[0].reason == "unknown"
    assert not any(h[1:] == (front, True) for h in relay.history)
    wait_for(lambda: handle.person(alice.pseudonym) is not None, what="card on the terminal")
    wait_for(
        lambda: bool((r := handle.person(alice.pseudonym)) and r.credentials), what="Alice's card reached the terminal"
    )
    assert runtime.present(CardPresented(front, ALICE_CARD.lower())).result(timeout=10)["granted"] is True
    walk_away(feed)

    # She reads the new notice and renews: the same template is in use again, no new photo needed.
    give_consent(alice, ConsentChannel.DESK)
    wait_for(lambda: runtime.faces is not None and runtime.faces.status()["templates"] == 1, what="face resumed")
    show(feed, [door_frame(estate["alice_photos"][2], shift=(i, i), seed=20 + i) for i in range(6)])
    wait_for(lambda: len(face_events()) == 2, what="face decision after renewal")
    assert face_events()[1].reason == "granted"
    handle.stop()


def test_no_photo_or_frame_reaches_any_disk(rig: SyncRig, estate, keys, model, key_dir, db_url) -> None:
    """Enrolled from a real photo, matched from camera frames: no image and no frame bytes in any file."""
    bob = estate["bob"]  # Bob changes his mind and enrolls from a photo at the desk
    photo = estate["bob_photos"][0].read_bytes()
    give_consent(bob, ConsentChannel.DESK)
    face_enrollment.enroll_photo(db.session, TEST_ACTOR, keys, model, bob, bob.consents[-1], photo)
    db.session.commit()
    handle, _runtime, feed = start_face_terminal_with(rig, estate, templates=2)
    frames = [door_frame(estate["bob_photos"][1], shift=(i, -i), seed=i) for i in range(4)]
    show(feed, frames)
    wait_for(lambda: any(e.reason == "granted" for e in face_events()), what="Bob let in by face")
    handle.stop()
    db.session.remove()
    db.engine.dispose()

    database = Path(db_url.removeprefix("sqlite:///"))
    files = [p for root in (rig.base, key_dir, database.parent) for p in root.rglob("*") if p.is_file()]
    assert any(p.name == "terminal.db" for p in files) and database in files
    photo_chunks = [photo[start : start + 48] for start in range(100, len(photo) - 48, 997)]
    frame_chunks = [f.tobytes()[start : start + 64] for f in frames for start in range(50_000, 900_000, 99_991)]
    for path in files:
        data = path.read_bytes()
        assert images_in(data) == [], f"an image signature in {path}"
        assert not any(chunk in data for chunk in photo_chunks), f"photo bytes in {path}"
        assert not any(chunk in data for chunk in frame_chunks), f"camera frame bytes in {path}"
