"""Real face models and photos for tests (from ../shared), and 640x480 door-camera frames made from them."""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image as PilImage

from bench.face_data import SHARED

MODELS = SHARED / "models"
FACES = SHARED / "data" / "faces-dev"
MODEL_DIRS = {"insightface": MODELS / "buffalo_s", "opencv": MODELS / "opencv_zoo"}


@cache
def people_with(photos: int) -> list[str]:
    """Names of faces-dev people with at least this many photos, sorted."""
    return sorted(p.name for p in FACES.iterdir() if p.is_dir() and len(photos_of(p.name)) >= photos)


@cache
def photos_of(person: str) -> list[Path]:
    """A person's photo files, sorted."""
    return sorted(p for p in (FACES / person).iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})


def door_frame(
    photo: Path, *, scale: float = 2.0, shift: tuple[int, int] = (0, 0), seed: int = 0
) -> npt.NDArray[np.uint8]:
    """A 640x480 frame with the photo's person standing close to the camera (scaled up, centred).

    `shift` and `seed` vary position and sensor noise from frame to frame, as a real camera does.
    """
    image = cv2.imread(str(photo))
    assert image is not None, photo
    image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    frame = np.full((480, 640, 3), 90, dtype=np.uint8)
    h, w = image.shape[:2]
    y0 = max(0, (480 - h) // 2 + shift[1])
    x0 = max(0, (640 - w) // 2 + shift[0])
    crop = image[: 480 - y0, : 640 - x0]
    frame[y0 : y0 + crop.shape[0], x0 : x0 + crop.shape[1]] = crop
    noise = np.random.default_rng(seed).integers(-3, 4, size=frame.shape, dtype=np.int16)
    return np.clip(frame.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def background_frame(photo: Path) -> npt.NDArray[np.uint8]:
    """A 640x480 frame with the person far behind the door (a small face), nobody close."""
    return door_frame(photo, scale=0.45, shift=(200, -150))


JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG"


def images_in(data: bytes) -> list[int]:
    """Offsets of JPEG/PNG signatures in `data` from which an image can actually be opened.

    Sealed templates and keys are random bytes, in which three bytes FF D8 FF turn up by chance about once
    per 16 MB; a photo written there would also parse as an image from its signature on.
    """
    found = []
    for magic in (JPEG_MAGIC, PNG_MAGIC):
        at = data.find(magic)
        while at != -1:
            try:
                with PilImage.open(io.BytesIO(data[at:])) as image:
                    image.size  # noqa: B018 - opening parsed the header
                found.append(at)
            except Exception:  # noqa: S110 - not an image header: random bytes
                pass
            at = data.find(magic, at + 1)
    return found
