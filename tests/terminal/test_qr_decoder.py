"""terminals.drivers.qr.QrDecoder: codes as a door camera sees them, generated in memory with segno."""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt
import pytest
import segno

from terminals.drivers.qr import QrDecoder

Image = npt.NDArray[np.uint8]

WIDTH, HEIGHT = 640, 480
BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
APP_CODE = "GHA1:12345:04918273"


def pass_token(seed: int) -> str:
    """A visitor-pass-shaped token: GHP1: and 140 base32 characters (a version 6 code at level M)."""
    rng = np.random.default_rng(seed)
    return "GHP1:" + "".join(BASE32[i] for i in rng.integers(0, 32, 140))


TOKEN = pass_token(1)


def code_image(text: str, width_px: int, dark: int = 20, light: int = 235) -> Image:
    """The code with its 4-module quiet zone, `width_px` wide, as a phone screen shows it."""
    modules = np.array(segno.make_qr(text, error="m").matrix, dtype=np.uint8)
    modules = np.pad(modules, 4)
    image = np.where(modules == 1, dark, light).astype(np.uint8)
    return np.asarray(cv2.resize(image, (width_px, width_px), interpolation=cv2.INTER_AREA), dtype=np.uint8)


def scene(rng: np.random.Generator, level: int = 120, texture: float = 25.0, edges: int = 3) -> Image:
    """A plausible background: smooth light and dark patches and a few edges (a door, a coat)."""
    coarse = rng.normal(level, texture, (HEIGHT // 32, WIDTH // 32)).clip(0, 255).astype(np.uint8)
    frame = np.asarray(cv2.resize(coarse, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC), dtype=np.uint8)
    for _ in range(edges):
        x0, x1 = sorted(int(v) for v in rng.integers(0, WIDTH, 2))
        y0, y1 = sorted(int(v) for v in rng.integers(0, HEIGHT, 2))
        cv2.rectangle(frame, (x0, y0), (x1, y1), int(rng.integers(40, 220)), 3)
    return frame


def place(frame: Image, code: Image, cx: float, cy: float, tilt_deg: float = 0.0, roll_deg: float = 0.0) -> Image:
    """Paste `code` centred at (cx, cy), turned `tilt_deg` about the vertical axis as a camera would see it."""
    side = code.shape[0]
    corners = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], dtype=np.float64) * side / 2
    tilt, roll = math.radians(tilt_deg), math.radians(roll_deg)
    turn = np.array([[math.cos(tilt), 0, math.sin(tilt)], [0, 1, 0], [-math.sin(tilt), 0, math.cos(tilt)]])
    spin = np.array([[math.cos(roll), -math.sin(roll), 0], [math.sin(roll), math.cos(roll), 0], [0, 0, 1]])
    focal = 600.0
    points = corners @ (spin @ turn).T
    points[:, 2] += focal
    projected = points[:, :2] * focal / points[:, 2:3] + [cx, cy]
    source = np.array([[0, 0], [side, 0], [side, side], [0, side]], dtype=np.float32)
    homography = cv2.getPerspectiveTransform(source, projected.astype(np.float32))
    warped = cv2.warpPerspective(code, homography, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR)
    cover = cv2.warpPerspective(np.full_like(code, 255), homography, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR)
    alpha = cover.astype(np.float32) / 255
    return (frame * (1 - alpha) + warped * alpha).clip(0, 255).astype(np.uint8)


def degrade(frame: Image, rng: np.random.Generator, blur: float = 0.0, noise: float = 3.0) -> Image:
    """Camera blur (Gaussian, sigma in pixels) and sensor noise."""
    out = frame.astype(np.float32)
    if blur:
        out = np.asarray(cv2.GaussianBlur(out, (0, 0), blur), dtype=np.float32)
    return (out + rng.normal(0, noise, out.shape)).clip(0, 255).astype(np.uint8)


def tilted_blurred(text: str, seed: int, width_share: float = 0.4) -> Image:
    """Case (c): a code tilted 20 degrees and rolled, with moderate blur and noise, off-centre."""
    rng = np.random.default_rng(seed)
    frame = place(scene(rng), code_image(text, int(WIDTH * width_share)), 360, 250, tilt_deg=20, roll_deg=8)
    return degrade(frame, rng, blur=1.0, noise=4.0)


@pytest.fixture(scope="module")
def decoder() -> QrDecoder:
    return QrDecoder()


@pytest.mark.parametrize("text", [APP_CODE, TOKEN], ids=["app-code", "pass-token"])
def test_straight_centred_code(decoder: QrDecoder, text: str) -> None:
    rng = np.random.default_rng(10)
    frame = degrade(place(scene(rng), code_image(text, 260), WIDTH / 2, HEIGHT / 2), rng)
    assert decoder.decode(frame) == text


def test_colour_frames_are_decoded_too(decoder: QrDecoder) -> None:
    rng = np.random.default_rng(11)
    gray = degrade(place(scene(rng), code_image(APP_CODE, 260), WIDTH / 2, HEIGHT / 2), rng)
    bgr = np.asarray(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR), dtype=np.uint8)
    bgr[:, :, 0] = np.clip(bgr[:, :, 0].astype(np.int16) + 30, 0, 255).astype(np.uint8)  # a bluish white balance
    assert decoder.decode(bgr) == APP_CODE


@pytest.mark.parametrize(
    ("text", "width_share", "cx", "cy"),
    [
        (APP_CODE, 0.2, 120, 110),  # about 4.4 px per module
        (APP_CODE, 0.15, 540, 380),  # about 3.3 px per module
        (TOKEN, 0.3, 150, 330),  # about 3.9 px per module: a pass token needs this much of the frame
    ],
    ids=["app-code-20pct-top-left", "app-code-15pct-bottom-right", "pass-token-30pct-left"],
)
def test_small_code_off_centre(decoder: QrDecoder, text: str, width_share: float, cx: float, cy: float) -> None:
    rng = np.random.default_rng(12)
    frame = degrade(place(scene(rng), code_image(text, int(WIDTH * width_share)), cx, cy, roll_deg=-6), rng)
    assert decoder.decode(frame) == text


@pytest.mark.parametrize("text", [APP_CODE, TOKEN], ids=["app-code", "pass-token"])
@pytest.mark.parametrize("seed", [20, 21, 22])
def test_tilted_blurred_noisy_code(decoder: QrDecoder, text: str, seed: int) -> None:
    assert decoder.decode(tilted_blurred(text, seed)) == text


@pytest.mark.parametrize("text", [APP_CODE, TOKEN], ids=["app-code", "pass-token"])
def test_low_contrast_grey_on_grey(decoder: QrDecoder, text: str) -> None:
    rng = np.random.default_rng(30)
    dull = scene(rng, level=125, texture=8.0, edges=0)
    frame = degrade(place(dull, code_image(text, 280, dark=105, light=150), 300, 230, tilt_deg=10), rng, blur=0.7)
    low, high = np.percentile(frame, [1, 99])
    assert high - low < 70  # the whole frame spans about a quarter of the range
    assert decoder.decode(frame) == text


@pytest.mark.parametrize("seed", [40, 41, 42])
def test_frame_without_code(decoder: QrDecoder, seed: int) -> None:
    rng = np.random.default_rng(seed)
    assert decoder.decode(degrade(scene(rng, texture=40.0), rng, noise=6.0)) is None


def test_frame_on_which_opencv_trips_counts_as_no_code(decoder: QrDecoder) -> None:
    rng = np.random.default_rng(8179)
    frame = degrade(scene(rng), rng)  # OpenCV 5.0.0's QRCodeDetector.detect fails an assertion on this one
    assert decoder.decode(frame) is None


class TrippingFinder:
    def detect(self, img: Image) -> tuple[bool, None]:
        raise cv2.error("(-215:Assertion failed) total >= 0 in function 'convexHull'")


def test_opencv_errors_in_the_finders_count_as_no_code() -> None:
    decoder = QrDecoder()
    decoder._detector = decoder._fallback_finder = TrippingFinder()  # type: ignore[assignment]
    assert decoder.decode(np.zeros((HEIGHT, WIDTH), dtype=np.uint8)) is None


def test_blank_and_tiny_frames(decoder: QrDecoder) -> None:
    assert decoder.decode(np.zeros((HEIGHT, WIDTH), dtype=np.uint8)) is None
    assert decoder.decode(np.full((HEIGHT, WIDTH, 3), 255, dtype=np.uint8)) is None
    assert decoder.decode(np.zeros((8, 8), dtype=np.uint8)) is None


def test_code_that_is_not_utf8_text_is_ignored(decoder: QrDecoder) -> None:
    modules = np.pad(np.array(segno.make_qr("日本の門", error="m").matrix, dtype=np.uint8), 4)  # Kanji mode
    image = np.where(modules == 1, 0, 255).astype(np.uint8)
    code = np.asarray(cv2.resize(image, (240, 240), interpolation=cv2.INTER_NEAREST), dtype=np.uint8)
    frame = place(np.full((HEIGHT, WIDTH), 128, dtype=np.uint8), code, WIDTH / 2, HEIGHT / 2)
    assert decoder.decode(frame) is None


@pytest.mark.parametrize(
    "frame",
    [
        np.zeros((HEIGHT, WIDTH), dtype=np.float32),
        np.zeros((HEIGHT, WIDTH, 2), dtype=np.uint8),
        np.zeros(WIDTH, dtype=np.uint8),
    ],
    ids=["float", "two-channels", "one-dimension"],
)
def test_frames_of_the_wrong_kind_are_refused(decoder: QrDecoder, frame: npt.NDArray[np.generic]) -> None:
    with pytest.raises(ValueError, match="frame"):
        decoder.decode(frame)  # type: ignore[arg-type]
