"""A face-enabled terminal roster for benchmarks: real faces-dev people enrolled, synthetic fill up to N.

Real people are enrolled from their first photo through the enrollment pipeline (`template_from_photo`); every
fourth person (sorted by name) is held out as a stranger. Fill templates are random unit vectors: they cost the
search exactly what real templates do, but score lower against real faces than real strangers would, so they
say nothing about accuracy at N. Door-camera frames are made in memory from the photos (640x480, the person
close to the camera), as tests/support/faces.py does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from bench.face_data import SHARED, person_images
from gatehouse_core.face.enroll import template_from_photo, vector_to_bytes
from gatehouse_core.face.quality import QualityRejected
from gatehouse_core.face.types import FaceModel, Image
from gatehouse_core.sealed import seal
from gatehouse_core.wire.records import (
    DoorRecord,
    GroupRecord,
    PersonRecord,
    SiteRecord,
    TemplateRecord,
    template_context,
)
from terminals.store import TerminalStore

FACES_DIR = SHARED / "data" / "faces-dev"
DOOR = 1
FRAME_W, FRAME_H = 640, 480
HOLD_OUT_EVERY = 4
BATCH = 1000


@dataclass(frozen=True)
class Cast:
    """The real people of a run: enrolled (with their template and probe photos) and held-out strangers."""

    enrolled: list[tuple[str, npt.NDArray[np.float32], list[Path]]]
    """(name, template vector, photos other than the enrolled one)."""
    strangers: list[tuple[str, list[Path]]]
    """(name, photos) of people never enrolled."""
    rejected: list[str]
    """People whose first photo failed the enrollment gates (left out entirely)."""


def enrol_cast(model: FaceModel, faces_dir: Path = FACES_DIR) -> Cast:
    """Enrol every person with a second photo to probe with, except every HOLD_OUT_EVERY-th (strangers)."""
    photos: dict[str, list[Path]] = {}
    for person, path in person_images(faces_dir):
        photos.setdefault(person, []).append(path)
    enrolled, strangers, rejected = [], [], []
    for n, (person, files) in enumerate(sorted(photos.items())):
        if n % HOLD_OUT_EVERY == HOLD_OUT_EVERY - 1:
            strangers.append((person, files))
            continue
        if len(files) < 2:
            continue
        try:
            enrollment = template_from_photo(model, files[0].read_bytes())
        except QualityRejected:
            rejected.append(person)
            continue
        enrolled.append((person, enrollment.vector, files[1:]))
    return Cast(enrolled=enrolled, strangers=strangers, rejected=rejected)


def pseudonym_of(index: int) -> str:
    """The pseudonym of roster entry `index`."""
    return f"p-{index:016x}"


def build_face_store(
    path: Path,
    size: int,
    real: list[npt.NDArray[np.float32]],
    model_id: str,
    seal_key: bytes,
    seed: int = 7,
) -> list[str]:
    """A terminal store of `size` people with one sealed template each; returns the pseudonyms of `real`, in order.

    The real templates are scattered over the roster; the rest are synthetic unit vectors of the same length.
    """
    if not real:
        raise ValueError("no real templates to place")
    if size < len(real):
        raise ValueError(f"a roster of {size} cannot hold the {len(real)} real people")
    rng = np.random.default_rng(seed)
    dim = len(real[0])
    slots = rng.choice(size, size=len(real), replace=False)
    real_at = {int(slot): n for n, slot in enumerate(slots)}
    store = TerminalStore(path)
    store.apply(
        (),
        [
            SiteRecord(timezone="Asia/Shanghai", face_enabled=True, holidays=()),
            DoorRecord(id=DOOR, face=True, card=True, id_document=True, app_code=True),
            GroupRecord(id=1, doors=(DOOR,), windows=tuple((d, 0, 1440) for d in range(7)), open_on_holidays=True),
        ],
        None,
    )
    batch: list[PersonRecord] = []
    for start in range(0, size, BATCH):
        count = min(BATCH, size - start)
        fill = rng.standard_normal((count, dim)).astype(np.float32)
        fill /= np.linalg.norm(fill, axis=1, keepdims=True)
        for offset in range(count):
            i = start + offset
            vector = real[real_at[i]] if i in real_at else fill[offset]
            pseudonym, template_id = pseudonym_of(i), i + 1
            sealed = seal(seal_key, vector_to_bytes(vector), template_context(pseudonym, template_id))
            batch.append(
                PersonRecord(
                    pseudonym=pseudonym,
                    groups=(1,),
                    templates=(TemplateRecord(id=template_id, model=model_id, sealed=sealed),),
                )
            )
        store.apply((), batch, None)
        batch = []
    store.apply((), [], 1)
    store.close()
    return [pseudonym_of(int(slot)) for slot in slots]


def read_photo(path: Path) -> Image:
    """A photo file as a BGR image."""
    image = cv2.imread(str(path))
    if image is None:
        raise ValueError(f"cannot read {path}")
    return np.asarray(image, dtype=np.uint8)


def door_frame(photo: Image, *, scale: float = 2.0, shift: tuple[int, int] = (0, 0), seed: int = 0) -> Image:
    """A 640x480 frame with the photo's person close to the camera (scaled up, centred, shifted, sensor noise)."""
    image = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    frame = np.full((FRAME_H, FRAME_W, 3), 90, dtype=np.uint8)
    h, w = image.shape[:2]
    y0 = max(0, (FRAME_H - h) // 2 + shift[1])
    x0 = max(0, (FRAME_W - w) // 2 + shift[0])
    # Centre the (larger than the frame) scaled photo: cut its overhang evenly.
    top, left = max(0, (h - FRAME_H) // 2 - shift[1]), max(0, (w - FRAME_W) // 2 - shift[0])
    crop = image[top : top + FRAME_H - y0, left : left + FRAME_W - x0]
    frame[y0 : y0 + crop.shape[0], x0 : x0 + crop.shape[1]] = crop
    noise = np.random.default_rng(seed).integers(-3, 4, size=frame.shape, dtype=np.int16)
    return np.clip(frame.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def empty_frame() -> Image:
    """A frame with nobody in it."""
    return np.full((FRAME_H, FRAME_W, 3), 90, dtype=np.uint8)
