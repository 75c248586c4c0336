"""Embeddings of a labelled face folder, through the same pipeline enrollment uses (bytes -> decode -> detect -> embed).

A labelled folder has one sub-folder per person holding that person's photos (.jpg, .jpeg, .png, .webp or .bmp,
any case; other files and deeper folders are ignored). Each file's bytes go through `decode_photo` with the
enrollment limits, so unreadable or oversized files are counted rather than crashing the run. BMP files are
listed as images but the enrollment decoder accepts only JPEG, PNG and WebP, so they count as unreadable.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from gatehouse_core.face.config import FaceEngineConfig
from gatehouse_core.face.enroll import PhotoLimits
from gatehouse_core.face.photo import PhotoError, decode_photo
from gatehouse_core.face.quality import DETECT_SIDE, QualityLimits, QualityRejected, check_enrollment
from gatehouse_core.face.types import Detection, FaceModel, Image, Vector

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})


def find_shared() -> Path:
    """The shared folder (models/, data/faces-dev/): $GATEHOUSE_SHARED, else next to the repository.

    A clone elsewhere (a CI checkout in /tmp, say) falls back to /work/shared, where this project's machines
    keep it.
    """
    candidates = [Path(os.environ["GATEHOUSE_SHARED"])] if os.environ.get("GATEHOUSE_SHARED") else []
    candidates += [Path(__file__).resolve().parents[2] / "shared", Path("/work/shared")]
    for candidate in candidates:
        if (candidate / "models").is_dir():
            return candidate
    return candidates[0]


SHARED = find_shared()
"""The shared folder next to the repository (models and face data)."""

DEFAULT_MODEL_DIRS = {"insightface": SHARED / "models" / "buffalo_s", "opencv": SHARED / "models" / "opencv_zoo"}

SUBJECT_MIN_SHARE = 0.5
"""A face counts as a candidate subject if its size is at least this share of the largest face's."""


@dataclass
class FolderEmbeddings:
    """One embedding per image where a face was found, with its person and whether it passes enrollment."""

    labels: list[str]
    paths: list[Path]
    vectors: npt.NDArray[np.float32]
    """(n, dim) L2-normalised float32, one row per image with a face, in sorted (person, file) order."""
    enrollable: list[bool]
    """Per row: the image passes the enrollment quality gates (`check_enrollment`, default limits)."""
    no_face: list[Path]
    rejected: dict[str, int]
    """Quality reason -> number of images failing enrollment for it, over all images (incl. unreadable, no face)."""
    model_id: str
    dim: int
    seconds_per_image: float
    """Wall time per image for reading, decoding, detecting, gating and embedding."""
    unreadable: list[Path] = field(default_factory=list)
    """Images `decode_photo` refused (unreadable or too large); they have no row."""
    other_face_gated: int = 0
    """Rows whose embedded face (nearest the centre) is not the face the enrollment gates judged (the largest)."""

    @property
    def images(self) -> int:
        """Image files seen."""
        return len(self.paths) + len(self.no_face) + len(self.unreadable)

    @property
    def people(self) -> int:
        """Persons with at least one image file."""
        return len({path.parent.name for path in (*self.paths, *self.no_face, *self.unreadable)})


class _Detected:
    """A FaceModel whose `detect` answers with faces already found, so the gates do not detect a second time."""

    def __init__(self, model: FaceModel, faces: list[Detection]) -> None:
        self._model = model
        self._faces = faces
        self.engine = model.engine
        self.model_id = model.model_id
        self.dim = model.dim
        self.enroll_score = model.enroll_score

    def detect(self, image: Image, max_side: int) -> list[Detection]:
        """The faces found before for DETECT_SIDE; other sizes go to the model."""
        if max_side == DETECT_SIDE:
            return list(self._faces)
        return self._model.detect(image, max_side)

    def embed(self, image: Image, face: Detection) -> Vector:
        """The wrapped model's embedding."""
        return self._model.embed(image, face)

    def aligned(self, image: Image, face: Detection) -> Image:
        """The wrapped model's aligned crop."""
        return self._model.aligned(image, face)


def person_images(faces_dir: Path) -> list[tuple[str, Path]]:
    """(person, image path) for every image file one level down, sorted by person then file name."""
    if not faces_dir.is_dir():
        raise FileNotFoundError(f"{faces_dir} is not a folder")
    found = []
    for person in sorted(p for p in faces_dir.iterdir() if p.is_dir()):
        for path in sorted(person.iterdir()):
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
                found.append((person.name, path))
    return found


def pick_subject(faces: list[Detection], height: int, width: int) -> Detection:
    """The photo's subject: among faces at least SUBJECT_MIN_SHARE of the largest one's size, the nearest the centre.

    Size is `Detection.size` (shorter box side); distance is Euclidean from the box centre to the image centre;
    ties go to the larger face, then the higher score. LFW-style crops put the labelled person in the middle,
    while a bystander's face can be as large or larger at an edge.
    """
    if not faces:
        raise ValueError("no faces")
    largest = max(face.size for face in faces)
    cx, cy = width / 2, height / 2

    def rank(face: Detection) -> tuple[float, float, float]:
        fx, fy = face.centre
        return (fx - cx) ** 2 + (fy - cy) ** 2, -face.size, -face.score

    return min((face for face in faces if face.size >= SUBJECT_MIN_SHARE * largest), key=rank)


def load_model(engine: str, model_dir: Path | None = None) -> FaceModel:
    """The engine's models from `model_dir`, or from the shared models folder."""
    if engine not in DEFAULT_MODEL_DIRS:
        raise ValueError(f"unknown engine {engine!r}: choose {' or '.join(DEFAULT_MODEL_DIRS)}")
    folder = model_dir if model_dir is not None else DEFAULT_MODEL_DIRS[engine]
    return FaceEngineConfig.model_validate({"engine": engine, "model_dir": folder}).load()


def embed_folder(
    faces_dir: Path, engine: str, model_dir: Path | None = None, *, model: FaceModel | None = None
) -> FolderEmbeddings:
    """Decode, detect (at DETECT_SIDE), gate and embed every image of a labelled folder (see the module doc).

    `model`, if given, is used instead of loading `engine`'s models from `model_dir`.
    """
    model = model if model is not None else load_model(engine, model_dir)
    limits = QualityLimits()
    photo = PhotoLimits()
    labels: list[str] = []
    paths: list[Path] = []
    vectors: list[Vector] = []
    enrollable: list[bool] = []
    no_face: list[Path] = []
    unreadable: list[Path] = []
    rejected: Counter[str] = Counter()
    other_face_gated = 0
    files = person_images(faces_dir)
    started = time.perf_counter()
    for person, path in files:
        try:
            image = decode_photo(path.read_bytes(), max_bytes=photo.max_bytes, max_pixels=photo.max_pixels)
        except PhotoError as exc:
            rejected[exc.reason] += 1
            unreadable.append(path)
            continue
        # As the gates do: a face filling a small photo is found on a second look at half the size.
        faces = model.detect(image, DETECT_SIDE) or model.detect(image, DETECT_SIDE // 2)
        try:
            gated, _report = check_enrollment(_Detected(model, faces), image, limits)
        except QualityRejected as exc:
            rejected[exc.reason.value] += 1
            gated = None
        if not faces:
            no_face.append(path)
            continue
        subject = pick_subject(faces, image.shape[0], image.shape[1])
        if gated is not None and gated is not subject:
            other_face_gated += 1
        labels.append(person)
        paths.append(path)
        vectors.append(model.embed(image, subject))
        enrollable.append(gated is not None)
    elapsed = time.perf_counter() - started
    matrix = np.asarray(vectors, dtype=np.float32).reshape(len(vectors), model.dim)
    return FolderEmbeddings(
        labels=labels,
        paths=paths,
        vectors=matrix,
        enrollable=enrollable,
        no_face=no_face,
        rejected=dict(sorted(rejected.items())),
        model_id=model.model_id,
        dim=model.dim,
        seconds_per_image=elapsed / len(files) if files else 0.0,
        unreadable=unreadable,
        other_face_gated=other_face_gated,
    )
