"""Requests whose uploaded files stay in memory: an enrollment photo must never touch the disk.

Werkzeug spools uploads over 500 KB to a temporary file, and a phone's selfie is several MB. Both the
console and the mobile API use this request class instead; their MAX_CONTENT_LENGTH bounds the memory.
"""

from __future__ import annotations

from io import BytesIO
from typing import IO

from flask import Request


class InMemoryUploadRequest(Request):
    """A Flask request that keeps every uploaded file in a BytesIO, whatever its size."""

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        return BytesIO()
