"""Reading an enrollment photo from bytes, in memory only, with size limits before anything is decoded.

Pillow reads the header first, so a decompression bomb (a small file declaring a huge image) is refused
before a pixel is decoded; JPEGs are decoded straight at a reduced scale when they are far larger than
needed; the EXIF orientation of phone photos is applied. The bytes are never written anywhere.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image as PilImage
from PIL import ImageOps, UnidentifiedImageError

from gatehouse_core.face.types import Image

FORMATS = ("JPEG", "PNG", "WEBP")


class PhotoError(ValueError):
    """The bytes are not a photo we can use; `reason` is 'unreadable' or 'too_large'."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def decode_photo(data: bytes, *, max_bytes: int, max_pixels: int, work_side: int = 1600) -> Image:
    """A BGR image from JPEG, PNG or WebP bytes, its longer side at most about `work_side` pixels."""
    if not data:
        raise PhotoError("unreadable", "The photo is empty. Choose a JPEG, PNG or WebP photo of the face.")
    if len(data) > max_bytes:
        raise PhotoError(
            "too_large",
            f"The photo is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.1f} MB. Use a smaller photo.",
        )
    try:
        # Our pixel limit sits below Pillow's warning limit; a header above it makes Pillow warn (an exception
        # where warnings are errors, handled below) and is refused here before anything is decoded.
        source = PilImage.open(io.BytesIO(data), formats=FORMATS)
        width, height = source.size
        if width < 1 or height < 1 or width * height > max_pixels:
            raise PhotoError(
                "too_large",
                f"The photo is {width}x{height} pixels; the limit is {max_pixels / 1e6:.0f} megapixels. "
                "Use a smaller photo.",
            )
        if source.format == "JPEG":
            source.draft("RGB", (work_side, work_side))  # decode at 1/2, 1/4 or 1/8 scale when that suffices
        picture = ImageOps.exif_transpose(source)
        picture = picture.convert("RGB")
        if max(picture.size) > work_side:
            picture.thumbnail((work_side, work_side), PilImage.Resampling.LANCZOS)
        rgb = np.asarray(picture, dtype=np.uint8)
    except PhotoError:
        raise
    except PilImage.DecompressionBombError as exc:  # Pillow's own guard, for headers far beyond max_pixels
        raise PhotoError("too_large", "The photo declares too many pixels. Use a smaller photo.") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise PhotoError(
            "unreadable", "The photo could not be read. Choose a JPEG, PNG or WebP photo of the face."
        ) from exc
    except PilImage.DecompressionBombWarning as exc:
        raise PhotoError("too_large", "The photo declares too many pixels. Use a smaller photo.") from exc
    return np.ascontiguousarray(rgb[:, :, ::-1])
