"""Face matching held after start and every reconnect until the server's InSync: the hold, the cameras, the loop."""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gatehouse_core.configfile import parse_config
from gatehouse_core.credential_hash import hash_card
from gatehouse_core.face.calibration import ImpostorScores, ThresholdPolicy
from gatehouse_core.face.gallery import Gallery
from gatehouse_core.face.pad import AcceptAll
from gatehouse_core.face.types import Detection
from gatehouse_core.keyring import SIGNING_PUBLIC_KEY
from gatehouse_core.wire.messages import InSync
from gatehouse_core.wire.records import CredentialRecord, DoorRecord, GroupRecord, PersonRecord, SiteRecord
from gatehouse_core.wire.records import TemplateRecord as Template
from terminals.config import TerminalConfig
from terminals.control import send
from terminals.decision import Reason
from terminals.drivers.face import FaceWatcher, Phase
from terminals.face_service import FaceService
from terminals.inputs import CardPresented, FaceAttempt
from terminals.relay import SimulatedRelay
from terminals.runtime import TerminalRuntime
from terminals.store import TerminalStore
from terminals.sync_apply import FaceHold
from tests.support.daemons import free_port

SITE = "maple"
TERMINAL = "t-1"
NONCE = "0123456789abcdef" * 2
OTHER_NONCE = "fedcba9876543210" * 2


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def in_sync(seq: int, nonce: str) -> InSync:
    return InSync(site=SITE, terminal=TERMINAL, seq=seq, nonce=nonce)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def hold(clock: Clock) -> FaceHold:
    return FaceHold(10.0, clock=clock)


# ---- the hold ----------------------------------------------------------------------------------------------------


def test_held_from_start_and_each_connection_has_its_own_nonce(hold: FaceHold, clock: Clock) -> None:
    assert hold.held and hold.nonce is None
    first = hold.connected()
    assert re.fullmatch(r"[0-9a-f]{32}", first) and hold.nonce == first
    second = hold.connected()
    assert second != first and hold.nonce == second
    clock.now += 3
    assert hold.held_for() == pytest.approx(3)


def test_released_by_the_insync_of_this_connection_once_applied(hold: FaceHold) -> None:
    nonce = hold.connected()
    assert not hold.confirm(in_sync(12, nonce), applied_seq=12, busy=False)
    assert hold.settle(applied_seq=12, busy=False)
    assert not hold.held and hold.held_for() == 0


def test_applied_beyond_the_insync_seq_releases(hold: FaceHold) -> None:
    nonce = hold.connected()
    assert not hold.confirm(in_sync(12, nonce), applied_seq=15, busy=False)
    assert hold.settle(applied_seq=15, busy=False)


def test_nothing_releases_without_an_insync(hold: FaceHold) -> None:
    hold.connected()
    assert not hold.settle(applied_seq=10**6, busy=False)
    assert hold.held


def test_insync_of_an_earlier_connection_is_ignored(hold: FaceHold) -> None:
    stale = hold.connected()
    hold.connected()
    assert not hold.confirm(in_sync(12, stale), applied_seq=12, busy=False)
    assert not hold.settle(applied_seq=12, busy=False)
    assert hold.held
    # Nor does a made-up nonce count.
    assert not hold.confirm(in_sync(12, OTHER_NONCE), applied_seq=12, busy=False)
    assert hold.held


def test_insync_before_any_connection_is_ignored(hold: FaceHold) -> None:
    assert not hold.confirm(in_sync(0, NONCE), applied_seq=0, busy=False)
    assert not hold.settle(applied_seq=0, busy=False)
    assert hold.held


def test_insync_ahead_of_what_is_applied_keeps_the_hold_and_asks_again(hold: FaceHold) -> None:
    nonce = hold.connected()
    assert hold.confirm(in_sync(12, nonce), applied_seq=9, busy=False)  # a part was lost: announce again
    assert not hold.settle(applied_seq=9, busy=False)
    assert hold.held
    # The second answer brings the terminal up to (or past) what the server vouched for.
    assert hold.settle(applied_seq=12, busy=False)
    assert not hold.held


def test_a_half_received_delta_or_snapshot_keeps_the_hold(hold: FaceHold) -> None:
    nonce = hold.connected()
    assert hold.confirm(in_sync(12, nonce), applied_seq=12, busy=True)
    assert not hold.settle(applied_seq=12, busy=True)
    assert hold.held
    assert hold.settle(applied_seq=12, busy=False)


def test_a_new_connection_needs_a_new_insync(hold: FaceHold) -> None:
    first = hold.connected()
    hold.confirm(in_sync(5, first), applied_seq=5, busy=False)
    assert hold.settle(applied_seq=5, busy=False)
    hold.connected()  # a reconnect: held again, and the old confirmation no longer counts
    assert hold.held
    assert not hold.settle(applied_seq=5, busy=False)


def test_released_after_the_wait_without_any_answer(
    hold: FaceHold, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    hold.connected()
    clock.now += 9.9
    assert not hold.expire(last_progress=0.0, applied_seq=4)
    assert hold.held
    clock.now += 0.2
    with caplog.at_level(logging.WARNING, logger="terminals.sync_apply"):
        assert hold.expire(last_progress=0.0, applied_seq=4)
    assert not hold.held
    assert "no answer from the server" in caplog.text and "held since seq 4" in caplog.text
    assert not hold.expire(last_progress=0.0, applied_seq=4)  # released once


def test_released_after_the_wait_even_if_never_connected(clock: Clock) -> None:
    hold = FaceHold(2.0, clock=clock)
    clock.now += 2.5
    assert hold.expire(last_progress=0.0, applied_seq=0)


def test_sync_arriving_keeps_the_hold_past_the_wait(hold: FaceHold, clock: Clock) -> None:
    hold.connected()
    for _ in range(5):  # a long snapshot, a part every 5 s
        clock.now += 5
        assert not hold.expire(last_progress=clock.now, applied_seq=0)
    assert hold.held
    clock.now += 10
    assert hold.expire(last_progress=clock.now - 10, applied_seq=0)


def test_a_reconnect_restarts_the_wait(hold: FaceHold, clock: Clock) -> None:
    hold.connected()
    clock.now += 8
    hold.connected()
    clock.now += 8
    assert not hold.expire(last_progress=0.0, applied_seq=0)
    clock.now += 2
    assert hold.expire(last_progress=0.0, applied_seq=0)


# ---- the cameras -------------------------------------------------------------------------------------------------

DIM = 4
ALICE = "p-000000000000000a"
FRAME = np.zeros((480, 640, 3), dtype=np.uint8)


class CountingModel:
    """Finds Alice's face, near the camera, in every frame; counts what it was asked."""

    engine = "fake"
    model_id = "fake-model"
    dim = DIM

    def __init__(self) -> None:
        self.detected = 0

    def detect(self, image: Any, max_side: int) -> list[Detection]:
        self.detected += 1
        size, x, y = 150.0, 200.0 + self.detected, 100.0
        marks = np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8], [0.65, 0.8]], dtype=np.float32) * size
        return [Detection(box=(x, y, x + size, y + size), score=0.9, landmarks=marks + np.float32([x, y]))]

    def embed(self, image: Any, detection: Detection) -> np.ndarray:
        return np.array([1, 0, 0, 0], dtype=np.float32)


class ReadyIndex:
    def __init__(self) -> None:
        self.gallery = Gallery(DIM)
        self.gallery.add(7, ALICE, np.array([1, 0, 0, 0], dtype=np.float32))
        self.ready = True


def make_watcher(model: CountingModel, held: Callable[[], bool]) -> FaceWatcher:
    return FaceWatcher(
        3,
        model,  # type: ignore[arg-type]
        ReadyIndex(),  # type: ignore[arg-type]
        ThresholdPolicy(ImpostorScores(mean=0.0, std=0.1), target_far=1e-4, target_fpir=0.003),
        min_margin=0.05,
        pad=AcceptAll(),
        held=held,
    )


def test_a_held_camera_makes_no_attempt_and_matches_once_released() -> None:
    held = [True]
    model = CountingModel()
    watcher = make_watcher(model, lambda: held[0])
    assert [watcher.look(FRAME) for _ in range(5)] == [None] * 5
    assert model.detected == 0  # not even looked for: no attempt, so no refusal either
    held[0] = False
    attempt = watcher.look(FRAME)
    assert attempt is not None and (attempt.person, attempt.template) == (ALICE, 7)


def test_a_hold_mid_presentation_starts_it_afresh() -> None:
    held = [False]
    watcher = make_watcher(CountingModel(), lambda: held[0])
    assert watcher.look(FRAME) is not None
    assert watcher.phase is Phase.DONE  # decided: the same presentation makes no second attempt
    held[0] = True
    assert watcher.look(FRAME) is None
    assert watcher.phase is Phase.IDLE
    held[0] = False
    assert watcher.look(FRAME) is not None  # the person still standing there is matched again


class DrainableIndex:
    """An index whose gallery catches up when the test says so."""

    def __init__(self) -> None:
        self.caught_up = threading.Event()

    def drain(self, timeout: float = 10.0) -> bool:
        return self.caught_up.wait(timeout)


def face_config(**face: Any) -> TerminalConfig:
    return parse_config(
        TerminalConfig,
        {
            "terminal_id": TERMINAL,
            "site": SITE,
            "data_dir": "/nonexistent",
            "server_public_key": "/nonexistent",
            "seal_key_file": "/nonexistent",
            "credential_key_file": "/nonexistent",
            "mqtt": {"host": "127.0.0.1", "port": 1883},
            "face": {"engine": "opencv", "model_dir": "/nonexistent", **face},
        },
    )


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_release_waits_for_the_gallery_and_a_new_hold_cancels_it(tmp_path: Path) -> None:
    config = face_config()
    assert config.face is not None
    service = FaceService(config.face, [3], tmp_path / "terminal.db", bytes(32))
    assert service.held  # from the start
    index = DrainableIndex()
    service.index = index  # type: ignore[assignment]
    service.release()
    time.sleep(0.1)
    assert service.held  # the gallery has not taken in the sync changes yet
    service.hold()  # and the link dropped again meanwhile
    index.caught_up.set()
    time.sleep(0.1)
    assert service.held  # the stale release does not end the new hold
    service.release()
    assert wait_until(lambda: not service.held)


def test_release_before_the_gallery_exists_is_immediate(tmp_path: Path) -> None:
    config = face_config()
    assert config.face is not None
    service = FaceService(config.face, [3], tmp_path / "terminal.db", bytes(32))
    service.release()
    assert wait_until(lambda: not service.held)


@pytest.mark.parametrize("value", [0, -1, "ten", 601])
def test_sync_wait_must_be_a_positive_number_of_seconds(value: Any) -> None:
    with pytest.raises(Exception, match="sync_wait_s"):
        face_config(sync_wait_s=value)


def test_sync_wait_defaults_to_ten_seconds() -> None:
    config = face_config()
    assert config.face is not None and config.face.sync_wait_s == 10.0


# ---- the terminal loop -------------------------------------------------------------------------------------------

DOOR = 3
CARD = "04A2B3C4D5E6F7"
TEMPLATE = 77


@pytest.fixture
def offline_terminal(tmp_path: Path) -> Iterator[tuple[TerminalRuntime, Path, list[float]]]:
    """A face terminal whose broker never answers, holding Alice (card and face); the hold's clock can be moved."""
    keys = tmp_path / "keys"
    keys.mkdir()
    server = Ed25519PrivateKey.generate()
    (keys / SIGNING_PUBLIC_KEY).write_bytes(
        server.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    credential_key = os.urandom(32)
    (keys / "seal.key").write_text(os.urandom(32).hex())
    (keys / "credential.key").write_text(credential_key.hex())
    data = tmp_path / "data"
    data.mkdir()
    store = TerminalStore(data / "terminal.db")
    store.apply(
        (),
        [
            SiteRecord(timezone="UTC", face_enabled=True, holidays=(date(2026, 12, 25),)),
            DoorRecord(id=DOOR, face=True, card=True, id_document=True, app_code=True),
            GroupRecord(id=10, doors=(DOOR,), windows=tuple((d, 0, 1440) for d in range(7)), open_on_holidays=True),
            PersonRecord(
                pseudonym=ALICE,
                groups=(10,),
                credentials=(CredentialRecord(id=1, kind="card", hash=hash_card(credential_key, CARD)),),
                templates=(Template(id=TEMPLATE, model="fake-model", sealed=bytes(48)),),
            ),
        ],
        4,
    )
    store.close()
    control = Path(tempfile.mkdtemp(prefix="gh-")) / "control.sock"
    config = parse_config(
        TerminalConfig,
        {
            "terminal_id": TERMINAL,
            "site": SITE,
            "data_dir": str(data),
            "server_public_key": str(keys / SIGNING_PUBLIC_KEY),
            "seal_key_file": str(keys / "seal.key"),
            "credential_key_file": str(keys / "credential.key"),
            "control_socket": str(control),
            # Nothing listens here: the terminal never gets online.
            "mqtt": {"host": "127.0.0.1", "port": free_port(), "keepalive": 5},
            "cameras": [{"door": DOOR, "device": 0}],
            # The models cannot load (no such folder): face attempts come from the test, not a camera.
            "face": {"engine": "opencv", "model_dir": str(tmp_path / "no-models"), "sync_wait_s": 10},
        },
    )
    runtime = TerminalRuntime(config, relay=SimulatedRelay(), drivers=[])
    offset = [0.0]
    runtime.hold = FaceHold(10, clock=lambda: time.monotonic() + offset[0])
    thread = threading.Thread(target=runtime.run, daemon=True)
    thread.start()
    yield runtime, control, offset
    runtime.stop_event.set()
    thread.join(15)
    control.unlink(missing_ok=True)
    control.parent.rmdir()


def reasons(runtime: TerminalRuntime) -> list[str]:
    """Reasons of the decisions in the outbox, read beside the running terminal."""
    store = TerminalStore(runtime.config.data_dir / "terminal.db", read_only=True)
    try:
        return [e.reason for e in store.pending_events(100)]
    finally:
        store.close()


def test_a_face_while_held_is_refused_and_the_card_still_opens(
    offline_terminal: tuple[TerminalRuntime, Path, list[float]],
) -> None:
    runtime, control, _offset = offline_terminal
    face = runtime.present(FaceAttempt(DOOR, ALICE, 0.9, template=TEMPLATE)).result(timeout=10)
    assert face["granted"] is False and face["message"].startswith("Not admitted. Try another way in")
    card = runtime.present(CardPresented(DOOR, CARD)).result(timeout=10)
    assert card["granted"] is True
    assert reasons(runtime) == [Reason.FACE_SYNC_PENDING.value, Reason.GRANTED.value]
    status = send(control, {"op": "status"})
    assert status["face"]["held"] is True and status["face"]["held_for_s"] >= 0
    relay = runtime.relay
    assert isinstance(relay, SimulatedRelay)
    assert [h[1:] for h in relay.history if h[2]] == [(DOOR, True)]  # opened once, by the card


def test_without_an_answer_the_hold_ends_and_faces_decide_offline(
    offline_terminal: tuple[TerminalRuntime, Path, list[float]],
) -> None:
    runtime, control, offset = offline_terminal
    assert not runtime.present(FaceAttempt(DOOR, ALICE, 0.9, template=TEMPLATE)).result(timeout=10)["granted"]
    offset[0] = 11.0  # sync_wait_s has passed without a word from the server
    assert wait_until(lambda: not send(control, {"op": "status"})["face"]["held"])
    assert "held_for_s" not in send(control, {"op": "status"})["face"]
    assert runtime.present(FaceAttempt(DOOR, ALICE, 0.9, template=TEMPLATE)).result(timeout=10)["granted"]
    assert reasons(runtime) == [Reason.FACE_SYNC_PENDING.value, Reason.GRANTED.value]
