"""Face consent (status, notice, give, withdraw, decline) and selfie enrollment where the site allows it."""

from __future__ import annotations

from ..auth import resident_blueprint

bp = resident_blueprint("face", __name__, "Face")
