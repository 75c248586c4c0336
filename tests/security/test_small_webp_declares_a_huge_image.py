"""Red team, issue 18 item 8: a 71 KB WebP declaring 16383x2441 (just under the 40 MP limit) decoded in ~1.8 s and
~390 MB, and any consented resident could send 120 a minute.

Selfies from the app are capped far lower (mobile_api's selfie_max_pixels, 12 MP by default, or the face section's
limit if lower), and a declared size over the cap is refused from the header: for WebP before Pillow even opens
the file (libwebp's decoder sets up canvas-sized buffers when it opens one), for every format before a pixel is
decoded. The photos here are real Pillow output whose headers are rewritten to declare a huge size.
"""

# ruff: noqa: F811  (pytest finds the phone-app fixtures by the names imported below; tests take them as arguments)

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image as PilImage
from PIL import ImageFile, WebPImagePlugin
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from bench.face_data import SHARED
from gatehouse_core.face.photo import PhotoError, decode_photo
from mobile_api.config import SELFIE_MAX_PIXELS
from server.config import FaceServerConfig
from server.extensions import db
from server.services.face.enrollment import EnrollmentEngine

# The phone-app fixtures, shared with tests/mobile (pytest finds fixtures by name in this module).
from tests.mobile.conftest import (  # noqa: F401
    Household,
    bearer,
    code_spool,
    make_account,
    make_household,
    make_mobile_app,
    mobile,
    mobile_app,
)
from tests.support.privacy import enable_face

MODEL_DIR = SHARED / "models" / "buffalo_s"
WIDE, TALL = 16383, 2441


def pillow_bytes(fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    PilImage.new("RGB", (64, 48), (120, 130, 140)).save(buffer, fmt, **options)
    return buffer.getvalue()


def webp_lossless_declaring(width: int, height: int) -> bytes:
    data = bytearray(pillow_bytes("WEBP", lossless=True))
    assert data[12:16] == b"VP8L" and data[20] == 0x2F
    (bits,) = struct.unpack_from("<I", data, 21)
    bits = (bits & ~0x0FFFFFFF) | (width - 1) | ((height - 1) << 14)
    struct.pack_into("<I", data, 21, bits)
    return bytes(data)


def webp_lossy_declaring(width: int, height: int) -> bytes:
    data = bytearray(pillow_bytes("WEBP", quality=80))
    assert data[12:16] == b"VP8 " and data[23:26] == b"\x9d\x01\x2a"
    struct.pack_into("<HH", data, 26, width, height)
    return bytes(data)


def webp_extended_declaring(width: int, height: int) -> bytes:
    # An alpha channel makes Pillow write the extended layout (a VP8X chunk with the canvas size first).
    buffer = io.BytesIO()
    PilImage.new("RGBA", (64, 48), (120, 130, 140, 200)).save(buffer, "WEBP", quality=80)
    data = bytearray(buffer.getvalue())
    assert data[12:16] == b"VP8X"
    data[24:27] = (width - 1).to_bytes(3, "little")
    data[27:30] = (height - 1).to_bytes(3, "little")
    return bytes(data)


def png_declaring(width: int, height: int) -> bytes:
    data = bytearray(pillow_bytes("PNG"))
    assert data[12:16] == b"IHDR"
    struct.pack_into(">II", data, 16, width, height)
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def jpeg_declaring(width: int, height: int) -> bytes:
    data = bytearray(pillow_bytes("JPEG", quality=80))
    at = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, at + 5, height, width)
    return bytes(data)


MAKERS: dict[str, Callable[[int, int], bytes]] = {
    "webp lossless": webp_lossless_declaring,
    "webp lossy": webp_lossy_declaring,
    "webp extended": webp_extended_declaring,
    "png": png_declaring,
    "jpeg": jpeg_declaring,
}


@pytest.fixture
def decoder_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Records every time Pillow opens a WebP or decodes pixels of any image."""
    calls: list[str] = []
    load, webp_open = ImageFile.ImageFile.load, WebPImagePlugin.WebPImageFile._open

    def recording_load(self: ImageFile.ImageFile) -> Any:
        calls.append(f"load {self.format}")
        return load(self)

    def recording_open(self: WebPImagePlugin.WebPImageFile) -> None:
        calls.append("webp open")
        webp_open(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", recording_load)
    monkeypatch.setattr(WebPImagePlugin.WebPImageFile, "_open", recording_open)
    yield calls


def test_the_attack_file_is_small_and_really_declares_that_size() -> None:
    data = webp_lossless_declaring(WIDE, TALL)
    assert len(data) < 1_000
    with PilImage.open(io.BytesIO(data)) as image:
        assert image.size == (WIDE, TALL)


@pytest.mark.parametrize("make", MAKERS.values(), ids=MAKERS.keys())
def test_a_declared_size_over_the_cap_is_refused_from_the_header(make: Any, decoder_calls: list[str]) -> None:
    data = make(WIDE, TALL)
    with pytest.raises(PhotoError) as refused:
        decode_photo(data, max_bytes=10_000_000, max_pixels=SELFIE_MAX_PIXELS)
    assert refused.value.reason == "too_large" and "12 megapixels" in str(refused.value)
    assert not [call for call in decoder_calls if call.startswith("load") or call == "webp open"]


@pytest.mark.parametrize("make", MAKERS.values(), ids=MAKERS.keys())
def test_a_small_photo_of_every_format_still_decodes(make: Any, decoder_calls: list[str]) -> None:
    image = decode_photo(make(64, 48), max_bytes=10_000_000, max_pixels=SELFIE_MAX_PIXELS)
    assert image.shape == (48, 64, 3)


def test_the_selfie_cap_is_far_below_the_attack_and_configurable() -> None:
    assert SELFIE_MAX_PIXELS <= 12_000_000 < WIDE * TALL


# ---- through the phone app -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine() -> EnrollmentEngine:
    """The real face engine, loaded once for the module (the photo must be refused before it is used)."""
    if not MODEL_DIR.is_dir():
        pytest.fail(f"face models not found in {MODEL_DIR}: set GATEHOUSE_SHARED to the shared folder")
    made = EnrollmentEngine(FaceServerConfig(engine="insightface", model_dir=MODEL_DIR))
    made.model()
    return made


def selfie_client(make_mobile_app: Callable[..., Flask], engine: EnrollmentEngine, **overrides: Any) -> FlaskClient:
    app = make_mobile_app(face={"engine": "insightface", "model_dir": str(MODEL_DIR)}, **overrides)
    state = app.extensions["gatehouse_mobile"]
    app.extensions["gatehouse_mobile"] = replace(state, face=engine)
    return app.test_client()


def consented(client: FlaskClient, make_site: Any, make_household: Any, engine: EnrollmentEngine) -> Household:
    from datetime import date

    from server.services.privacy import privacy

    site = enable_face(make_site(), engine.model().model_id)
    site.app_face_enrollment = True
    db.session.commit()
    home: Household = make_household(site, date_of_birth=date(1988, 4, 9))
    notice = privacy.current_notice(db.session, site)
    assert notice is not None
    body = {"notice_version": notice.version, "notice_sha256": notice.sha256}
    assert client.post("/api/v1/me/face/consent", json=body, headers=home.headers).status_code == 201
    return home


def upload(client: FlaskClient, home: Household, data: bytes) -> Any:
    boundary, body = encode_multipart({"photo": FileStorage(io.BytesIO(data), "selfie.webp")})
    return client.post(
        "/api/v1/me/face/photo",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
        headers=home.headers,
    )


def test_the_app_refuses_the_attack_webp_before_decoding_it(
    make_mobile_app: Callable[..., Flask],
    engine: EnrollmentEngine,
    make_site: Any,
    make_household: Any,
    decoder_calls: list[str],
) -> None:
    client = selfie_client(make_mobile_app, engine)
    home = consented(client, make_site, make_household, engine)
    # The server's own limit (40 MP) would let it through; the app's selfie cap does not.
    assert engine.photo_limits.max_pixels >= WIDE * TALL

    response = upload(client, home, webp_lossless_declaring(WIDE, TALL))

    assert response.status_code == 422, response.get_json()
    body = response.get_json()
    assert body["error"] == "photo_too_large" and "12 megapixels" in body["message"], body
    assert decoder_calls == []


def test_a_lower_face_section_limit_wins(
    make_mobile_app: Callable[..., Flask], engine: EnrollmentEngine, make_site: Any, make_household: Any
) -> None:
    assert engine.config is not None
    lower = EnrollmentEngine(engine.config.model_copy(update={"max_photo_pixels": 2_000_000}))
    lower._model = engine._model  # the loaded model, not a second load
    client = selfie_client(make_mobile_app, lower)
    home = consented(client, make_site, make_household, engine)

    response = upload(client, home, png_declaring(2000, 1500))

    assert response.status_code == 422 and "2 megapixels" in response.get_json()["message"], response.get_json()
