"""Finding a model pack's files and naming the embedding space they produce."""

from __future__ import annotations

import hashlib
from pathlib import Path

from gatehouse_core.face.types import FaceEngineError


def pick(model_dir: Path, explicit: str | None, patterns: tuple[str, ...], what: str, key: str) -> Path:
    """The one model file of a kind in `model_dir`: the configured name, or the single file the patterns match."""
    if not model_dir.is_dir():
        raise FaceEngineError(
            f"face model directory {model_dir} does not exist: point face.model_dir at the folder holding the "
            "model files (see README, 'Face engine')"
        )
    if explicit is not None:
        path = model_dir / explicit
        if not path.is_file():
            raise FaceEngineError(f"{what} {path} does not exist: fix face.{key} or face.model_dir")
        return path
    found = sorted({p for pattern in patterns for p in model_dir.glob(pattern) if p.is_file()})
    if len(found) == 1:
        return found[0]
    if not found:
        raise FaceEngineError(
            f"no {what} in {model_dir} (looked for {', '.join(patterns)}): copy the model pack there or set face.{key}"
        )
    names = ", ".join(p.name for p in found)
    raise FaceEngineError(f"several {what}s in {model_dir} ({names}): choose one with face.{key}")


def model_id(recognizer: Path) -> str:
    """`<file stem>-<first 12 hex digits of its SHA-256>`: changes whenever the recognizer's weights change."""
    digest = hashlib.sha256()
    with recognizer.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"{recognizer.stem[:48]}-{digest.hexdigest()[:12]}"
