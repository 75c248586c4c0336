"""bench.face_metrics on small score sets whose answers are worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.face_metrics import (
    choose_gallery,
    eer,
    far_at,
    fit_impostors,
    open_set,
    open_set_scores,
    pair_scores,
    tar_at,
    tar_at_far,
    threshold_at_rate,
)

TENTHS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]


def above(value: float) -> float:
    """The next float64 above `value`: where the empirical thresholds sit."""
    return float(np.nextafter(value, np.inf))


# ---- thresholds at a rate ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "allowed", "threshold"),
    [
        (0.1, 1, above(0.9)),  # one of ten may pass: just above the second highest
        (0.25, 2, above(0.8)),  # floor(2.5) = 2
        (0.05, 0, above(1.0)),  # under 1/n: nothing may pass
        (0.99, 9, above(0.1)),
    ],
)
def test_threshold_at_rate(rate: float, allowed: int, threshold: float) -> None:
    result = threshold_at_rate(TENTHS, rate)
    assert result.allowed == allowed
    assert result.accepted == allowed
    assert result.threshold == threshold
    assert result.achieved == allowed / 10
    assert far_at(TENTHS, result.threshold) == allowed / 10


def test_threshold_is_the_smallest_that_holds() -> None:
    result = threshold_at_rate(TENTHS, 0.1)
    assert far_at(TENTHS, result.threshold) <= 0.1
    assert far_at(TENTHS, float(np.nextafter(result.threshold, -np.inf))) > 0.1


def test_ties_accept_fewer_than_allowed() -> None:
    # Three scores tie at the cut: taking any of them takes all three, more than the two allowed.
    result = threshold_at_rate([0.5, 0.5, 0.5, 0.1], 0.5)
    assert result.allowed == 2
    assert result.threshold == above(0.5)
    assert result.accepted == 0


def test_rate_times_count_is_not_floored_below_an_integer() -> None:
    assert 0.29 * 100 < 29  # the float trap the rule guards against
    assert threshold_at_rate(np.linspace(0, 1, 100), 0.29).allowed == 29


@pytest.mark.parametrize("rate", [0.0, 1.0, -0.1, 1.5])
def test_rate_out_of_range(rate: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        threshold_at_rate(TENTHS, rate)


@pytest.mark.parametrize("scores", [[], [0.1, math.nan], [math.inf]])
def test_unusable_scores(scores: list[float]) -> None:
    with pytest.raises(ValueError):
        threshold_at_rate(scores, 0.1)


# ---- verification ---------------------------------------------------------------------------------------------------


def test_tar_at_far() -> None:
    genuine = [0.5, 0.95, 1.0, 0.85]
    assert tar_at_far(genuine, TENTHS, 0.1) == (0.5, above(0.9))  # 0.95 and 1.0 pass
    assert tar_at_far(genuine, TENTHS, 0.05) == (0.0, above(1.0))
    assert tar_at_far(genuine, TENTHS, 0.25) == (0.75, above(0.8))


def test_tar_at_counts_equal_scores_as_accepted() -> None:
    assert tar_at([0.3, 0.4, 0.5], 0.4) == pytest.approx(2 / 3)
    assert far_at([0.3, 0.4, 0.5], 0.4) == pytest.approx(2 / 3)


def test_eer_separated_sets() -> None:
    assert eer([0.8, 0.9], [0.1, 0.2]) == (0.0, 0.8)


def test_eer_overlapping_sets() -> None:
    # t=0.4: FAR 2/4, FRR 1/4; t=0.5: FAR 1/4, FRR 1/4; t=0.6: FAR 0, FRR 1/4. The least max is 1/4, first at 0.5.
    assert eer([0.3, 0.6, 0.7, 0.9], [0.1, 0.2, 0.4, 0.5]) == (0.25, 0.5)


def test_eer_inverted_sets() -> None:
    assert eer([0.1], [0.9]) == (1.0, 0.1)


def test_eer_needs_both_sets() -> None:
    with pytest.raises(ValueError, match="no genuine"):
        eer([], [0.1])


def test_fit_impostors() -> None:
    mean, std = fit_impostors([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5
    assert std == pytest.approx(math.sqrt(5 / 3))  # ddof=1
    with pytest.raises(ValueError, match="at least two"):
        fit_impostors([0.1])


def test_pair_scores() -> None:
    vectors = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], dtype=np.float32)
    genuine, impostor = pair_scores(vectors, ["a", "a", "b"])
    assert genuine == pytest.approx([0.6])
    assert sorted(impostor) == pytest.approx([0.0, 0.8])


def test_pair_scores_of_nothing() -> None:
    genuine, impostor = pair_scores(np.zeros((0, 4)), [])
    assert len(genuine) == len(impostor) == 0


def test_pair_scores_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="one label per row"):
        pair_scores(np.eye(3), ["a", "b"])


# ---- open-set identification -------------------------------------------------------------------------------------

GALLERY = ["A", "B", "C"]
PROBES = ["A", "A", "B", "D"]
SCORES = np.array(
    [
        [0.9, 0.3, 0.2],  # A: right at 0.9; without A the best is 0.3
        [0.4, 0.5, 0.1],  # A: B wins, a miss; without A the best is 0.5
        [0.2, 0.55, 0.1],  # B: right at 0.55; without B the best is 0.2
        [0.6, 0.1, 0.2],  # D is not enrolled: only a non-mated search, top 0.6
    ]
)


def test_open_set_scores() -> None:
    mated_top, mated_hit, non_mated_top = open_set_scores(SCORES, PROBES, GALLERY)
    assert mated_top.tolist() == [0.9, 0.5, 0.55]
    assert mated_hit.tolist() == [True, False, True]
    assert non_mated_top.tolist() == [0.3, 0.5, 0.2, 0.6]


def test_a_tie_is_not_an_identification() -> None:
    _top, hit, _non_mated = open_set_scores(np.array([[0.5, 0.5]]), ["A"], ["A", "B"])
    assert hit.tolist() == [False]


def test_a_gallery_of_only_the_probes_person_has_no_non_mated_search() -> None:
    top, hit, non_mated = open_set_scores(np.array([[0.7]]), ["A"], ["A"])
    assert top.tolist() == [0.7]
    assert hit.tolist() == [True]
    assert len(non_mated) == 0


def test_gallery_labels_must_be_distinct() -> None:
    with pytest.raises(ValueError, match="one gallery template per person"):
        open_set_scores(np.zeros((1, 2)), ["A"], ["A", "A"])


def vectors_for(scores: np.ndarray) -> np.ndarray:
    """Unit rows whose gallery x probe cosines are `scores`: gallery = basis vectors, probes carry the rest."""
    probes, gallery = scores.shape
    rest = np.sqrt(1 - (scores**2).sum(axis=1))
    probe_rows = np.hstack([scores, np.diag(rest)])
    gallery_rows = np.hstack([np.eye(gallery), np.zeros((gallery, probes))])
    return np.vstack([gallery_rows, probe_rows])


@pytest.mark.parametrize(
    ("target", "threshold", "accepted", "fnir"),
    [
        # Non-mated tops, highest first: 0.6, 0.5, 0.3, 0.2 (four searches).
        (0.2, above(0.6), 0, 2 / 3),  # 0 allowed: B's 0.55 is now below the threshold too
        (0.25, above(0.5), 1, 1 / 3),  # 1 allowed (0.6): only the second A probe misses
        (0.5, above(0.3), 2, 1 / 3),
    ],
)
def test_open_set(target: float, threshold: float, accepted: int, fnir: float) -> None:
    rows = vectors_for(SCORES)
    labels = [*GALLERY, *PROBES]
    enrollable = [True] * 6 + [False]  # D has no enrollable image, so is not in the gallery
    result = open_set(rows, labels, enrollable, target_fpir=target)
    assert (result.gallery_size, result.not_enrolled, result.mated, result.non_mated) == (3, 1, 3, 4)
    assert result.rank1 == pytest.approx(2 / 3)
    assert result.fpir.threshold == pytest.approx(threshold, abs=1e-12)
    assert result.fpir.accepted == accepted
    assert result.fpir.achieved == accepted / 4
    assert result.fnir == pytest.approx(fnir)


def test_gallery_is_the_first_enrollable_image() -> None:
    labels = ["A", "A", "A", "B", "C", "C"]
    enrollable = [False, True, True, True, False, False]
    assert choose_gallery(labels, enrollable) == {"A": 1, "B": 3}


def test_open_set_needs_mated_and_non_mated_searches() -> None:
    eye = np.eye(3)
    with pytest.raises(ValueError, match="no mated searches"):
        open_set(eye, ["A", "B", "C"], [True, True, True])
    with pytest.raises(ValueError, match="single person"):
        open_set(eye, ["A", "A", "A"], [True, True, True])
    with pytest.raises(ValueError, match="nobody has an enrollable image"):
        open_set(eye, ["A", "B", "C"], [False, False, False])
