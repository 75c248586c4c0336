"""The terminal's face gallery follows the store: full loads, deltas, deletions, and templates it must refuse."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from gatehouse_core.face.enroll import vector_to_bytes
from gatehouse_core.sealed import seal
from gatehouse_core.wire.records import PersonRecord, Removal, TemplateRecord, template_context
from terminals.face_index import FaceIndex
from terminals.store import TerminalStore

KEY = bytes(range(32))
MODEL = "w600k_mbf-9cc6e4a75f0e"
ALICE = "p-000000000000000a"
BOB = "p-000000000000000b"
DIM = 512


def vector(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def template(pseudonym: str, tid: int, *, model: str = MODEL, key: bytes = KEY, data: bytes | None = None):  # type: ignore[no-untyped-def]
    plain = data if data is not None else vector_to_bytes(vector(tid))
    return TemplateRecord(id=tid, model=model, sealed=seal(key, plain, template_context(pseudonym, tid)))


def person(pseudonym: str, *templates: TemplateRecord) -> PersonRecord:
    return PersonRecord(pseudonym=pseudonym, groups=(1,), templates=templates)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TerminalStore]:
    s = TerminalStore(tmp_path / "terminal.db")
    yield s
    s.close()


@pytest.fixture
def index(store: TerminalStore, tmp_path: Path) -> Iterator[FaceIndex]:
    idx = FaceIndex(tmp_path / "terminal.db", KEY, MODEL, DIM)
    yield idx
    idx.stop()


def test_first_load_holds_every_template_of_the_model(store: TerminalStore, index: FaceIndex) -> None:
    store.apply([], [person(ALICE, template(ALICE, 1)), person(BOB, template(BOB, 2))], 1)
    index.start()
    assert index.wait_ready(10)
    assert index.gallery.keys() == frozenset({1, 2})
    best = index.gallery.search(vector(2))[0]
    assert (best.label, best.key) == (BOB, 2)
    assert best.score == pytest.approx(1.0, abs=1e-5)


def test_deltas_add_replace_and_delete(store: TerminalStore, index: FaceIndex) -> None:
    store.apply([], [person(ALICE, template(ALICE, 1))], 1)
    index.start()
    assert index.wait_ready(10)
    store.apply([], [person(ALICE, template(ALICE, 3)), person(BOB, template(BOB, 2))], 2)
    index.synced(frozenset({ALICE, BOB}), full=False)
    assert index.drain()
    assert index.gallery.keys() == frozenset({2, 3})  # Alice's old template 1 replaced by 3
    store.apply([Removal(kind="person", key=BOB)], [person(ALICE)], 3)  # Bob moved out; Alice withdrew
    index.synced(frozenset({ALICE, BOB}), full=False)
    assert index.drain()
    assert len(index.gallery) == 0
    assert index.gallery.search(vector(3)) == []


def test_templates_of_another_model_or_key_are_refused(store: TerminalStore, index: FaceIndex) -> None:
    store.apply(
        [],
        [
            person(ALICE, template(ALICE, 1, model="other-model-000000000000")),
            person(BOB, template(BOB, 2, key=bytes(32))),  # sealed for another terminal
        ],
        1,
    )
    index.start()
    assert index.wait_ready(10)
    assert len(index.gallery) == 0
    assert (index.other_model, index.unusable) == (1, 1)


def test_a_template_of_the_wrong_length_is_refused(store: TerminalStore, index: FaceIndex) -> None:
    store.apply([], [person(ALICE, template(ALICE, 1, data=bytes(128 * 4)))], 1)
    index.start()
    assert index.wait_ready(10)
    assert len(index.gallery) == 0
    assert index.unusable == 1


def test_full_reload_after_a_snapshot(store: TerminalStore, index: FaceIndex) -> None:
    store.apply([], [person(ALICE, template(ALICE, 1))], 1)
    index.start()
    assert index.wait_ready(10)
    store.apply([Removal(kind="person", key=ALICE)], [person(BOB, template(BOB, 5))], 2)
    index.synced(frozenset(), full=True)
    assert index.drain()
    assert index.gallery.keys() == frozenset({5})
