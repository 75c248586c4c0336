"""Cosine thresholds from target false-match rates, per recognizer model.

A model's impostor scores (different people) are close to normal; we keep their mean and standard deviation
per model id, measured on a labelled face folder (`python -m bench.face_accuracy`), and derive thresholds
from them. This reaches rates far below what a small folder can measure directly: with N templates on a
terminal, a stranger is wrongly matched to *someone* with a probability near N x the per-comparison rate, so
the terminal asks for FPIR / N per comparison. The normal tail is checked against the empirical quantiles
down to 1e-4 on faces-dev (see README); below that it is an extrapolation.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

from pydantic import Field

from gatehouse_core.configfile import StrictModel


class ImpostorScores(StrictModel):
    """The impostor score distribution of one recognizer model."""

    mean: float = Field(ge=-1, le=1, description="Mean cosine of two different people's embeddings.")
    std: float = Field(gt=0, le=1, description="Its standard deviation.")
    source: str = Field("", description="Where it was measured (folder, number of pairs).")


KNOWN_MODELS: dict[str, ImpostorScores] = {
    # Measured with `python -m bench.face_accuracy` on shared/data/faces-dev (67 people, 403 faces, ~76,000
    # impostor pairs); see README for the figures and how to calibrate on your own folder.
    "w600k_mbf-9cc6e4a75f0e": ImpostorScores(mean=0.0121, std=0.0649, source="faces-dev, 76031 impostor pairs"),
    "face_recognition_sface_2021dec-0ba9fbfa01b5": ImpostorScores(
        mean=0.1024, std=0.0840, source="faces-dev, 76358 impostor pairs"
    ),
}


@dataclass(frozen=True)
class ThresholdPolicy:
    """How strict face matching is: per-comparison and per-search false-match targets for one model."""

    impostors: ImpostorScores
    target_far: float
    """Per comparison (1:1): the chance a stranger's face scores above the threshold against one template."""
    target_fpir: float
    """Per search (1:N): the chance a stranger is matched to anyone on the terminal."""
    floor: float = 0.0
    """Never below this cosine, whatever the rates say."""

    def threshold(self, gallery_size: int = 1) -> float:
        """The cosine threshold for a search over `gallery_size` templates."""
        rate = min(self.target_far, self.target_fpir / max(gallery_size, 1))
        return max(self.floor, threshold_at(self.impostors, rate))


def threshold_at(impostors: ImpostorScores, false_match_rate: float) -> float:
    """The cosine above which a share `false_match_rate` of impostor comparisons fall."""
    if not 0 < false_match_rate < 1:
        raise ValueError("a false-match rate is between 0 and 1")
    return impostors.mean + impostors.std * NormalDist().inv_cdf(1 - false_match_rate)
