"""The [face] section of server and terminal config files: which engine, where its models are, how strict."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gatehouse_core.configfile import StrictModel
from gatehouse_core.configtypes import ConfigPath
from gatehouse_core.face.calibration import KNOWN_MODELS, ImpostorScores, ThresholdPolicy
from gatehouse_core.face.types import FaceEngineError, FaceModel


class FaceEngineConfig(StrictModel):
    """The face engine: detector and recognizer files, and the matching policy."""

    engine: Literal["insightface", "opencv"] = Field(
        description="'opencv' (YuNet + SFace, MIT / Apache-2.0) or 'insightface' (SCRFD + ArcFace; InsightFace's "
        "pretrained weights are for non-commercial research only)."
    )
    model_dir: ConfigPath = Field(description="Folder with the engine's model files (.onnx).")
    detector: str | None = Field(None, description="Detector file name in model_dir, if there are several.")
    recognizer: str | None = Field(None, description="Recognizer file name in model_dir, if there are several.")
    threads: int = Field(1, ge=1, le=16, description="CPU threads each model may use.")
    target_far: float = Field(
        1e-4, gt=0, lt=0.1, description="False-match rate per comparison (a stranger against one template)."
    )
    target_fpir: float = Field(
        0.003,
        gt=0,
        lt=0.1,
        description="False-match rate per search at the door (a stranger matched to anyone); the threshold "
        "rises with the number of templates held so that this holds.",
    )
    min_margin: float = Field(
        0.05, ge=0, le=1, description="Least lead of the best person over the second; closer calls are refused."
    )
    calibration: dict[str, ImpostorScores] = Field(
        default_factory=dict,
        description="Impostor score distributions by model id, measured with bench.face_accuracy; the built-in "
        "ones cover the two models of the README.",
    )

    def load(self) -> FaceModel:
        """Load the models (seconds); raises FaceEngineError with what to fix."""
        if self.engine == "insightface":
            from gatehouse_core.face.insightface_engine import InsightFaceModel  # onnxruntime only where it runs

            return InsightFaceModel(
                self.model_dir, detector=self.detector, recognizer=self.recognizer, threads=self.threads
            )
        from gatehouse_core.face.opencv_engine import OpenCvFaceModel

        return OpenCvFaceModel(self.model_dir, detector=self.detector, recognizer=self.recognizer, threads=self.threads)

    def policy(self, model_id: str) -> ThresholdPolicy:
        """Thresholds for a model; a model nobody calibrated cannot be used (its scores mean nothing yet)."""
        impostors = self.calibration.get(model_id) or KNOWN_MODELS.get(model_id)
        if impostors is None:
            raise FaceEngineError(
                f"face model {model_id} is not calibrated: run `python -m bench.face_accuracy --faces DIR` on a "
                f'labelled face folder and add face.calibration."{model_id}" = {{ mean = ..., std = ... }}'
            )
        return ThresholdPolicy(impostors=impostors, target_far=self.target_far, target_fpir=self.target_fpir)
