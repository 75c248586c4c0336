"""gatehouse_core.face.gallery: exhaustive per-person search equal to exact float32, live updates, decide()."""

from __future__ import annotations

import math
import random
import threading
import time

import numpy as np
import numpy.typing as npt
import pytest

from gatehouse_core.face.gallery import Candidate, Gallery, MatchDecision, MatchOutcome, decide

F32 = npt.NDArray[np.float32]
NOISE = math.sqrt(1 / 0.6 - 1)
"""Noise norm around a person's unit centre giving genuine cosine ~0.6 (two samples: 1 / (1 + noise**2))."""


def unit(rows: npt.NDArray[np.floating]) -> F32:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


def centres(rng: np.random.Generator, n: int, dim: int) -> F32:
    return unit(rng.standard_normal((n, dim)))


def samples(rng: np.random.Generator, around: F32) -> F32:
    """One face embedding per centre: centre plus noise, normalised."""
    return unit(around + NOISE * rng.standard_normal(around.shape) / math.sqrt(around.shape[-1]))


def roster(rng: np.random.Generator, persons: int, dim: int) -> tuple[list[tuple[int, str, F32]], F32]:
    """(key, label, vector) for persons with one to three templates each, and the person centres."""
    middle = centres(rng, persons, dim)
    items: list[tuple[int, str, F32]] = []
    for person in range(persons):
        for vector in samples(rng, np.repeat(middle[person : person + 1], 1 + person % 3, axis=0)):
            items.append((len(items), f"p{person}", vector))
    return items, middle


def filled(dim: int, items: list[tuple[int, str, F32]], **options: int) -> Gallery:
    gallery = Gallery(dim, **options)
    gallery.replace_all(items)
    return gallery


def assert_same(fast: list[Candidate], exact: list[Candidate]) -> None:
    assert [(c.label, c.key) for c in fast] == [(c.label, c.key) for c in exact]
    assert [c.score for c in fast] == pytest.approx([c.score for c in exact], abs=1e-5)


def reference(items: list[tuple[int, str, F32]], query: F32, people: int) -> list[tuple[str, int, float]]:
    """Per-person best by brute force in float64, independent of the gallery's code."""
    q = query.astype(np.float64) / np.linalg.norm(query.astype(np.float64))
    best: dict[str, tuple[float, int]] = {}
    for key, label, vector in items:
        v = vector.astype(np.float64) / np.linalg.norm(vector.astype(np.float64))
        score = float(v @ q)
        if label not in best or score > best[label][0]:
            best[label] = (score, key)
    ranked = sorted(best.items(), key=lambda kv: -kv[1][0])[:people]
    return [(label, key, score) for label, (score, key) in ranked]


@pytest.mark.parametrize("dim", [128, 512])
def test_fast_search_equals_exact_on_clustered_faces(dim: int) -> None:
    rng = np.random.default_rng(dim)
    items, middle = roster(rng, 1500, dim)
    gallery = filled(dim, items)
    genuine = samples(rng, middle[rng.integers(0, len(middle), 60)])
    impostors = samples(rng, centres(rng, 60, dim))
    for query in np.concatenate((genuine, impostors)):
        for people in (1, 2, 5):
            assert_same(gallery.search(query, people), gallery.search_exact(query, people))
    top = gallery.search(genuine[0])
    assert top[0].score > 0.4  # a genuine query finds its person
    assert abs(gallery.search(impostors[0])[0].score) < 0.4


def test_scores_are_exact_cosines_per_person() -> None:
    rng = np.random.default_rng(1)
    items, middle = roster(rng, 300, 128)
    gallery = filled(128, items)
    for query in samples(rng, middle[:20]):
        expected = reference(items, query, 3)
        found = gallery.search(query, people=3)
        assert [(c.label, c.key) for c in found] == [(label, key) for label, key, _ in expected]
        assert [c.score for c in found] == pytest.approx([score for _, _, score in expected], abs=1e-6)


def test_best_template_per_person_and_distinct_people() -> None:
    rng = np.random.default_rng(2)
    dim = 128
    items, _ = roster(rng, 200, dim)
    person = centres(rng, 1, dim)[0]
    own = samples(rng, np.repeat(person[None], 4, axis=0))
    items += [(1000 + i, "alice", own[i]) for i in range(4)]
    gallery = filled(dim, items, candidates=8)
    found = gallery.search(own[2], people=4)
    assert found[0] == Candidate("alice", 1002, pytest.approx(1.0, abs=1e-6))
    assert len({c.label for c in found}) == 4
    assert all(c.label != "alice" for c in found[1:])
    assert [c.score for c in found] == sorted((c.score for c in found), reverse=True)


@pytest.mark.parametrize("dim", [128, 512])
def test_near_ties_resolved_exactly_even_with_one_candidate(dim: int) -> None:
    """Persons within 1e-4 of each other: the int8 pass cannot tell them apart, the rerank and bound must."""
    rng = np.random.default_rng(3)
    query = centres(rng, 1, dim)[0]
    items: list[tuple[int, str, F32]] = []
    for i in range(40):
        # Same direction mixes, so cosines to the query are 0.7 + ~1e-4 * i with tiny random perturbation.
        other = centres(rng, 1, dim)[0]
        other = unit(other - (other @ query) * query)
        cosine = 0.7 + 1e-4 * rng.integers(0, 5)
        items.append((i, f"p{i % 13}", unit(cosine * query + math.sqrt(1 - cosine**2) * other)))
    items += [(100 + i, f"far{i}", v) for i, v in enumerate(centres(rng, 500, dim))]
    for candidates in (1, 4, 64):
        gallery = filled(dim, items, candidates=candidates)
        for people in (1, 2, 3, 13):
            assert_same(gallery.search(query, people), gallery.search_exact(query, people))
        if candidates == 1:
            assert gallery.widened_searches > 0  # the bound, not luck, made these exact


def test_near_ties_with_a_query_int8_holds_exactly() -> None:
    """At dim 100 the query (0.5, 0.5, 0.5, 0.5, 0...) has no int8 error: only the templates' error separates
    the int8 order from the true order of 300 templates within 0.002 of each other."""
    rng = np.random.default_rng(14)
    dim = 100
    query = np.zeros(dim, np.float32)
    query[:4] = 0.5
    items: list[tuple[int, str, F32]] = []
    for i, cosine in enumerate(rng.uniform(0.7, 0.702, 300)):
        items.append((i, f"p{i}", unit(cosine * query + math.sqrt(1 - cosine**2) * orthogonal(rng, query))))
    for candidates in (1, 3):
        gallery = filled(dim, items, candidates=candidates)
        for people in (1, 2, 5):
            assert_same(gallery.search(query, people), gallery.search_exact(query, people))


def test_duplicate_vectors_tie_the_same_way_on_both_paths() -> None:
    rng = np.random.default_rng(4)
    base = centres(rng, 300, 128)
    items = [(i, f"p{i}", v) for i, v in enumerate(base)]
    items += [(500, "twin-a", base[7]), (501, "twin-b", base[7]), (502, "p7", base[7])]
    gallery = filled(128, items, candidates=2)
    assert_same(gallery.search(base[7], 3), gallery.search_exact(base[7], 3))
    assert {c.label for c in gallery.search(base[7], 3)} == {"p7", "twin-a", "twin-b"}


def orthogonal(rng: np.random.Generator, to: F32) -> F32:
    other = rng.standard_normal(to.shape)
    return unit(other - (other @ to) * to)


def test_clipped_templates_are_still_found_exactly() -> None:
    """A spiky template loses most of its score to int8 clipping; it is reranked every time, so it still wins."""
    rng = np.random.default_rng(5)
    dim = 128
    spike = np.zeros(dim, np.float32)
    spike[3] = 1.0
    # The query itself is not clipped (0.4 < 5/sqrt(128)); its cosine with the spike is 0.4, with the others 0.3,
    # but the spike's int8 score is only ~0.18 while theirs stay ~0.3.
    query = unit(0.4 * spike + math.sqrt(1 - 0.4**2) * orthogonal(rng, spike))
    items = [(i, f"p{i}", unit(0.3 * query + math.sqrt(1 - 0.3**2) * orthogonal(rng, query))) for i in range(8)]
    items += [(100 + i, f"far{i}", v) for i, v in enumerate(centres(rng, 200, dim))]
    items.append((999, "spiky", spike))
    gallery = filled(dim, items, candidates=4)
    for people in (1, 2, 3):
        found = gallery.search(query, people)
        assert found[0] == Candidate("spiky", 999, pytest.approx(0.4, abs=1e-5))
        assert_same(found, gallery.search_exact(query, people))
    for other in (spike, *centres(rng, 20, dim)):
        assert_same(gallery.search(other, 3), gallery.search_exact(other, 3))


def test_a_clipped_query_is_still_answered_exactly() -> None:
    """The query's own clipping costs the right template ~0.16 of int8 score; the bound must account for it."""
    rng = np.random.default_rng(13)
    dim = 128
    axis = np.zeros(dim, np.float32)
    axis[3] = 1.0
    side = orthogonal(rng, axis)
    query = unit(0.8 * axis + 0.6 * side)  # 0.8 is far past the clip at 5/sqrt(128) ~ 0.44
    # Cosine 0.8 * 0.42 = 0.336 with the query, but only ~0.19 after clipping; the others score 0.3 either way.
    rest = orthogonal(rng, side)
    rest = unit(rest - (rest @ axis) * axis)
    target = unit(0.42 * axis + math.sqrt(1 - 0.42**2) * rest)
    items = [
        (i, f"p{i}", unit(0.5 * side + math.sqrt(0.75) * unit(orthogonal(rng, side) * (np.arange(dim) != 3))))
        for i in range(8)
    ]
    far = unit(centres(rng, 200, dim) * (np.arange(dim) != 3))
    items += [(100 + i, f"far{i}", v) for i, v in enumerate(far)]
    items.append((999, "target", target))
    gallery = filled(dim, items, candidates=4)
    exact = gallery.search_exact(query, 2)
    assert exact[0].label == "target" and exact[1].score == pytest.approx(0.3, abs=0.02)
    assert_same(gallery.search(query, 2), exact)


def test_add_normalises_and_replaces_an_existing_key() -> None:
    rng = np.random.default_rng(6)
    a, b = centres(rng, 2, 128)
    gallery = Gallery(128)
    gallery.add(1, "alice", 3.0 * a)
    assert gallery.search(a) == [Candidate("alice", 1, pytest.approx(1.0, abs=1e-6))]
    gallery.add(1, "bob", b)
    assert len(gallery) == 1
    assert gallery.label_of(1) == "bob"
    assert gallery.search(b)[0] == Candidate("bob", 1, pytest.approx(1.0, abs=1e-6))
    assert [c.label for c in gallery.search(a)] == ["bob"]


def test_remove_moves_rows_and_reuses_slots() -> None:
    rng = np.random.default_rng(7)
    vectors = centres(rng, 12, 64)
    gallery = Gallery(64, capacity=8, candidates=2)
    for key in range(8):
        gallery.add(key, f"p{key}", vectors[key])
    assert gallery.remove(2) and gallery.remove(7) and gallery.remove(0)
    assert not gallery.remove(2)
    assert len(gallery) == 5 and 2 not in gallery and 3 in gallery
    assert gallery.keys() == frozenset({1, 3, 4, 5, 6})
    for key in (1, 3, 4, 5, 6):  # rows moved into the holes keep their key, label and vector
        assert gallery.search(vectors[key])[0] == Candidate(f"p{key}", key, pytest.approx(1.0, abs=1e-6))
    for key in (2, 7, 0):
        assert all(c.key != key for c in gallery.search(vectors[key], people=8))
    for key in (8, 9, 10):
        gallery.add(key, f"p{key}", vectors[key])
    assert gallery.capacity == 8  # the freed rows were reused, nothing grew
    assert len(gallery) == 8
    for key in (1, 3, 4, 5, 6, 8, 9, 10):
        assert gallery.search(vectors[key])[0].key == key


def test_growth_beyond_capacity_keeps_every_template() -> None:
    rng = np.random.default_rng(8)
    vectors = centres(rng, 300, 128)
    gallery = Gallery(128, capacity=4, candidates=8)
    for key, vector in enumerate(vectors):
        gallery.add(key, f"p{key}", vector)
    assert len(gallery) == 300 and gallery.capacity == 512
    for key in rng.choice(300, 40, replace=False).tolist():
        assert gallery.search(vectors[key])[0] == Candidate(f"p{key}", key, pytest.approx(1.0, abs=1e-6))
    assert gallery.memory_bytes() >= 512 * 128 * 5


def test_replace_all_swaps_everything() -> None:
    rng = np.random.default_rng(9)
    old, new = centres(rng, 50, 128), centres(rng, 80, 128)
    gallery = filled(128, [(k, f"old{k}", v) for k, v in enumerate(old)], candidates=8)
    fresh = [(1000 + k, f"new{k}", v) for k, v in enumerate(new)]
    fresh.append((1000, "new-last-wins", new[0]))  # a later duplicate key replaces the earlier one
    gallery.replace_all(iter(fresh))
    assert len(gallery) == 80
    assert gallery.keys() == frozenset(range(1000, 1080))
    assert 3 not in gallery and gallery.label_of(3) is None
    assert gallery.label_of(1000) == "new-last-wins"
    assert all(c.label.startswith("new") for c in gallery.search(old[3], people=10))
    assert gallery.search(new[5])[0] == Candidate("new5", 1005, pytest.approx(1.0, abs=1e-6))
    gallery.replace_all([])
    assert len(gallery) == 0 and gallery.search(new[5]) == []


def test_replace_all_with_a_bad_vector_changes_nothing() -> None:
    rng = np.random.default_rng(10)
    vectors = centres(rng, 10, 32)
    gallery = filled(32, [(k, f"p{k}", v) for k, v in enumerate(vectors)])
    broken = [(100, "a", vectors[0]), (101, "b", np.full(32, np.nan, np.float32))]
    with pytest.raises(ValueError, match="template 101"):
        gallery.replace_all(broken)
    with pytest.raises(ValueError, match="template 102"):
        gallery.replace_all([(100, "a", vectors[0]), (102, "c", np.ones(31, np.float32))])
    assert gallery.keys() == frozenset(range(10))


BAD_VECTORS = {
    "wrong dim": np.ones(127, np.float32),
    "two-d": np.ones((1, 128), np.float32),
    "scalar": np.float32(1.0),
    "nan": np.where(np.arange(128) == 5, np.nan, 1.0),
    "inf": np.where(np.arange(128) == 5, np.inf, 1.0),
    "zero": np.zeros(128, np.float32),
    "complex": np.ones(128, np.complex64),
    "text": np.array(["x"] * 128),
}


@pytest.mark.parametrize("vector", BAD_VECTORS.values(), ids=BAD_VECTORS.keys())
def test_bad_vectors_are_rejected(vector: npt.NDArray[np.generic]) -> None:
    gallery = Gallery(128)
    gallery.add(1, "ok", np.ones(128, np.float32))
    with pytest.raises(ValueError):
        gallery.add(2, "bad", vector)
    with pytest.raises(ValueError):
        gallery.search(vector)
    with pytest.raises(ValueError):
        gallery.search_exact(vector)
    assert gallery.keys() == frozenset({1})


def test_bad_arguments_are_rejected() -> None:
    gallery = Gallery(8)
    with pytest.raises(ValueError):
        gallery.add(1, "", np.ones(8))
    with pytest.raises(TypeError):
        gallery.add(True, "a", np.ones(8))
    with pytest.raises(ValueError):
        gallery.search(np.ones(8), people=0)
    with pytest.raises(ValueError):
        Gallery(0)
    assert "1" not in gallery and None not in gallery


def test_empty_and_single_person_galleries() -> None:
    gallery = Gallery(16)
    assert gallery.search(np.ones(16)) == [] == gallery.search_exact(np.ones(16))
    assert decide([], 0.3, 0.05).outcome is MatchOutcome.EMPTY
    gallery.add(1, "solo", np.ones(16))
    gallery.add(2, "solo", np.arange(16.0) + 1)
    found = gallery.search(np.ones(16), people=2)
    assert found == [Candidate("solo", 1, pytest.approx(1.0))]
    decision = decide(found, 0.3, 0.05)
    assert decision == MatchDecision(MatchOutcome.MATCH, "solo", 1, pytest.approx(1.0), math.inf)


def test_large_dim_uses_wider_coarse_scores() -> None:
    rng = np.random.default_rng(11)
    items, middle = roster(rng, 100, 1100)
    gallery = filled(1100, items, candidates=4)
    for query in samples(rng, middle[:10]):
        assert_same(gallery.search(query, 3), gallery.search_exact(query, 3))


def c(label: str, score: float, key: int = 0) -> Candidate:
    return Candidate(label, key, score)


# Scores are binary fractions so that limits compare exactly.
@pytest.mark.parametrize(
    ("candidates", "outcome", "label", "margin"),
    [
        ([c("a", 0.75, 7), c("b", 0.25)], MatchOutcome.MATCH, "a", 0.5),
        ([c("a", 0.75, 7)], MatchOutcome.MATCH, "a", math.inf),
        ([c("a", 0.5, 7), c("b", 0.25)], MatchOutcome.MATCH, "a", 0.25),  # both limits are inclusive
        ([c("a", 0.4375, 7), c("b", 0.0)], MatchOutcome.NO_MATCH, None, 0.4375),  # never "the nearest person"
        ([c("a", 0.125)], MatchOutcome.NO_MATCH, None, math.inf),
        ([c("a", 0.375), c("b", 0.3125)], MatchOutcome.NO_MATCH, None, 0.0625),  # below threshold wins
        ([c("a", 0.75, 7), c("b", 0.625)], MatchOutcome.AMBIGUOUS, None, 0.125),
        ([c("a", 0.75, 7), c("a", 0.7), c("b", 0.375)], MatchOutcome.MATCH, "a", 0.375),  # same person twice
        ([], MatchOutcome.EMPTY, None, 0.0),
    ],
)
def test_decide(candidates: list[Candidate], outcome: MatchOutcome, label: str | None, margin: float) -> None:
    decision = decide(candidates, threshold=0.5, min_margin=0.25)
    assert decision.outcome is outcome
    assert decision.label == label
    assert decision.key == (7 if outcome is MatchOutcome.MATCH else None)
    assert decision.margin == margin
    assert decision.score == (candidates[0].score if candidates else 0.0)


def test_searches_never_see_removed_templates_while_the_writer_works() -> None:
    """Readers search non-stop while one writer adds, removes, grows and replaces the whole gallery."""
    rng = np.random.default_rng(12)
    dim = 64
    pool = centres(rng, 20000, dim)  # key k always has vector pool[k]; keys are never reused
    gallery = Gallery(dim, capacity=16, candidates=8)
    gone: set[int] = set()
    gone_lock = threading.Lock()
    next_key = 0
    stop = threading.Event()
    failures: list[BaseException] = []
    counts = {"search": 0, "search_exact": 0}

    def reader(method: str, seed: int) -> None:
        pick = random.Random(seed)
        search = getattr(gallery, method)
        try:
            while not stop.is_set():
                with gone_lock:
                    removed = frozenset(gone)
                # Query with a removed template's own vector when there is one: it would score 1.0 if still there.
                key = pick.choice(tuple(removed)) if removed and pick.random() < 0.7 else pick.randrange(len(pool))
                for found in search(pool[key], people=3):
                    assert found.key not in removed, f"removed template {found.key} returned"
                    assert found.label == f"p{found.key}"
                counts[method] += 1
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    readers = [threading.Thread(target=reader, args=(m, i)) for i, m in enumerate(("search", "search_exact"))]
    for thread in readers:
        thread.start()
    live: list[int] = []
    try:
        # At least 3000 writes, and on until both readers have searched a fair number of times.
        deadline = time.monotonic() + 10
        for step in range(12000):
            if step >= 3000 and (min(counts.values()) >= 50 or time.monotonic() > deadline):
                break
            if step % 1000 == 999:
                batch = list(range(next_key, next_key + 800))
                next_key += 800
                gallery.replace_all((k, f"p{k}", pool[k]) for k in batch)
                with gone_lock:
                    gone.update(live)
                live = batch
            elif live and step % 3 == 0:
                key = live.pop(random.Random(step).randrange(len(live)))
                assert gallery.remove(key)
                with gone_lock:
                    gone.add(key)
            else:
                gallery.add(next_key, f"p{next_key}", pool[next_key])
                live.append(next_key)
                next_key += 1
            if step % 50 == 0:
                time.sleep(0)  # let the readers interleave with every kind of write
    finally:
        stop.set()
        for thread in readers:
            thread.join(10)
    assert not failures, failures[0]
    assert counts["search"] > 20 and counts["search_exact"] > 20
    assert gallery.keys() == frozenset(live)
    for key in live[:50]:
        assert_same(gallery.search(pool[key]), gallery.search_exact(pool[key]))
