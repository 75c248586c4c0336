"""InsightFace models through onnxruntime: the SCRFD detector and an ArcFace recognizer (512-d).

The pack is a directory such as InsightFace's buffalo_s (det_500m.onnx + w600k_mbf.onnx) or buffalo_l
(det_10g.onnx + w600k_r50.onnx). InsightFace's pretrained weights are licensed for non-commercial research
only; see the README before deploying them.

SCRFD's output decoding (anchor centres per stride, distances to box edges and landmark offsets, then
non-maximum suppression) follows the published model; the `insightface` package itself is not a dependency
because it pins the GUI build of OpenCV and scikit-image, which a door terminal should not carry.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from gatehouse_core.face.align import align_crop, scaled_to
from gatehouse_core.face.modelfiles import model_id, pick
from gatehouse_core.face.types import Detection, FaceEngineError, Image, Vector, unit_vector

_STRIDES = (8, 16, 32)
_ANCHORS_PER_CELL = 2
_NMS_IOU = 0.4


def _session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors for unreadable files
        raise FaceEngineError(f"cannot load face model {path}: {exc}") from exc


class InsightFaceModel:
    """SCRFD + ArcFace, on the CPU."""

    engine = "insightface"
    enroll_score = 0.6

    def __init__(
        self,
        model_dir: Path,
        *,
        detector: str | None = None,
        recognizer: str | None = None,
        score_threshold: float = 0.5,
        threads: int = 1,
    ) -> None:
        det_path = pick(model_dir, detector, ("det_*.onnx", "scrfd*.onnx"), "face detector", "detector")
        rec_path = pick(
            model_dir, recognizer, ("w600k_*.onnx", "glint*.onnx", "*arcface*.onnx"), "face recognizer", "recognizer"
        )
        self.score_threshold = score_threshold
        self._det = _session(det_path, threads)
        self._rec = _session(rec_path, threads)
        self._det_input = self._det.get_inputs()[0].name
        self._rec_input = self._rec.get_inputs()[0].name
        outputs = len(self._det.get_outputs())
        if outputs != 9:
            raise FaceEngineError(
                f"{det_path.name} is not an SCRFD detector with landmarks (it has {outputs} outputs, expected 9)"
            )
        self.dim = int(self._rec.get_outputs()[0].shape[-1])
        self.model_id = model_id(rec_path)
        self._centres: dict[tuple[int, int, int], npt.NDArray[np.float32]] = {}

    # ---- detection ----------------------------------------------------------------------------------------------

    def detect(self, image: Image, max_side: int) -> list[Detection]:
        """Faces in `image`, best first, detected on a copy scaled to `max_side` on its longer side."""
        resized, scale = scaled_to(image, max_side)
        new_h, new_w = resized.shape[:2]
        # The network needs sides that are multiples of its largest stride; pad right and bottom.
        pad_w, pad_h = -(-new_w // 32) * 32, -(-new_h // 32) * 32
        canvas = np.zeros((pad_h, pad_w, 3), dtype=np.uint8)
        canvas[:new_h, :new_w] = resized
        blob = cv2.dnn.blobFromImage(canvas, 1.0 / 128.0, (pad_w, pad_h), (127.5, 127.5, 127.5), swapRB=True)
        outputs = self._det.run(None, {self._det_input: blob})
        boxes, scores, points = self._decode(outputs, pad_h, pad_w)
        if not len(scores):
            return []
        keep = cv2.dnn.NMSBoxes(
            [[float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])] for b in boxes],
            scores.tolist(),
            self.score_threshold,
            _NMS_IOU,
        )
        found = []
        for index in np.asarray(keep, dtype=int).reshape(-1):
            box = boxes[index] / scale
            found.append(
                Detection(
                    box=(float(box[0]), float(box[1]), float(box[2]), float(box[3])),
                    score=float(scores[index]),
                    landmarks=(points[index] / scale).astype(np.float32),
                )
            )
        found.sort(key=lambda d: d.score, reverse=True)
        return found

    def _decode(
        self, outputs: list[npt.NDArray[np.float32]], height: int, width: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        boxes, scores, points = [], [], []
        for level, stride in enumerate(_STRIDES):
            level_scores = outputs[level].reshape(-1)
            chosen = np.nonzero(level_scores >= self.score_threshold)[0]
            if not len(chosen):
                continue
            centres = self._anchor_centres(height // stride, width // stride, stride)[chosen]
            distances = outputs[level + 3].reshape(-1, 4)[chosen] * stride
            offsets = outputs[level + 6].reshape(-1, 10)[chosen] * stride
            boxes.append(np.hstack([centres - distances[:, :2], centres + distances[:, 2:]]))
            points.append(offsets.reshape(-1, 5, 2) + centres[:, None, :])
            scores.append(level_scores[chosen])
        if not scores:
            empty = np.zeros((0,), dtype=np.float32)
            return empty.reshape(0, 4), empty, empty.reshape(0, 5, 2)
        return (
            np.concatenate(boxes).astype(np.float32),
            np.concatenate(scores).astype(np.float32),
            np.concatenate(points).astype(np.float32),
        )

    def _anchor_centres(self, rows: int, cols: int, stride: int) -> npt.NDArray[np.float32]:
        key = (rows, cols, stride)
        centres = self._centres.get(key)
        if centres is None:
            ys, xs = np.mgrid[:rows, :cols]
            grid = (np.stack([xs, ys], axis=-1).reshape(-1, 2) * stride).astype(np.float32)
            centres = np.repeat(grid, _ANCHORS_PER_CELL, axis=0)
            if len(self._centres) < 32:
                self._centres[key] = centres
        return centres

    # ---- recognition --------------------------------------------------------------------------------------------

    def aligned(self, image: Image, face: Detection) -> Image:
        """The 112x112 ArcFace crop of `face`."""
        return align_crop(image, face.landmarks)

    def embed(self, image: Image, face: Detection) -> Vector:
        """The normalised 512-d embedding of `face`."""
        crop = self.aligned(image, face)
        blob = cv2.dnn.blobFromImage(crop, 1.0 / 127.5, (112, 112), (127.5, 127.5, 127.5), swapRB=True)
        return unit_vector(self._rec.run(None, {self._rec_input: blob})[0][0])
