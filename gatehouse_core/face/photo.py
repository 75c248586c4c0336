"""Reading an enrollment photo from bytes, in memory only, with size limits before anything is decoded.

The declared size is checked against the pixel limit before a pixel is decoded, so a decompression bomb (a small
file declaring a huge image) costs nothing: for WebP from the RIFF header itself, before Pillow opens the file
(libwebp sets up canvas-sized buffers when it does), for JPEG and PNG from the header Pillow reads on opening.
Decoding then needs about 4 bytes per allowed pixel at most: JPEGs are decoded straight at a reduced scale, other
formats are reduced to the working size before any conversion or rotation copies them. The EXIF orientation of
phone photos is applied. The bytes are never written anywhere.
"""

from __future__ import annotations

import io
import struct

import numpy as np
from PIL import ExifTags, UnidentifiedImageError
from PIL import Image as PilImage

from gatehouse_core.face.types import Image

FORMATS = ("JPEG", "PNG", "WEBP")
# EXIF orientation -> the turn that shows the photo upright (as ImageOps.exif_transpose does, on the small image).
_TURNS = {
    2: PilImage.Transpose.FLIP_LEFT_RIGHT,
    3: PilImage.Transpose.ROTATE_180,
    4: PilImage.Transpose.FLIP_TOP_BOTTOM,
    5: PilImage.Transpose.TRANSPOSE,
    6: PilImage.Transpose.ROTATE_270,
    7: PilImage.Transpose.TRANSVERSE,
    8: PilImage.Transpose.ROTATE_90,
}


class PhotoError(ValueError):
    """The bytes are not a photo we can use; `reason` is 'unreadable' or 'too_large'."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _webp_size(data: bytes) -> tuple[int, int] | None:
    """The size a WebP file declares in its first chunk (VP8X canvas, VP8 or VP8L frame), or None if unreadable."""
    chunk, payload = data[12:16], data[20:30]
    if chunk == b"VP8X" and len(payload) >= 10:
        return int.from_bytes(payload[4:7], "little") + 1, int.from_bytes(payload[7:10], "little") + 1
    if chunk == b"VP8 " and len(payload) >= 10 and payload[3:6] == b"\x9d\x01\x2a":
        width, height = struct.unpack_from("<HH", payload, 6)
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(payload) >= 5 and payload[0] == 0x2F:
        (bits,) = struct.unpack_from("<I", payload, 1)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _too_many_pixels(width: int, height: int, max_pixels: int) -> PhotoError:
    return PhotoError(
        "too_large",
        f"The photo is {width}x{height} pixels; the limit is {max_pixels / 1e6:.0f} megapixels. Use a smaller photo.",
    )


def decode_photo(data: bytes, *, max_bytes: int, max_pixels: int, work_side: int = 1600) -> Image:
    """A BGR image from JPEG, PNG or WebP bytes, its longer side at most about `work_side` pixels."""
    if not data:
        raise PhotoError("unreadable", "The photo is empty. Choose a JPEG, PNG or WebP photo of the face.")
    if len(data) > max_bytes:
        raise PhotoError(
            "too_large",
            f"The photo is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.1f} MB. Use a smaller photo.",
        )
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        declared = _webp_size(data)
        if declared is None:
            raise PhotoError("unreadable", "The photo could not be read. Choose a JPEG, PNG or WebP photo of the face.")
        if declared[0] * declared[1] > max_pixels:
            raise _too_many_pixels(*declared, max_pixels)
    try:
        # Our pixel limit sits below Pillow's warning limit; a header above it makes Pillow warn (an exception
        # where warnings are errors, handled below) and is refused here before anything is decoded.
        source = PilImage.open(io.BytesIO(data), formats=FORMATS)
        width, height = source.size
        if width < 1 or height < 1 or width * height > max_pixels:
            raise _too_many_pixels(width, height, max_pixels)
        if source.format in ("JPEG", "MPO"):
            source.draft("RGB", (work_side, work_side))  # decode at 1/2, 1/4 or 1/8 scale when that suffices
        orientation = source.getexif().get(ExifTags.Base.Orientation, 1)
        picture: PilImage.Image = source
        if picture.mode not in ("RGB", "RGBA", "L", "LA"):
            picture = picture.convert("RGBA" if "transparency" in picture.info else "RGB")
        if max(picture.size) > work_side:
            # Shrunk first (in place, through Image.reduce), so conversion and rotation copy only the small image.
            picture.thumbnail((work_side, work_side), PilImage.Resampling.LANCZOS)
        picture = picture.convert("RGB")
        if (turn := _TURNS.get(orientation)) is not None:
            picture = picture.transpose(turn)
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
