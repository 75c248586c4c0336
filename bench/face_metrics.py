"""Face recognition accuracy from embeddings and labels: verification (1:1) and open-set identification (1:N).

Pure numpy. Scores are cosines of L2-normalised embeddings; a comparison is *accepted* when its score is at
or above the threshold (`score >= threshold`), the rule the terminals apply.

Empirical thresholds at a target rate follow one rule everywhere: with `n` negative scores (impostor pairs,
or non-mated searches) and a target rate `r`, at most `k = floor(r * n)` of them may be accepted, and the
threshold is the *smallest* value that accepts at most `k`: just above (one float64 step) the (k+1)-th
highest negative score. A small sample cannot show rates below `1 / n`: the achieved rate is reported next
to the target, together with `k`, so the granularity is visible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Scores = npt.NDArray[np.float64]

_RATE_EPS = 1e-9
"""Guards floor(r * n) against 0.29 * 100 == 28.999999999999996."""


@dataclass(frozen=True)
class RateThreshold:
    """An empirical threshold at a target false-accept rate over `negatives` scores."""

    threshold: float
    target: float
    negatives: int
    allowed: int
    """floor(target * negatives): how many negative scores may be at or above the threshold."""
    accepted: int
    """How many actually are (<= allowed; fewer when scores tie)."""

    @property
    def achieved(self) -> float:
        """The false-accept rate the threshold gives on this sample."""
        return self.accepted / self.negatives


def _as_scores(values: npt.ArrayLike, what: str) -> Scores:
    scores = np.asarray(values, dtype=np.float64).reshape(-1)
    if not len(scores):
        raise ValueError(f"no {what} scores")
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"{what} scores must be finite")
    return scores


def threshold_at_rate(negatives: npt.ArrayLike, rate: float) -> RateThreshold:
    """The smallest threshold at which at most floor(rate x n) of the `negatives` scores are >= it."""
    if not 0 < rate < 1:
        raise ValueError("a rate is between 0 and 1 (exclusive)")
    scores = _as_scores(negatives, "negative")
    allowed = math.floor(rate * len(scores) + _RATE_EPS)  # < len(scores) since rate < 1
    ordered = np.sort(scores)[::-1]
    threshold = float(np.nextafter(ordered[allowed], np.inf))
    accepted = int(np.count_nonzero(scores >= threshold))
    return RateThreshold(threshold=threshold, target=rate, negatives=len(scores), allowed=allowed, accepted=accepted)


# ---- verification ------------------------------------------------------------------------------------------------


def pair_scores(vectors: npt.ArrayLike, labels: Sequence[str]) -> tuple[Scores, Scores]:
    """Cosines of every unordered pair of rows: (genuine = same label, impostor = different labels)."""
    matrix = np.asarray(vectors, dtype=np.float64)
    if matrix.ndim != 2 or len(matrix) != len(labels):
        raise ValueError("vectors must be (n, dim) with one label per row")
    names = np.asarray(labels, dtype=object)
    upper = np.triu_indices(len(matrix), k=1)
    cosines = (matrix @ matrix.T)[upper]
    same = names[upper[0]] == names[upper[1]]
    return cosines[same], cosines[~same]


def tar_at_far(genuine: npt.ArrayLike, impostor: npt.ArrayLike, far: float) -> tuple[float, float]:
    """(TAR, threshold): the share of genuine scores >= the empirical threshold at `far` (see module doc)."""
    threshold = threshold_at_rate(impostor, far).threshold
    return tar_at(genuine, threshold), threshold


def tar_at(genuine: npt.ArrayLike, threshold: float) -> float:
    """The share of genuine scores at or above `threshold` (true-accept rate)."""
    scores = _as_scores(genuine, "genuine")
    return float(np.count_nonzero(scores >= threshold)) / len(scores)


def far_at(impostor: npt.ArrayLike, threshold: float) -> float:
    """The share of impostor scores at or above `threshold` (false-accept rate)."""
    scores = _as_scores(impostor, "impostor")
    return float(np.count_nonzero(scores >= threshold)) / len(scores)


def eer(genuine: npt.ArrayLike, impostor: npt.ArrayLike) -> tuple[float, float]:
    """(EER, threshold): the least, over thresholds, of max(FAR, FRR), and the smallest threshold reaching it.

    FAR(t) is the share of impostor scores >= t, FRR(t) the share of genuine scores < t. Candidate thresholds
    are every observed score and one step above the highest (where FAR is 0 and FRR 1). Taking the larger of
    the two rates where the curves cross makes the figure an upper bound of the crossing point, exact on
    large samples and well defined on tiny ones: 0 when the two sets are separated.
    """
    gen = np.sort(_as_scores(genuine, "genuine"))
    imp = np.sort(_as_scores(impostor, "impostor"))
    candidates = np.unique(np.concatenate([gen, imp, [np.nextafter(max(gen[-1], imp[-1]), np.inf)]]))
    far = (len(imp) - np.searchsorted(imp, candidates, side="left")) / len(imp)
    frr = np.searchsorted(gen, candidates, side="left") / len(gen)
    worst = np.maximum(far, frr)
    best = int(np.argmin(worst))  # argmin returns the first, i.e. the smallest threshold
    return float(worst[best]), float(candidates[best])


def fit_impostors(impostor: npt.ArrayLike) -> tuple[float, float]:
    """(mean, standard deviation with ddof=1) of impostor scores: the normal fit `face.calibration` keeps."""
    scores = _as_scores(impostor, "impostor")
    if len(scores) < 2:
        raise ValueError("a spread needs at least two impostor scores")
    return float(scores.mean()), float(scores.std(ddof=1))


# ---- open-set identification -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenSet:
    """Open-set identification figures against a gallery of one template per enrolled person."""

    gallery_size: int
    not_enrolled: int
    """People with no enrollable image, so not in the gallery (their probes are only non-mated searches)."""
    mated: int
    """Searches of a probe whose person is in the gallery."""
    non_mated: int
    """Searches of a probe against the gallery without its own person."""
    rank1: float
    """Share of mated searches whose best-scoring gallery entry is the probe's own person."""
    fpir: RateThreshold
    """The threshold at the target FPIR, with the achieved FPIR over the non-mated searches."""
    fnir: float
    """Share of mated searches where the own person is not top-1 with a score >= the threshold."""


def choose_gallery(labels: Sequence[str], enrollable: Sequence[bool]) -> dict[str, int]:
    """Person -> row of their gallery template: the first enrollable row of each person, in the given order."""
    if len(labels) != len(enrollable):
        raise ValueError("one enrollable flag per row")
    gallery: dict[str, int] = {}
    for row, (label, ok) in enumerate(zip(labels, enrollable, strict=True)):
        if ok and label not in gallery:
            gallery[label] = row
    return gallery


def open_set_scores(
    scores: npt.ArrayLike, probe_labels: Sequence[str], gallery_labels: Sequence[str]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_], Scores]:
    """From a probe x gallery score matrix: (mated top-1 scores, mated top-1 correct, non-mated top-1 scores).

    Gallery labels are distinct (one template per person). A probe whose person is in the gallery gives one
    mated search (correct when its own score is strictly above every other entry; a tie is no identification)
    and one non-mated search over the other entries (none when the gallery holds only its own person). A probe
    whose person is not in the gallery gives one non-mated search over the whole gallery.
    """
    matrix = np.asarray(scores, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape != (len(probe_labels), len(gallery_labels)):
        raise ValueError("scores must be (probes, gallery) matching the labels")
    if len(set(gallery_labels)) != len(gallery_labels):
        raise ValueError("one gallery template per person")
    column = {label: index for index, label in enumerate(gallery_labels)}
    mated_top: list[float] = []
    mated_hit: list[bool] = []
    non_mated_top: list[float] = []
    for row, label in zip(matrix, probe_labels, strict=True):
        own = column.get(label)
        if own is None:
            if len(row):
                non_mated_top.append(float(row.max()))
            continue
        others = np.delete(row, own)
        best_other = float(others.max()) if len(others) else -math.inf
        mated_top.append(max(float(row[own]), best_other))
        mated_hit.append(bool(row[own] > best_other))
        if len(others):
            non_mated_top.append(best_other)
    return np.asarray(mated_top), np.asarray(mated_hit, dtype=bool), np.asarray(non_mated_top)


def open_set(
    vectors: npt.ArrayLike, labels: Sequence[str], enrollable: Sequence[bool], target_fpir: float = 0.003
) -> OpenSet:
    """Rank-1 rate, and FNIR at the threshold giving `target_fpir`, with a one-image-per-person gallery.

    The gallery is each person's first enrollable row (pass rows in sorted path order); every other row is a
    probe (see `open_set_scores`). The threshold is the smallest at which the share of non-mated searches with
    a top score >= it is at most the target (module doc); FNIR counts mated searches that are not top-1 or are
    top-1 below the threshold.
    """
    matrix = np.asarray(vectors, dtype=np.float64)
    gallery = choose_gallery(labels, enrollable)
    if not gallery:
        raise ValueError("nobody has an enrollable image")
    gallery_labels = list(gallery)
    gallery_rows = set(gallery.values())
    probe_rows = [row for row in range(len(labels)) if row not in gallery_rows]
    scores = matrix[probe_rows] @ matrix[list(gallery.values())].T
    mated_top, mated_hit, non_mated_top = open_set_scores(scores, [labels[r] for r in probe_rows], gallery_labels)
    if not len(mated_top):
        raise ValueError("no mated searches: nobody enrolled has a second image")
    if not len(non_mated_top):
        raise ValueError("no non-mated searches: the gallery holds a single person")
    fpir = threshold_at_rate(non_mated_top, target_fpir)
    identified = mated_hit & (mated_top >= fpir.threshold)
    return OpenSet(
        gallery_size=len(gallery),
        not_enrolled=len(set(labels) - set(gallery)),
        mated=len(mated_top),
        non_mated=len(non_mated_top),
        rank1=float(mated_hit.mean()),
        fpir=fpir,
        fnir=1.0 - float(identified.mean()),
    )
