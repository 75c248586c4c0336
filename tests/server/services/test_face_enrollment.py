"""Face enrollment from photos with the real models and real faces: rules first, quality gates, no photo kept."""

from __future__ import annotations

import io
import tempfile
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image as PilImage
from PIL import ImageFilter
from pydantic import ValidationError
from sqlalchemy import func, select

import gatehouse_core.face.enroll as face_enroll_module
from bench.face_data import SHARED
from gatehouse_core.configfile import parse_config
from gatehouse_core.face.enroll import PhotoLimits, template_from_photo
from gatehouse_core.face.quality import ADVICE, QualityLimits, QualityReason
from gatehouse_core.face.types import FaceModel
from gatehouse_core.keyring import ServerKeys
from server.app import create_app
from server.cli.main import main
from server.config import FaceServerConfig, ServerConfig, load_server_config
from server.extensions import db
from server.models import (
    AuditEntry,
    ConsentChannel,
    ConsentRecord,
    ErasureReason,
    ErasureReceipt,
    FaceTemplate,
    JournalEntry,
    JournalKind,
    Person,
    PersonStatus,
    Site,
    utcnow,
)
from server.services import journal
from server.services.access import sites
from server.services.audit import Actor
from server.services.errors import Conflict, DomainError, RuleViolation
from server.services.face.consent_rules import active_consent
from server.services.face.enrollment import (
    NOT_CONFIGURED,
    Enrolled,
    EnrollmentEngine,
    FaceUnavailable,
    PhotoRejected,
    PhotoTooLarge,
    check_photo,
    enroll_from_upload,
    enroll_photo,
)
from server.services.face.templates import unseal_vector
from server.services.people import people
from server.services.privacy import privacy
from server.state import state
from tests.conftest import TEST_ACTOR, server_config
from tests.support import REPO
from tests.support.faces import images_in
from tests.support.privacy import consent_row
from tests.support.privacy import give_consent as renew_consent

MODELS = SHARED / "models"
FACES = SHARED / "data" / "faces-dev"
INSIGHTFACE_ID = "w600k_mbf-9cc6e4a75f0e"
SFACE_ID = "face_recognition_sface_2021dec-0ba9fbfa01b5"
GARBAGE = b"\x00this is no photo\xff" * 64


def face_path(name: str, number: int = 1) -> Path:
    return FACES / name / f"{number}.jpg"


def face_bytes(name: str, number: int = 1) -> bytes:
    return face_path(name, number).read_bytes()


def encoded(image: PilImage.Image, fmt: str = "JPEG") -> bytes:
    """An image made in the test, encoded in memory (nothing is written to disk)."""
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def face_image(name: str = "Al_Pacino", number: int = 1) -> PilImage.Image:
    with PilImage.open(face_path(name, number)) as source:
        return source.convert("RGB")


def engine_for(engine: str, folder: str) -> EnrollmentEngine:
    if not (MODELS / folder).is_dir():
        pytest.fail(f"face models not found in {MODELS / folder}: set GATEHOUSE_SHARED to the shared folder")
    return EnrollmentEngine(FaceServerConfig(engine=engine, model_dir=MODELS / folder))


@pytest.fixture(scope="module")
def model() -> FaceModel:
    """The InsightFace models (SCRFD + ArcFace MBF), loaded once for the module."""
    return engine_for("insightface", "buffalo_s").model()


@pytest.fixture(scope="module")
def opencv_model() -> FaceModel:
    """The OpenCV Zoo models (YuNet + SFace), loaded once for the module."""
    return engine_for("opencv", "opencv_zoo").model()


@pytest.fixture
def site(make_site: Callable[..., Site]) -> Site:
    made = make_site()
    made.face_enabled = True
    db.session.commit()
    return made


@pytest.fixture
def alice(site: Site, make_person: Callable[..., Person]) -> Person:
    return make_person(site, "Alice")


def give_consent(person: Person, **fields: Any) -> ConsentRecord:
    consent = consent_row(person, **fields)
    db.session.commit()
    return consent


def count(entity: Any) -> int:
    return db.session.scalar(select(func.count()).select_from(entity)) or 0


def journal_seq(site: Site) -> int:
    db.session.refresh(site)
    return site.journal_seq


def enroll(
    model: FaceModel, keys: ServerKeys, person: Person, consent: ConsentRecord | None, photo: bytes, **kw: Any
) -> FaceTemplate:
    template = enroll_photo(db.session, TEST_ACTOR, keys, model, person, consent, photo, **kw).template
    db.session.commit()
    return template


def stored_vector(keys: ServerKeys, template: FaceTemplate) -> np.ndarray:
    plain = unseal_vector(keys, template.person_id, template.model_id, template.sealed_vector)
    return np.frombuffer(plain, dtype="<f4")


# ---- enrollment -------------------------------------------------------------------------------------------------


def test_enrollment_stores_the_sealed_embedding_and_journals_it(
    model: FaceModel, keys: ServerKeys, site: Site, alice: Person
) -> None:
    consent = give_consent(alice)
    photo = face_bytes("Al_Pacino")
    before = journal_seq(site)

    template = enroll(model, keys, alice, consent, photo)

    assert template.model_id == model.model_id == INSIGHTFACE_ID
    assert template.consent_id == consent.id
    vector = stored_vector(keys, template)
    assert vector.shape == (512,)
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5
    # Exactly the engine's embedding of this photo, sealed; the photo itself is nowhere in the row.
    assert vector.tobytes() == template_from_photo(model, photo).template_bytes()
    assert photo[:64] not in template.sealed_vector and vector.tobytes() not in template.sealed_vector
    (entry,) = journal.entries_after(db.session, site.id, before)
    assert entry.kind is JournalKind.TEMPLATE_ADD
    assert entry.payload == {"person": alice.pseudonym, "template": template.id, "model": INSIGHTFACE_ID}
    audit = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "template.add")).one()
    # The model id and the gates' figures, nothing else.
    assert set(audit.details) == {
        "model",
        "face_px",
        "score",
        "sharpness",
        "contrast",
        "yaw_deg",
        "pitch_deg",
        "roll_deg",
    }
    assert audit.details["model"] == INSIGHTFACE_ID
    assert all(isinstance(v, float) for k, v in audit.details.items() if k != "model")


def test_enrollment_reports_what_the_gates_measured(
    model: FaceModel, keys: ServerKeys, site: Site, alice: Person
) -> None:
    enrolled = enroll_photo(db.session, TEST_ACTOR, keys, model, alice, give_consent(alice), face_bytes("Al_Pacino"))
    report = enrolled.report
    assert report.face_px >= 64 and report.score >= model.enroll_score and report.sharpness >= 25
    assert abs(report.pose.yaw) <= 35 and abs(report.pose.pitch) <= 30
    assert enrolled.template.id is not None


def test_re_enrolling_replaces_the_template_with_an_erasure_receipt(
    model: FaceModel, keys: ServerKeys, site: Site, alice: Person
) -> None:
    consent = give_consent(alice)
    first = enroll(model, keys, alice, consent, face_bytes("Al_Pacino", 1))
    first_id, first_vector = first.id, stored_vector(keys, first)
    before = journal_seq(site)

    second = enroll(model, keys, alice, consent, face_bytes("Al_Pacino", 2))

    assert second.id != first_id
    assert db.session.get(FaceTemplate, first_id) is None
    assert [t.id for t in alice.face_templates] == [second.id]
    receipt = db.session.scalars(select(ErasureReceipt)).one()
    assert (receipt.template_id, receipt.reason, receipt.model_id) == (first_id, ErasureReason.REPLACED, INSIGHTFACE_ID)
    kinds = [(e.kind, e.payload["template"]) for e in journal.entries_after(db.session, site.id, before)]
    assert kinds == [(JournalKind.TEMPLATE_DELETE, first_id), (JournalKind.TEMPLATE_ADD, second.id)]
    # Two photos of the same man: a different vector, the same person.
    cosine = float(first_vector @ stored_vector(keys, second))
    assert 0.3 < cosine < 0.999


def test_uses_the_opencv_engine_too(
    model: FaceModel, opencv_model: FaceModel, keys: ServerKeys, site: Site, alice: Person
) -> None:
    consent = give_consent(alice)
    photo = face_bytes("Al_Pacino")
    arcface = enroll(model, keys, alice, consent, photo)
    assert site.face_model_id == INSIGHTFACE_ID
    # A server running another model cannot add templates the site's terminals would not match.
    with pytest.raises(RuleViolation) as refused:
        enroll(opencv_model, keys, alice, consent, photo)
    assert refused.value.code == "face_model_mismatch"
    assert {t.id for t in alice.face_templates} == {arcface.id}
    # Moving the site to SFace erases the ArcFace template and makes the consent stale until renewed.
    privacy.adopt_face_model(db.session, TEST_ACTOR, site, SFACE_ID)
    db.session.commit()
    assert alice.face_templates == [] and count(ErasureReceipt) == 1
    with pytest.raises(Conflict) as stale:
        enroll(opencv_model, keys, alice, consent, photo)
    assert stale.value.code == "consent_stale"
    sface = enroll(opencv_model, keys, alice, renew_consent(alice), photo)
    assert sface.model_id == SFACE_ID
    vector = stored_vector(keys, sface)
    assert vector.shape == (128,) and abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5
    assert vector.tobytes() == template_from_photo(opencv_model, photo).template_bytes()


def test_active_consent_is_the_latest_active_one(site: Site, alice: Person, make_person: Callable[..., Person]) -> None:
    assert active_consent(alice) is None
    now = utcnow()
    give_consent(alice, withdrawn_at=now)
    older = give_consent(alice, given_at=now - timedelta(days=365))
    assert active_consent(alice) is older
    newer = give_consent(alice)
    assert active_consent(alice) is newer
    assert active_consent(make_person(site, "Bob")) is None


# ---- refusals before the photo is looked at ----------------------------------------------------------------------


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the photos the face engine decodes."""
    calls: list[int] = []
    real = face_enroll_module.decode_photo

    def counting(data: bytes, **kw: Any) -> Any:
        calls.append(len(data))
        return real(data, **kw)

    monkeypatch.setattr(face_enroll_module, "decode_photo", counting)
    return calls


REFUSALS = {
    "no_consent": "no_consent",
    "withdrawn": "no_consent",
    "expired": "no_consent",
    "someone_elses": "no_consent",
    "face_disabled": "face_disabled",
    "moved_out": "inactive",
    "suspended": "inactive",
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refused_enrollment_never_decodes_the_photo(
    model: FaceModel,
    keys: ServerKeys,
    site: Site,
    alice: Person,
    make_person: Callable[..., Person],
    decodes: list[int],
    case: str,
) -> None:
    now = utcnow()
    consent: ConsentRecord | None = give_consent(alice)
    if case == "no_consent":
        consent = None
    elif case == "withdrawn":
        consent = give_consent(alice, withdrawn_at=now)
    elif case == "expired":
        consent = give_consent(alice, expires_at=now)
    elif case == "someone_elses":
        consent = give_consent(make_person(site, "Bob"))
    elif case == "face_disabled":
        site.face_enabled = False
    elif case == "moved_out":
        people.move_out(db.session, TEST_ACTOR, alice)
    else:
        alice.status = PersonStatus.SUSPENDED
    db.session.commit()
    before = journal_seq(site)

    # Garbage bytes: had the photo been decoded, this would be photo_unreadable.
    with pytest.raises(DomainError) as info:
        enroll_photo(db.session, TEST_ACTOR, keys, model, alice, consent, GARBAGE)

    assert info.value.code == REFUSALS[case]
    assert not isinstance(info.value, PhotoRejected)
    assert decodes == []
    db.session.rollback()
    assert count(FaceTemplate) == 0 and journal_seq(site) == before


def test_the_same_garbage_with_consent_is_decoded_and_refused(
    model: FaceModel, keys: ServerKeys, site: Site, alice: Person, decodes: list[int]
) -> None:
    with pytest.raises(PhotoRejected) as info:
        enroll_photo(db.session, TEST_ACTOR, keys, model, alice, give_consent(alice), GARBAGE)
    assert info.value.code == "photo_unreadable" and decodes == [len(GARBAGE)]


# ---- enrollment from an uploaded file (console and phone app) --------------------------------------------------


@pytest.fixture(scope="module")
def small_engine() -> EnrollmentEngine:
    """The InsightFace engine with the smallest photo limit the config allows."""
    if not (MODELS / "buffalo_s").is_dir():
        pytest.fail(f"face models not found in {MODELS / 'buffalo_s'}: set GATEHOUSE_SHARED to the shared folder")
    return EnrollmentEngine(
        FaceServerConfig(engine="insightface", model_dir=MODELS / "buffalo_s", max_photo_bytes=10_000)
    )


def upload_to(
    engine: EnrollmentEngine, keys: ServerKeys, person: Person, file: io.BytesIO, channel: ConsentChannel
) -> Enrolled:
    return enroll_from_upload(db.session, TEST_ACTOR, keys, engine, person, file, channel=channel)


@pytest.mark.parametrize(
    ("channel", "app_enrollment", "consented", "refusal"),
    [
        (ConsentChannel.APP, False, True, "app_enrollment_off"),
        (ConsentChannel.APP, True, False, "no_consent"),
        (ConsentChannel.CONSOLE, False, False, "no_consent"),
    ],
)
def test_a_refused_upload_is_never_read(
    small_engine: EnrollmentEngine,
    keys: ServerKeys,
    site: Site,
    alice: Person,
    channel: ConsentChannel,
    app_enrollment: bool,
    consented: bool,
    refusal: str,
) -> None:
    site.app_face_enrollment = app_enrollment
    if consented:
        give_consent(alice)
    db.session.commit()
    file = io.BytesIO(GARBAGE)
    with pytest.raises(DomainError) as info:
        upload_to(small_engine, keys, alice, file, channel)
    assert info.value.code == refusal and file.tell() == 0


def test_an_upload_over_the_limit_is_read_one_byte_past_it_and_refused(
    small_engine: EnrollmentEngine, keys: ServerKeys, site: Site, alice: Person, decodes: list[int]
) -> None:
    give_consent(alice)
    file = io.BytesIO(b"\xff" * 20_000)
    with pytest.raises(PhotoTooLarge) as info:
        upload_to(small_engine, keys, alice, file, ConsentChannel.CONSOLE)
    assert file.tell() == 10_001 and decodes == [10_001]
    assert info.value.code == "photo_too_large" and info.value.max_bytes == 10_000
    db.session.rollback()
    assert count(FaceTemplate) == 0


def test_an_upload_from_the_app_enrolls_where_the_site_allows_it(keys: ServerKeys, site: Site, alice: Person) -> None:
    site.app_face_enrollment = True
    give_consent(alice)
    engine = engine_for("insightface", "buffalo_s")
    enrolled = upload_to(engine, keys, alice, io.BytesIO(face_bytes("Al_Pacino")), ConsentChannel.APP)
    db.session.commit()
    assert enrolled.template.person_id == alice.id and count(FaceTemplate) == 1


# ---- quality gates ----------------------------------------------------------------------------------------------


def _side_by_side() -> bytes:
    face = face_image()
    pair = PilImage.new("RGB", (face.width * 2, face.height))
    pair.paste(face, (0, 0))
    pair.paste(face, (face.width, 0))
    return encoded(pair)


PHOTO_CASES: dict[str, tuple[Callable[[], bytes], dict[str, Any], QualityReason]] = {
    "garbage": (lambda: GARBAGE, {}, QualityReason.UNREADABLE),
    "empty": (lambda: b"", {}, QualityReason.UNREADABLE),
    "truncated_jpeg": (lambda: face_bytes("Al_Pacino")[:2000], {}, QualityReason.UNREADABLE),
    "gif": (lambda: encoded(face_image(), "GIF"), {}, QualityReason.UNREADABLE),
    "too_many_bytes": (
        lambda: face_bytes("Al_Pacino"),
        {"photo_limits": PhotoLimits(max_bytes=1000)},
        QualityReason.TOO_LARGE,
    ),
    "too_many_pixels": (
        lambda: face_bytes("Al_Pacino"),
        {"photo_limits": PhotoLimits(max_pixels=250 * 250 - 1)},
        QualityReason.TOO_LARGE,
    ),
    "no_face": (lambda: encoded(PilImage.new("RGB", (640, 480), (128, 128, 128))), {}, QualityReason.NO_FACE),
    "several_faces": (_side_by_side, {}, QualityReason.SEVERAL_FACES),
    "face_too_small": (lambda: encoded(face_image().resize((120, 120))), {}, QualityReason.FACE_TOO_SMALL),
    "blurry": (lambda: encoded(face_image().filter(ImageFilter.GaussianBlur(3))), {}, QualityReason.BLURRY),
    "turned_away": (lambda: face_bytes("Ahmad_Masood", 2), {}, QualityReason.NOT_FRONTAL),
    "too_dark": (
        lambda: encoded(face_image().point(lambda v: v // 10)),
        {},
        QualityReason.LOW_SCORE,
    ),
    "low_score": (lambda: face_bytes("Al_Pacino"), {"limits": QualityLimits(min_score=0.99)}, QualityReason.LOW_SCORE),
}


@pytest.mark.parametrize("case", list(PHOTO_CASES))
def test_a_photo_failing_a_gate_is_refused_with_advice_and_nothing_is_kept(
    model: FaceModel, keys: ServerKeys, site: Site, alice: Person, case: str
) -> None:
    make_photo, limits, reason = PHOTO_CASES[case]
    consent = give_consent(alice)
    before = journal_seq(site)
    with pytest.raises(PhotoRejected) as info:
        enroll_photo(db.session, TEST_ACTOR, keys, model, alice, consent, make_photo(), **limits)
    assert isinstance(info.value, RuleViolation)
    assert info.value.code == f"photo_{reason.value}"
    # The advice for the reason, or for a photo refused before decoding, the specific limit it broke.
    advice = ADVICE[reason]
    if reason in (QualityReason.UNREADABLE, QualityReason.TOO_LARGE):
        advice = advice.split(".")[-2].strip()  # e.g. "Use a smaller photo"
    assert advice in info.value.message
    db.session.rollback()
    assert count(FaceTemplate) == 0 and journal_seq(site) == before
    assert db.session.scalars(select(AuditEntry).where(AuditEntry.action.like("template.%"))).all() == []


def test_a_refused_re_enrollment_keeps_the_old_template(
    model: FaceModel, keys: ServerKeys, site: Site, alice: Person
) -> None:
    consent = give_consent(alice)
    kept = enroll(model, keys, alice, consent, face_bytes("Al_Pacino")).id
    with pytest.raises(PhotoRejected):
        enroll(model, keys, alice, consent, face_bytes("Ahmad_Masood", 2))
    db.session.rollback()
    assert [t.id for t in db.session.scalars(select(FaceTemplate))] == [kept]
    assert count(ErasureReceipt) == 0


def test_check_photo_gives_the_verdict_and_stores_nothing(model: FaceModel, app: Any) -> None:
    report = check_photo(model, face_bytes("Al_Pacino"))
    assert report.face_px > 64 and abs(report.pose.yaw) < 35
    with pytest.raises(PhotoRejected) as info:
        check_photo(model, face_bytes("Ahmad_Masood", 2))
    assert info.value.code == "photo_not_frontal"
    assert info.value.report is not None and abs(info.value.report.pose.yaw) > 35
    assert count(FaceTemplate) == 0 and count(JournalEntry) == 0


# ---- no photo reaches the disk ----------------------------------------------------------------------------------


def test_the_scan_finds_a_photo_among_random_bytes() -> None:
    noise = np.random.default_rng(7).bytes(50_000)
    assert images_in(noise) == []
    jpeg, png = face_bytes("Al_Pacino"), encoded(face_image(), "PNG")
    assert images_in(noise[:100] + jpeg + noise + png) == [100, 100 + len(jpeg) + len(noise)]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_no_photo_reaches_the_database_keys_or_temporary_files(
    model: FaceModel,
    keys: ServerKeys,
    key_dir: Path,
    site: Site,
    make_person: Callable[..., Person],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    # Anything that asks for a temporary file during enrollment gets it here, where it is scanned.
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setenv("TMPDIR", str(scratch))
    photos = [face_bytes(name, n) for name, n in (("Al_Pacino", 1), ("Al_Pacino", 2), ("Aaron_Sorkin", 1))]
    photos.append(encoded(face_image("Adam_Sandler", 1), "PNG"))
    photos.append(encoded(face_image("Alan_Ball", 1), "WEBP"))
    for index, photo in enumerate(photos):
        person = make_person(site, f"Person {index}")
        enroll(model, keys, person, give_consent(person), photo)
        check_photo(model, photo)
    photos.append(face_bytes("Alan_Ball", 2))
    enroll(model, keys, person, person.consents[0], photos[-1])  # a replacement
    with pytest.raises(PhotoRejected):
        enroll(model, keys, person, person.consents[0], face_bytes("Ahmad_Masood", 2))
    db.session.rollback()
    assert count(FaceTemplate) == len(photos) - 1
    db.session.remove()
    db.engine.dispose()

    files = [p for root in (tmp_path, key_dir) for p in root.rglob("*") if p.is_file()]
    assert any(p.name.startswith("gatehouse.db") for p in files)
    chunks = [photo[start : start + 48] for photo in photos for start in range(100, len(photo) - 48, 997)]
    for path in files:
        data = path.read_bytes()
        assert images_in(data) == [], f"an image signature in {path}"
        assert not any(chunk in data for chunk in chunks), f"photo bytes in {path}"


# ---- the engine of the app --------------------------------------------------------------------------------------


def test_app_creation_loads_no_model_and_first_use_says_what_is_wrong(
    db_url: str, key_dir: Path, keys: ServerKeys, tmp_path: Path
) -> None:
    missing = tmp_path / "no-models"
    config = server_config(db_url, key_dir, face={"engine": "opencv", "model_dir": str(missing)})
    app = create_app(config, keys=keys, testing=True)  # would raise if it loaded the model
    with app.app_context():
        engine = state().face
        assert engine.configured and engine.limits == QualityLimits()
        with pytest.raises(FaceUnavailable) as info:
            engine.model()
    assert str(missing) in info.value.message and info.value.http_status == 503


def test_without_a_face_section_the_server_says_so(db_url: str, key_dir: Path, keys: ServerKeys) -> None:
    app = create_app(server_config(db_url, key_dir), keys=keys, testing=True)
    with app.app_context():
        engine = state().face
        assert not engine.configured
        for use in (engine.model, lambda: engine.limits, lambda: engine.photo_limits):
            with pytest.raises(FaceUnavailable) as info:
                use()
            assert info.value.message == NOT_CONFIGURED
    assert NOT_CONFIGURED.startswith("face enrollment needs a [face] section in the server config: ")


def test_the_model_loads_once_and_serves_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = engine_for("opencv", "opencv_zoo")
    loads: list[int] = []
    real_load = FaceServerConfig.load

    def counting_load(self: FaceServerConfig) -> FaceModel:
        loads.append(1)
        return real_load(self)

    monkeypatch.setattr(FaceServerConfig, "load", counting_load)
    photos = [face_bytes(name) for name in ("Al_Pacino", "Aaron_Sorkin", "Adam_Sandler", "Alan_Ball")] * 2
    results: dict[int, bytes] = {}
    start = threading.Barrier(len(photos))

    def work(index: int) -> None:
        start.wait()
        results[index] = template_from_photo(engine.model(), photos[index]).template_bytes()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(photos))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Every thread asked for the model at once: one load; concurrent inference gives the serial results.
    expected = [template_from_photo(engine.model(), photo).template_bytes() for photo in photos]
    assert loads == [1]
    assert [results[i] for i in range(len(photos))] == expected


# ---- config -----------------------------------------------------------------------------------------------------


def test_every_face_config_field_is_described() -> None:
    for name, field in FaceServerConfig.model_fields.items():
        assert field.description, f"FaceServerConfig.{name} has no description"
    assert ServerConfig.model_fields["face"].description


def test_face_config_turns_into_the_engines_limits(tmp_path: Path) -> None:
    config = parse_config(
        FaceServerConfig,
        {"engine": "insightface", "model_dir": "models", "max_photo_bytes": 2_000_000, "min_face_px": 80},
        base_dir=tmp_path,
    )
    assert config.model_dir == tmp_path / "models"
    assert config.photo_limits() == PhotoLimits(max_bytes=2_000_000, max_pixels=40_000_000)
    assert config.quality_limits() == QualityLimits(min_face_px=80)


@pytest.mark.parametrize(
    "bad",
    [
        {"colour": "blue"},
        {"engine": "dlib"},
        {"max_photo_bytes": 50_000_000},
        {"min_face_px": 10},
        {"max_yaw_deg": 0},
        {"max_pitch_deg": 120},
    ],
)
def test_bad_face_config_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        FaceServerConfig.model_validate({"engine": "opencv", "model_dir": "/m", **bad})


# ---- CLI --------------------------------------------------------------------------------------------------------


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture
def cli_server(tmp_path: Path, key_dir: Path) -> Iterator[tuple[Path, dict[str, int]]]:
    """A server config with a [face] section, an upgraded database, a face site and two people (one consented)."""
    if not (MODELS / "buffalo_s").is_dir():
        pytest.fail(f"face models not found in {MODELS}: set GATEHOUSE_SHARED to the shared folder")
    path = tmp_path / "server.toml"
    path.write_text(
        f'mode = "production"\ndatabase_url = "sqlite:///{tmp_path / "gh.db"}"\nkey_dir = "{key_dir}"\n'
        f'[face]\nengine = "insightface"\nmodel_dir = "{MODELS / "buffalo_s"}"\n'
    )
    assert run("db", "upgrade", "--config", str(path))[0] == 0
    app = create_app(load_server_config(path))
    with app.app_context():
        site = sites.create_site(db.session, Actor("t"), code="oak", name="Oak Park")
        site.face_enabled = True
        alice = people.create_person(db.session, Actor("t"), site, full_name="Alice")
        bob = people.create_person(db.session, Actor("t"), site, full_name="Bob")
        db.session.flush()
        consent = give_consent(alice)
        ids = {"alice": alice.id, "bob": bob.id, "consent": consent.id}
        db.session.remove()
        db.engine.dispose()
    yield path, ids


def stored_templates(config: Path) -> list[tuple[int, int, str]]:
    app = create_app(load_server_config(config))
    with app.app_context():
        rows = [(t.id, t.person_id, t.model_id) for t in db.session.scalars(select(FaceTemplate))]
        db.session.remove()
        db.engine.dispose()
    return rows


def test_cli_face_enroll(cli_server: tuple[Path, dict[str, int]]) -> None:
    config, ids = cli_server
    photo = str(face_path("Al_Pacino"))
    code, output = run("face", "enroll", "--config", str(config), "--person", str(ids["alice"]), "--photo", photo)
    assert code == 0, output
    assert f"stored face template 1 (model {INSIGHTFACE_ID})" in output
    assert "measured: face " in output and " px, detector score " in output and "yaw " in output
    assert stored_templates(config) == [(1, ids["alice"], INSIGHTFACE_ID)]

    # Refused photo: the advice and what was measured, exit 1, the stored template untouched.
    code, output = run(
        "face",
        "enroll",
        "--config",
        str(config),
        "--person",
        str(ids["alice"]),
        "--photo",
        str(face_path("Ahmad_Masood", 2)),
    )
    assert code == 1
    assert f"photo refused (photo_not_frontal): {ADVICE[QualityReason.NOT_FRONTAL]}" in output
    assert "measured: face " in output
    # No consent: refused before the photo is read as one.
    code, output = run("face", "enroll", "--config", str(config), "--person", str(ids["bob"]), "--photo", photo)
    assert code == 2 and "No active face consent" in output
    code, output = run(
        "face",
        "enroll",
        "--config",
        str(config),
        "--person",
        str(ids["bob"]),
        "--consent",
        str(ids["consent"]),
        "--photo",
        photo,
    )
    assert code == 2 and "No active face consent" in output
    code, output = run("face", "enroll", "--config", str(config), "--person", "999", "--photo", photo)
    assert code == 2 and "no person with id 999" in output
    # An explicit consent works like the default one; re-enrolling replaces the template.
    code, output = run(
        "face",
        "enroll",
        "--config",
        str(config),
        "--person",
        str(ids["alice"]),
        "--consent",
        str(ids["consent"]),
        "--photo",
        str(face_path("Al_Pacino", 2)),
    )
    assert code == 0, output
    assert stored_templates(config) == [(2, ids["alice"], INSIGHTFACE_ID)]


def test_cli_face_check(cli_server: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    config, _ids = cli_server
    code, output = run("face", "check", "--config", str(config), "--photo", str(face_path("Al_Pacino")))
    assert code == 0, output
    assert "photo accepted" in output and "measured: face " in output
    code, output = run("face", "check", "--config", str(config), "--photo", str(face_path("Ahmad_Masood", 2)))
    assert code == 1 and "photo refused (photo_not_frontal)" in output
    code, output = run("face", "check", "--config", str(config), "--photo", str(tmp_path / "absent.jpg"))
    assert code == 2 and "does not exist" in output
    assert stored_templates(config) == []


def test_cli_without_a_face_section_says_so(tmp_path: Path, key_dir: Path) -> None:
    path = tmp_path / "server.toml"
    path.write_text(f'database_url = "sqlite:///{tmp_path / "gh.db"}"\nkey_dir = "{key_dir}"\n')
    code, output = run("face", "check", "--config", str(path), "--photo", str(face_path("Al_Pacino")))
    assert code == 2 and "face enrollment needs a [face] section in the server config" in output
    assert run("db", "upgrade", "--config", str(path))[0] == 0
    code, output = run("face", "enroll", "--config", str(path), "--person", "1", "--photo", str(face_path("Al_Pacino")))
    assert code == 2 and "face enrollment needs a [face] section in the server config" in output


def test_example_config_face_section_is_the_licence_clean_engine() -> None:
    config = load_server_config(REPO / "config" / "server.example.toml")
    assert config.face is not None and config.face.engine == "opencv"
    assert config.face.quality_limits() == QualityLimits() and config.face.photo_limits() == PhotoLimits()
