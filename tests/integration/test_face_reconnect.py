"""A terminal returning online applies deletions before any face match: real mosquitto, real models and photos.

A template withdrawn while the terminal was away never opens the door once it is back, even with the person
at the camera from the first moment and the server slow to answer; cards work throughout; and a server that
never answers does not keep faces off for good (the terminal decides offline after `sync_wait_s`).
"""

from __future__ import annotations

import itertools
import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from gatehouse_core.face.config import FaceEngineConfig
from gatehouse_core.face.enroll import template_from_photo
from gatehouse_core.face.types import FaceModel
from gatehouse_core.schedule import ALWAYS
from gatehouse_core.wire.base import encode
from gatehouse_core.wire.messages import Birth, InSync, SnapshotPart
from gatehouse_core.wire.records import EMPTY_ROSTER_HASH
from gatehouse_core.wire.signing import verify
from gatehouse_core.wire.topics import Channel, terminal_topic
from server.extensions import db
from server.link.publisher import SyncPublisher
from server.link.worker import Worker
from server.models import AccessEvent, ConsentChannel, ErasureReason, Site
from server.services.access import access
from server.services.face import templates as face_templates
from server.services.people import credentials
from server.services.privacy import erasure
from server.services.terminals import terminals
from terminals.control import send
from terminals.drivers.qr import CameraQrReader, FrameFeed
from terminals.inputs import CardPresented
from terminals.relay import SimulatedRelay
from terminals.runtime import LinkState, TerminalRuntime
from tests.conftest import TEST_ACTOR
from tests.integration.conftest import SecureBroker
from tests.integration.sync_rig import SyncRig, TerminalHandle, wait_for
from tests.support.faces import MODEL_DIRS, door_frame, people_with, photos_of
from tests.support.privacy import consent_row

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)]

ENGINE = "insightface"
CARD = "04A2B3C4D5E6F7"
EMPTY = np.full((480, 640, 3), 90, dtype=np.uint8)


@pytest.fixture(scope="module")
def model() -> FaceModel:
    return FaceEngineConfig(engine=ENGINE, model_dir=MODEL_DIRS[ENGINE]).load()


@pytest.fixture
def estate(app, make_site, make_door, make_person, keys, model):  # type: ignore[no-untyped-def]
    """A face-enabled site with Alice, enrolled by face from her first photo, who also has a card."""
    site = make_site()
    site.face_enabled = True
    front = make_door(site, "Front gate", face=True)
    group = access.create_group(db.session, TEST_ACTOR, site, "Residents", [front], ALWAYS.windows)
    alice = make_person(site, "Alice")
    access.add_member(db.session, TEST_ACTOR, group, alice)
    credentials.add_card(db.session, TEST_ACTOR, keys, alice, CARD)
    photos = photos_of(people_with(3)[0])
    consent = consent_row(alice, ConsentChannel.CONSOLE)
    enrolled = template_from_photo(model, photos[0].read_bytes())
    face_templates.store_template(
        db.session, TEST_ACTOR, keys, alice, consent, enrolled.model_id, enrolled.template_bytes()
    )
    db.session.commit()
    frames = [door_frame(photos[1], shift=(i % 4, -(i % 4)), seed=i) for i in range(8)]
    return {"site": site, "front": front, "alice": alice, "frames": frames}


class Camera:
    """Alice standing at the door camera, frame after frame, until told to step away."""

    def __init__(self, feed: FrameFeed, frames: list[Any]) -> None:
        self.feed = feed
        self.frames = frames
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Camera:
        self._stop.clear()
        self._thread = threading.Thread(target=self._show, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        for _ in range(6):  # nobody at the door: the presentation ends
            self.feed.push(EMPTY)
            self._stop.wait(0.08)

    def _show(self) -> None:
        for frame in itertools.cycle(self.frames):
            if self._stop.is_set():
                return
            self.feed.push(frame)
            self._stop.wait(0.08)


def start_face_terminal(
    rig: SyncRig, estate: dict[str, Any], sync_wait_s: float
) -> tuple[TerminalHandle, TerminalRuntime, FrameFeed]:
    """Worker and terminal started, Alice's template in the gallery, and the hold after start released."""
    front = estate["front"]
    door = front.id  # read now: the camera thread has no database session
    handle = rig.add_terminal(estate["site"], [front], "A")
    handle.document["cameras"] = [{"door": door, "device": 0}]
    handle.document["face"] = {
        "engine": ENGINE,
        "model_dir": str(MODEL_DIRS[ENGINE]),
        "presence_gap_s": 0.3,
        "sync_wait_s": sync_wait_s,
    }
    feed = FrameFeed()
    runtime_of: dict[str, TerminalRuntime] = {}

    def look(frame):  # type: ignore[no-untyped-def]
        faces = runtime_of["runtime"].faces
        assert faces is not None
        return faces.look(door, frame)

    reader = CameraQrReader(door, feed, fps_limit=50, stall_s=None, face=look, qr=False)
    rig.start_worker()
    runtime = handle.start(relay=SimulatedRelay(), drivers=[reader])
    runtime_of["runtime"] = runtime
    wait_for(handle.in_sync, what="terminal in sync")
    assert runtime.faces is not None and runtime.faces.wait_ready(60), runtime.faces
    wait_for(lambda: face_status(handle)["templates"] == 1, what="Alice's template in the gallery")
    wait_for(lambda: not face_status(handle)["held"], what="face matching released after start")
    return handle, runtime, feed


def face_status(handle: TerminalHandle) -> dict[str, Any]:
    """The "face" part of the terminal's control status."""
    status: dict[str, Any] = send(Path(handle.document["control_socket"]), {"op": "status"})["face"]
    return status


def opened(runtime: TerminalRuntime, door: int) -> int:
    """How often the door's relay has opened."""
    relay = runtime.relay
    assert isinstance(relay, SimulatedRelay)
    return sum(1 for _, d, unlocked in relay.history if d == door and unlocked)


def terminal_face_events(handle: TerminalHandle) -> dict[str, tuple[str, str]]:
    """Event uid → (decision, reason) of the face decisions still in the terminal's outbox."""
    store = handle.store()
    try:
        return {e.uid: (e.decision.value, e.reason) for e in store.pending_events(1000) if e.method.value == "face"}
    finally:
        store.close()


def server_face_events() -> dict[str, tuple[str, str]]:
    """Event uid → (decision, reason) of the face events the server has stored."""
    db.session.expire_all()
    stored = db.session.scalars(select(AccessEvent).filter_by(method="face"))
    found = {e.event_uid: (e.decision.value, e.reason) for e in stored}
    db.session.rollback()
    return found


def face_decisions(handle: TerminalHandle) -> list[tuple[str, str]]:
    """Every face decision of the terminal, whether the server has it yet or not (each once)."""
    return list({**server_face_events(), **terminal_face_events(handle)}.values())


def test_template_withdrawn_while_offline_never_opens_after_reconnect(
    rig: SyncRig, estate: dict[str, Any], secure_broker: SecureBroker
) -> None:
    # A long wait: this test's server answers late on purpose, and the hold must outlast that.
    handle, runtime, feed = start_face_terminal(rig, estate, sync_wait_s=120)
    front, alice = estate["front"].id, estate["alice"]

    with Camera(feed, estate["frames"]):
        wait_for(lambda: opened(runtime, front) == 1, what="Alice admitted by face")
    wait_for(lambda: face_decisions(handle) == [("grant", "granted")], what="the grant recorded")

    # The site network goes down; the server's worker is down too, so it answers late once the terminal is back.
    secure_broker.stop()
    wait_for(lambda: runtime.state is LinkState.OFFLINE, what="terminal offline")
    rig.stop_workers()

    # Alice withdraws her consent while the terminal is away: her template is deleted on the server.
    db.session.refresh(alice)
    face_templates.delete_template(
        db.session, TEST_ACTOR, alice, alice.face_templates[0], ErasureReason.CONSENT_WITHDRAWN
    )
    db.session.commit()

    secure_broker.start()
    wait_for(lambda: runtime.state is LinkState.ONLINE, timeout=60, what="terminal back online")
    with Camera(feed, estate["frames"]):  # Alice at the camera from the moment the terminal is back
        status = face_status(handle)
        assert status["held"] is True and status["held_for_s"] >= 0
        # Her card opens the door while face matching waits.
        assert runtime.present(CardPresented(front, CARD.lower())).result(timeout=10)["granted"] is True
        assert opened(runtime, front) == 2
        assert face_status(handle)["held"] is True

        rig.start_worker()
        wait_for(lambda: not face_status(handle)["held"], what="the hold released by the server's InSync")
        assert face_status(handle)["templates"] == 0
        record = handle.person(alice.pseudonym)
        assert record is not None and record.templates == ()
        # Still at the camera: now looked at, and refused, against the roster without her template.
        wait_for(
            lambda: opened(runtime, front) > 2 or ("deny", "unknown") in face_decisions(handle),
            what="Alice's face refused once matching resumed",
        )
    assert opened(runtime, front) == 2, "the withdrawn face opened the door"  # the first face grant and the card
    faces = face_decisions(handle)
    assert faces.count(("grant", "granted")) == 1, faces

    def receipt_complete() -> bool:
        db.session.expire_all()
        receipts = erasure.receipts_of_person(db.session, alice.id)
        done = (
            len(receipts) == 1
            and receipts[0].complete
            and [(c.terminal_id, c.confirmed_at is not None) for c in receipts[0].confirmations] == [(handle.id, True)]
        )
        db.session.rollback()
        return done

    wait_for(receipt_complete, what="erasure receipt completed by the terminal")
    handle.stop()


def test_without_an_answer_face_matching_resumes_after_the_wait(
    rig: SyncRig, estate: dict[str, Any], secure_broker: SecureBroker, caplog: pytest.LogCaptureFixture
) -> None:
    handle, runtime, feed = start_face_terminal(rig, estate, sync_wait_s=1.5)
    front = estate["front"].id
    # The worker is gone for good: nobody will ever answer the terminal's birth.
    rig.stop_workers()
    with caplog.at_level(logging.WARNING, logger="terminals.sync_apply"):
        secure_broker.restart()
        wait_for(lambda: runtime.state is LinkState.OFFLINE, what="terminal offline")
        wait_for(lambda: runtime.state is LinkState.ONLINE, timeout=60, what="terminal back online")
        with Camera(feed, estate["frames"]):
            wait_for(lambda: opened(runtime, front) == 1, what="Alice admitted by face, deciding offline")
    assert "no answer from the server" in caplog.text
    # The door opens before the event is written; nobody takes it from the outbox.
    wait_for(lambda: list(terminal_face_events(handle).values()) == [("grant", "granted")], what="the grant kept")
    handle.stop()


# ---- the worker's InSync, with the publisher's output captured --------------------------------------------------


class Published:
    """What paho's publish returns, already acknowledged."""

    def wait_for_publish(self, timeout: float | None = None) -> None:
        return None

    def is_published(self) -> bool:
        return True


@pytest.fixture
def captured(app, keys, make_site, make_door, make_person):  # type: ignore[no-untyped-def]
    """A worker whose publishing is recorded, a terminal of a site with one resident, and the sync topic."""
    site = make_site()
    door = make_door(site)
    group = access.create_group(db.session, TEST_ACTOR, site, "Residents", [door], ALWAYS.windows)
    access.add_member(db.session, TEST_ACTOR, group, make_person(site, "Alice"))
    made = terminals.provision_terminal(db.session, TEST_ACTOR, site, "A", [door])
    db.session.commit()
    sent: list[tuple[str, bytes]] = []

    def publish(topic: str, payload: bytes) -> Published:
        sent.append((topic, payload))
        return Published()

    worker = Worker(app)
    worker.publisher = SyncPublisher(keys, publish)
    worker.connected.set()
    return worker, sent, site.code, made.terminal.ident


def birth(ident: str, nonce: str | None) -> Birth:
    return Birth(terminal=ident, applied_seq=0, roster_hash=EMPTY_ROSTER_HASH, software="t", nonce=nonce)


def on_sync(keys: Any, sent: list[tuple[str, bytes]], topic: str) -> list[str]:
    """Types of the messages published on a sync topic, each verified."""
    types = []
    for t, payload in sent:
        assert t == topic
        body = verify(keys.signing_key.public_key(), topic, payload)
        types.append(body.split(b'"type":"', 1)[1].split(b'"', 1)[0].decode())
    return types


def answer(worker: Worker, topic: str, payload: bytes) -> None:
    """Handle one message as the worker's loop does: then its snapshot turns until no stream is left."""
    worker.dispatch(topic, payload)
    while worker.publisher.advance_snapshots(db.session):
        pass


def test_insync_follows_the_answer_to_a_birth_with_a_nonce(captured, keys) -> None:  # type: ignore[no-untyped-def]
    worker, sent, site, ident = captured
    topic = terminal_topic(site, ident, Channel.SYNC)
    nonce = "a1" * 16
    answer(worker, terminal_topic(site, ident, Channel.BIRTH), encode(birth(ident, nonce)))
    assert on_sync(keys, sent, topic) == ["snapshot", "in_sync"]
    head = db.session.scalar(select(Site.journal_seq).where(Site.code == site))
    last = InSync.model_validate_json(verify(keys.signing_key.public_key(), topic, sent[-1][1]))
    snapshot = SnapshotPart.model_validate_json(verify(keys.signing_key.public_key(), topic, sent[0][1]))
    assert (last.seq, last.nonce, last.site, last.terminal) == (head, nonce, site, ident)
    assert snapshot.seq == head

    # The same birth again at once, from a new connection: the snapshot on its way is not sent twice,
    # but the new connection gets its own InSync.
    sent.clear()
    answer(worker, terminal_topic(site, ident, Channel.BIRTH), encode(birth(ident, "b2" * 16)))
    assert on_sync(keys, sent, topic) == ["in_sync"]
    again = InSync.model_validate_json(verify(keys.signing_key.public_key(), topic, sent[0][1]))
    assert (again.seq, again.nonce) == (head, "b2" * 16)


def test_a_birth_without_a_nonce_is_answered_as_before(captured, keys) -> None:  # type: ignore[no-untyped-def]
    worker, sent, site, ident = captured
    topic = terminal_topic(site, ident, Channel.SYNC)
    for _ in range(2):  # answered every time, even repeated at once: it cannot tell a lost answer
        sent.clear()
        answer(worker, terminal_topic(site, ident, Channel.BIRTH), encode(birth(ident, None)))
        assert on_sync(keys, sent, topic) == ["snapshot"]


def test_a_worker_without_the_broker_sends_nothing(captured) -> None:  # type: ignore[no-untyped-def]
    worker, sent, site, ident = captured
    worker.connected.clear()
    worker.dispatch(terminal_topic(site, ident, Channel.BIRTH), encode(birth(ident, "c3" * 16)))
    assert sent == []
