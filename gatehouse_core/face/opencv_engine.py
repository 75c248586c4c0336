"""OpenCV Zoo models through OpenCV's DNN module: the YuNet detector (MIT) and the SFace recognizer (Apache-2.0).

The licence-clean choice for commercial deployments (InsightFace's pretrained weights are for non-commercial
research only). Embeddings are 128-d.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from gatehouse_core.face.align import align_crop, scaled_to
from gatehouse_core.face.modelfiles import model_id, pick
from gatehouse_core.face.types import Detection, FaceEngineError, Image, Vector, unit_vector

_NMS_IOU = 0.3
_TOP_K = 50


class OpenCvFaceModel:
    """YuNet + SFace, on the CPU."""

    engine = "opencv"
    enroll_score = 0.8

    def __init__(
        self,
        model_dir: Path,
        *,
        detector: str | None = None,
        recognizer: str | None = None,
        score_threshold: float = 0.5,
        threads: int = 1,
    ) -> None:
        det_path = pick(model_dir, detector, ("face_detection_yunet*.onnx",), "face detector", "detector")
        rec_path = pick(model_dir, recognizer, ("face_recognition_sface*.onnx",), "face recognizer", "recognizer")
        self.score_threshold = score_threshold
        cv2.setNumThreads(threads)
        try:
            self._det = cv2.FaceDetectorYN.create(str(det_path), "", (320, 320), score_threshold, _NMS_IOU, _TOP_K)
            self._rec = cv2.FaceRecognizerSF.create(str(rec_path), "")
        except cv2.error as exc:
            raise FaceEngineError(f"cannot load the OpenCV face models in {model_dir}: {exc}") from exc
        self._input_size = (320, 320)
        self.dim = 128
        self.model_id = model_id(rec_path)

    def detect(self, image: Image, max_side: int) -> list[Detection]:
        """Faces in `image`, best first, detected on a copy scaled to `max_side` on its longer side."""
        resized, scale = scaled_to(image, max_side)
        new_h, new_w = resized.shape[:2]
        if self._input_size != (new_w, new_h):
            self._det.setInputSize((new_w, new_h))
            self._input_size = (new_w, new_h)
        _count, rows = self._det.detect(resized)
        found = []
        for row in rows if rows is not None else ():
            points = np.asarray(row[4:14], dtype=np.float32).reshape(5, 2) / scale
            # YuNet names eyes and mouth corners from the subject's view; order them as they appear in the image.
            eyes = points[np.argsort(points[:2, 0])]
            mouth = points[3:][np.argsort(points[3:, 0])]
            landmarks = np.vstack([eyes, points[2:3], mouth]).astype(np.float32)
            x, y, w, h = (float(v) / scale for v in row[:4])
            found.append(Detection(box=(x, y, x + w, y + h), score=float(row[14]), landmarks=landmarks))
        found.sort(key=lambda d: d.score, reverse=True)
        return found

    def aligned(self, image: Image, face: Detection) -> Image:
        """The 112x112 crop SFace expects (the same reference points as OpenCV's own alignCrop)."""
        return align_crop(image, face.landmarks)

    def embed(self, image: Image, face: Detection) -> Vector:
        """The normalised 128-d embedding of `face`."""
        return unit_vector(self._rec.feature(self.aligned(image, face)))
