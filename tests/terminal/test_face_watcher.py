"""A door's face logic without models: presence gating, one attempt per presentation, fallback, PAD, loading."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from gatehouse_core.face.calibration import ImpostorScores, ThresholdPolicy
from gatehouse_core.face.gallery import Gallery
from gatehouse_core.face.pad import MultiFrameConsistency
from gatehouse_core.face.types import Detection
from terminals.drivers.face import DoorFaceSettings, FaceWatcher, Phase

DIM = 8
ALICE = "p-000000000000000a"
FRAME = np.zeros((480, 640, 3), dtype=np.uint8)


def unit(i: int) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[i] = 1
    return v


def face(size: float, shift: float = 0.0) -> Detection:
    x, y = 200 + shift, 100.0
    marks = np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8], [0.65, 0.8]], dtype=np.float32) * size
    return Detection(box=(x, y, x + size, y + size), score=0.9, landmarks=marks + np.float32([x, y]))


@dataclass
class FakeModel:
    """Hands out the scripted faces and embeddings, one per call."""

    faces: list[list[Detection]] = field(default_factory=list)
    vectors: list[np.ndarray] = field(default_factory=list)
    engine: str = "fake"
    model_id: str = "fake-model"
    dim: int = DIM
    enroll_score: float = 0.5
    embedded: int = 0

    def detect(self, image, max_side):  # type: ignore[no-untyped-def]
        return self.faces.pop(0)

    def embed(self, image, detection):  # type: ignore[no-untyped-def]
        self.embedded += 1
        return self.vectors.pop(0)

    def aligned(self, image, detection):  # type: ignore[no-untyped-def]
        raise NotImplementedError


@dataclass
class FakeIndex:
    gallery: Gallery
    ready: bool = True


@pytest.fixture
def index() -> FakeIndex:
    gallery = Gallery(DIM)
    gallery.add(7, ALICE, unit(0))
    return FakeIndex(gallery)


def watcher(model: FakeModel, index: FakeIndex, clock: list[float], **settings: float) -> FaceWatcher:
    policy = ThresholdPolicy(ImpostorScores(mean=0.0, std=0.1), target_far=1e-4, target_fpir=0.003)
    return FaceWatcher(
        3,
        model,  # type: ignore[arg-type]
        index,  # type: ignore[arg-type]
        policy,
        min_margin=0.05,
        pad=MultiFrameConsistency(2),
        settings=DoorFaceSettings(near_zone_px=90, attempts=3, presence_gap_s=1.0, **settings),  # type: ignore[arg-type]
        clock=lambda: clock[0],
    )


def look_all(w: FaceWatcher, clock: list[float], n: int):  # type: ignore[no-untyped-def]
    out = []
    for _ in range(n):
        out.append(w.look(FRAME))
        clock[0] += 0.1
    return out


def test_matched_face_needs_two_moving_frames_then_one_attempt_per_presentation(index: FakeIndex) -> None:
    clock = [0.0]
    model = FakeModel(faces=[[face(120, s)] for s in (0, 1, 2, 3)], vectors=[unit(0)] * 4)
    w = watcher(model, index, clock)
    results = look_all(w, clock, 4)
    assert results[0] is None  # one frame is not enough for the PAD check
    attempt = results[1]
    assert attempt is not None and (attempt.person, attempt.template, attempt.door) == (ALICE, 7, 3)
    assert results[2:] == [None, None]  # still the same presentation: nothing more, and no more embedding
    assert model.embedded == 2


def test_people_in_the_background_are_never_embedded(index: FakeIndex) -> None:
    clock = [0.0]
    model = FakeModel(faces=[[face(40)], [face(60), face(30)], []])
    w = watcher(model, index, clock)
    assert look_all(w, clock, 3) == [None, None, None]
    assert model.embedded == 0 and w.phase is Phase.IDLE


def test_a_stranger_gets_one_refusal_then_is_left_alone_until_leaving(index: FakeIndex) -> None:
    clock = [0.0]
    stranger = unit(1)
    model = FakeModel(faces=[[face(120, s)] for s in range(5)] + [[]] * 12 + [[face(120)]], vectors=[stranger] * 6)
    w = watcher(model, index, clock)
    results = look_all(w, clock, 5)
    refusals = [r for r in results if r is not None]
    assert len(refusals) == 1 and refusals[0].person is None and refusals[0].ambiguous is False
    assert results.index(refusals[0]) == 2  # after `attempts` frames
    assert model.embedded == 3
    look_all(w, clock, 12)  # walks away for more than presence_gap_s
    assert w.phase is Phase.IDLE
    assert look_all(w, clock, 1) == [None]  # a new presentation starts over
    assert model.embedded == 4


def test_a_frozen_frame_is_refused_by_the_pad_check(index: FakeIndex) -> None:
    clock = [0.0]
    model = FakeModel(faces=[[face(120)] for _ in range(4)], vectors=[unit(0)] * 4)
    w = watcher(model, index, clock)
    results = look_all(w, clock, 4)
    refusals = [r for r in results if r is not None]
    assert [r.person for r in refusals] == [None]


def test_two_people_too_close_to_call_are_refused_as_ambiguous(index: FakeIndex) -> None:
    index.gallery.add(8, "p-000000000000000b", unit(1))
    clock = [0.0]
    between = (unit(0) + unit(1)) / np.sqrt(2)
    model = FakeModel(faces=[[face(120, s)] for s in range(3)], vectors=[between] * 3)
    w = watcher(model, index, clock)
    refusals = [r for r in look_all(w, clock, 3) if r is not None]
    assert len(refusals) == 1 and refusals[0].person is None and refusals[0].ambiguous


def test_nothing_happens_while_templates_are_loading(index: FakeIndex) -> None:
    index.ready = False
    clock = [0.0]
    model = FakeModel(faces=[[face(120)]], vectors=[unit(0)])
    w = watcher(model, index, clock)
    assert w.look(FRAME) is None
    assert model.embedded == 0 and model.faces  # not even detected


def test_a_face_that_never_turns_to_the_camera_still_gets_the_fallback(index: FakeIndex) -> None:
    clock = [0.0]
    turned = face(120)
    marks = turned.landmarks.copy()
    marks[2, 0] += 50  # nose far to one side: head turned well past max_turn_deg
    turned = Detection(box=turned.box, score=0.9, landmarks=marks)
    model = FakeModel(faces=[[turned] for _ in range(8)])
    w = watcher(model, index, clock)
    results = look_all(w, clock, 8)
    refusals = [r for r in results if r is not None]
    assert len(refusals) == 1 and refusals[0].person is None
    assert results.index(refusals[0]) == 5  # after 2 x attempts turned frames
    assert model.embedded == 0
