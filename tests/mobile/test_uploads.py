"""Uploaded photos stay in memory in both apps: Werkzeug would spool anything over 500 KB to a temporary file."""

from __future__ import annotations

import io

import pytest
from flask import Flask, request
from werkzeug import formparser
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

BIG = 3 * 1024 * 1024  # a typical phone selfie, far over Werkzeug's 500 KB spooling threshold


@pytest.fixture
def no_temporary_files(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("an upload was about to be spooled to a temporary file")

    monkeypatch.setattr(formparser, "SpooledTemporaryFile", refuse)


def _upload_stream(app: Flask) -> object:
    # Encoded up front: the test client would itself spool a body this large to a temporary file.
    boundary, body = encode_multipart({"photo": FileStorage(io.BytesIO(b"\xff" * BIG), "selfie.jpg", "photo")})
    content_type = f"multipart/form-data; boundary={boundary}"
    with app.test_request_context("/", method="POST", input_stream=io.BytesIO(body), content_type=content_type):
        upload = request.files["photo"]
        assert len(upload.stream.read()) == BIG
        return upload.stream


@pytest.mark.usefixtures("no_temporary_files")
def test_the_mobile_api_keeps_a_large_selfie_in_memory(mobile_app: Flask) -> None:
    assert isinstance(_upload_stream(mobile_app), io.BytesIO)


@pytest.mark.usefixtures("no_temporary_files")
def test_the_console_keeps_a_large_photo_in_memory(app: Flask) -> None:
    assert isinstance(_upload_stream(app), io.BytesIO)


def test_the_guard_itself_would_catch_spooling(no_temporary_files: None) -> None:
    # Without the in-memory request class, the same upload reaches Werkzeug's spooling and fails the test.
    plain = Flask(__name__)
    with pytest.raises(AssertionError, match="temporary file"):
        _upload_stream(plain)
