"""The resident's own records: access history, erasure receipts and data export."""

from __future__ import annotations

from ..auth import resident_blueprint

bp = resident_blueprint("records", __name__, "Records")
