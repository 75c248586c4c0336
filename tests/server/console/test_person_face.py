"""The face part of the console's person page: states, consent, decline, real photo enrollment, withdrawal."""

from __future__ import annotations

import dataclasses
import io
import re
import secrets
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image as PilImage
from sqlalchemy import func, select

from bench.face_data import SHARED
from gatehouse_core.keyring import ServerKeys
from gatehouse_core.schedule import Window
from server.config import FaceServerConfig
from server.extensions import db
from server.models import (
    AuditEntry,
    ConsentChannel,
    ConsentGiver,
    ConsentRecord,
    ErasureReceipt,
    FaceTemplate,
    Person,
    Site,
    Terminal,
)
from server.services.access import access, sites
from server.services.face import templates as face_templates
from server.services.face.enrollment import EnrollmentEngine
from server.services.privacy import erasure, privacy
from server.services.terminals import terminals
from tests.conftest import TEST_ACTOR, csrf_token, login
from tests.support.faces import images_in
from tests.support.privacy import enable_face, give_consent, notice_fields

MODEL_DIR = SHARED / "models" / "buffalo_s"
FACES = SHARED / "data" / "faces-dev"
TEST_MODEL = "test-model-000000000000"


@pytest.fixture(scope="module")
def engine() -> EnrollmentEngine:
    """The real InsightFace models, loaded once for the module."""
    if not MODEL_DIR.is_dir():
        pytest.fail(f"face models not found in {MODEL_DIR}: set GATEHOUSE_SHARED to the shared folder")
    made = EnrollmentEngine(FaceServerConfig(engine="insightface", model_dir=MODEL_DIR))
    made.model()
    return made


@pytest.fixture
def site(make_site: Callable[..., Site]) -> Site:
    return make_site("maple")


@pytest.fixture
def terminal(site: Site) -> Terminal:
    door = sites.save_door(db.session, TEST_ACTOR, site, "North gate", sites.DoorMethods(face=True))
    made = terminals.provision_terminal(db.session, TEST_ACTOR, site, "North terminal", [door]).terminal
    access.create_group(db.session, TEST_ACTOR, site, "Residents", [door], [Window(d, 0, 1440) for d in range(7)])
    db.session.commit()
    return made


@pytest.fixture
def manager(client: FlaskClient, make_user: Callable) -> FlaskClient:
    make_user("manager1")
    login(client, "manager1")
    return client


def adult(make_person: Callable[..., Person], site: Site, name: str = "Zhang Min") -> Person:
    return make_person(site, name, date_of_birth=date(1985, 3, 2))


def child(make_person: Callable[..., Person], site: Site) -> Person:
    today = date.today()
    return make_person(site, "Zhang Xiao", date_of_birth=date(today.year - 8, 1, 1))


def post(client: FlaskClient, person: Person, path: str, **data: object) -> object:
    page = client.get(f"/people/{person.id}")
    return client.post(f"/people/{person.id}/{path}", data={"csrf_token": csrf_token(page.text), **data})


def face_state(html: str) -> str:
    match = re.search(r'data-face-state="([a-z_]+)"', html)
    assert match, "no face state on the page"
    return match.group(1)


def consents(person: Person) -> list[ConsentRecord]:
    db.session.expire_all()
    return list(db.session.scalars(select(ConsentRecord).where(ConsentRecord.person_id == person.id)))


def templates_of(person: Person) -> list[FaceTemplate]:
    db.session.expire_all()
    return list(db.session.scalars(select(FaceTemplate).where(FaceTemplate.person_id == person.id)))


def store(keys: ServerKeys, person: Person, consent: ConsentRecord) -> FaceTemplate:
    template = face_templates.store_template(
        db.session, TEST_ACTOR, keys, person, consent, TEST_MODEL, secrets.token_bytes(512)
    )
    db.session.commit()
    return template


ALTERNATIVES = "Face entry is optional: key card, ID document and app code open the same doors"


# ---- the page in every face state ---------------------------------------------------------------------------------


def test_face_off_at_the_site_says_so_and_offers_nothing(manager: FlaskClient, site: Site, make_person) -> None:
    person = adult(make_person, site)
    page = manager.get(f"/people/{person.id}").text
    assert face_state(page) == "off" and "switched off at this site" in page
    assert ALTERNATIVES in page
    for absent in ("Record consent", "Upload photo", "Withdraw consent", "Record that they declined"):
        assert absent not in page


def test_not_asked_shows_the_notice_and_the_consent_form(manager: FlaskClient, site: Site, make_person) -> None:
    enable_face(site, TEST_MODEL)
    person = adult(make_person, site)
    notice = privacy.current_notice(db.session, site)
    assert notice is not None
    page = manager.get(f"/people/{person.id}").text
    assert face_state(page) == "not_asked" and ALTERNATIVES in page
    assert 'class="notice-text"' in page and f"version {notice.version}" in page
    assert "Opening the compound&#39;s gates" in page
    assert f'name="notice_sha256" value="{notice.sha256}"' in page
    for label in ("Given by", "the person", "a guardian", "Guardian's name", "Relationship"):
        assert label in page
    assert "Record consent" in page and "Record that they declined" in page
    assert "Upload photo" not in page and "Withdraw consent" not in page


def test_minor_at_a_site_without_face_for_minors_is_not_offered(manager: FlaskClient, site: Site, make_person) -> None:
    enable_face(site, TEST_MODEL)
    person = child(make_person, site)
    page = manager.get(f"/people/{person.id}").text
    assert face_state(page) == "minor_not_offered" and "does not enroll the faces of people under 14" in page
    assert "Record consent" not in page


def test_stale_consent_asks_for_renewal_with_the_same_form(manager: FlaskClient, site: Site, make_person) -> None:
    enable_face(site, TEST_MODEL)
    person = adult(make_person, site)
    give_consent(person)
    privacy.publish_notice(db.session, TEST_ACTOR, site, notice_fields(purpose="Opening the gates, version two."))
    db.session.commit()
    page = manager.get(f"/people/{person.id}").text
    assert face_state(page) == "stale" and "record their consent again" in page
    assert "Record consent" in page and "version 2" in page
    response = post(manager, person, "face/consent", given_by="self", notice_sha256=sha_on(page))
    assert response.status_code == 302
    assert face_state(manager.get(f"/people/{person.id}").text) == "consented"


def test_enrolled_shows_the_template_and_which_terminals_hold_it(
    manager: FlaskClient, site: Site, terminal: Terminal, make_person, keys: ServerKeys
) -> None:
    enable_face(site, TEST_MODEL)
    person = adult(make_person, site)
    template = store(keys, person, give_consent(person))
    erasure.record_holdings(db.session, terminal.id, [template.id])
    db.session.commit()
    page = manager.get(f"/people/{person.id}").text
    assert face_state(page) == "enrolled" and TEST_MODEL in page and "North terminal" in page
    assert "Withdraw consent and erase face data" in page and "Record consent" not in page


# ---- consent ------------------------------------------------------------------------------------------------------


def sha_on(html: str) -> str:
    match = re.search(r'name="notice_sha256" value="([0-9a-f]{64})"', html)
    assert match
    return match.group(1)


def test_consent_by_the_person(manager: FlaskClient, site: Site, make_person) -> None:
    enable_face(site, TEST_MODEL)
    person = adult(make_person, site)
    page = manager.get(f"/people/{person.id}").text
    response = post(manager, person, "face/consent", given_by="self", notice_sha256=sha_on(page))
    assert response.status_code == 302
    [record] = consents(person)
    assert record.channel is ConsentChannel.CONSOLE and record.given_by is ConsentGiver.SELF
    assert record.operator_id is not None and record.guardian_name is None
    page = manager.get(f"/people/{person.id}").text
    assert face_state(page) == "consented" and "Consent to face entry recorded." in page


def test_consent_by_a_guardian_for_a_minor(manager: FlaskClient, site: Site, make_person) -> None:
    enable_face(site, TEST_MODEL)
    site.no_face_for_minors = False
    db.session.commit()
    person = child(make_person, site)
    page = manager.get(f"/people/{person.id}").text
    # A minor's form starts with "a guardian" chosen.
    assert re.search(r'value="guardian"\s+checked', page)
    sha = sha_on(page)

    refused = post(manager, person, "face/consent", given_by="self", notice_sha256=sha)
    assert refused.status_code == 409 and "a parent or guardian must give the consent" in refused.text
    assert 'role="alert"' in refused.text
    unnamed = post(manager, person, "face/consent", given_by="guardian", notice_sha256=sha, guardian_name="Li Na")
    assert unnamed.status_code == 422 and 'id="guardian-error"' in unnamed.text
    # The form comes back with what was typed.
    assert 'value="Li Na"' in unnamed.text
    assert consents(person) == []

    response = post(
        manager,
        person,
        "face/consent",
        given_by="guardian",
        notice_sha256=sha,
        guardian_name="Li Na",
        guardian_relationship="mother",
    )
    assert response.status_code == 302
    [record] = consents(person)
    assert record.given_by is ConsentGiver.GUARDIAN
    assert (record.guardian_name, record.guardian_relationship) == ("Li Na", "mother")
    assert "Li Na (guardian, mother)" in manager.get(f"/people/{person.id}").text


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("notice_changed", "not the current one"),
        ("date_of_birth_needed", "Record the person&#39;s date of birth first"),
        ("minor_face_off", "does not enroll the faces of people under 14"),
    ],
)
def test_consent_refusals_are_shown_and_change_nothing(
    manager: FlaskClient, site: Site, make_person, case: str, message: str
) -> None:
    enable_face(site, TEST_MODEL)
    if case == "date_of_birth_needed":
        person = make_person(site, "No Birthday")
    elif case == "minor_face_off":
        person = child(make_person, site)
    else:
        person = adult(make_person, site)
    notice = privacy.current_notice(db.session, site)
    assert notice is not None
    sha = "0" * 64 if case == "notice_changed" else notice.sha256
    given_by = "guardian" if case == "minor_face_off" else "self"
    response = post(
        manager,
        person,
        "face/consent",
        given_by=given_by,
        notice_sha256=sha,
        guardian_name="Li Na",
        guardian_relationship="mother",
    )
    assert response.status_code in (409, 422)
    assert message in response.text and 'id="consent-error" role="alert"' in response.text
    assert consents(person) == []


def test_decline_is_recorded(manager: FlaskClient, site: Site, make_person) -> None:
    enable_face(site, TEST_MODEL)
    person = adult(make_person, site)
    assert post(manager, person, "face/decline").status_code == 302
    db.session.expire_all()
    assert db.session.get(Person, person.id).face_declined_at is not None  # type: ignore[union-attr]
    page = manager.get(f"/people/{person.id}").text
    assert face_state(page) == "declined" and "Do not ask again" in page
    assert "Record that they declined" not in page and "Record consent" in page
    again = post(manager, person, "face/decline")
    assert again.status_code == 409 and "already declined" in again.text


# ---- photo enrollment with the real model -------------------------------------------------------------------------


@pytest.fixture
def with_engine(app: Flask, engine: EnrollmentEngine) -> EnrollmentEngine:
    """The app's face engine replaced by the module's loaded one (as a configured server has)."""
    app.extensions["gatehouse"] = dataclasses.replace(app.extensions["gatehouse"], face=engine)
    return engine


def photo(name: str = "Al_Pacino", number: int = 1) -> bytes:
    return (FACES / name / f"{number}.jpg").read_bytes()


def upload(client: FlaskClient, person: Person, data: bytes, filename: str = "face.jpg") -> object:
    page = client.get(f"/people/{person.id}")
    return client.post(
        f"/people/{person.id}/face/photo",
        data={"csrf_token": csrf_token(page.text), "photo": (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
    )


def consented_adult(with_engine: EnrollmentEngine, site: Site, make_person) -> Person:
    enable_face(site, with_engine.model().model_id)
    person = adult(make_person, site)
    give_consent(person)
    return person


def test_real_photo_stores_a_template_and_shows_the_figures(
    manager: FlaskClient, with_engine: EnrollmentEngine, site: Site, make_person, tmp_path: Path
) -> None:
    person = consented_adult(with_engine, site, make_person)
    page = manager.get(f"/people/{person.id}").text
    # The picker offers every format the engine decodes (issue 19), WebP included.
    accepted = 'accept="image/jpeg,image/png,image/webp,.jpg,.jpeg,.png,.webp"'
    assert '<label for="photo">Photo</label>' in page and accepted in page
    data = photo()
    response = upload(manager, person, data)
    assert response.status_code == 302
    [template] = templates_of(person)
    assert template.model_id == with_engine.model().model_id
    page = manager.get(f"/people/{person.id}")
    assert face_state(page.text) == "enrolled" and "Template stored" in page.text
    assert "Face size (pixels)" in page.text and "Sharpness" in page.text
    # Each gate as pass or fail with its threshold, not bare numbers.
    assert re.search(r"Sharpness [0-9.]+ \u2014 pass \(needs \u2265 [0-9.]+\)", page.text)
    assert images_in(page.get_data()) == []
    # The figures are shown once; the photo went nowhere.
    assert "Template stored" not in manager.get(f"/people/{person.id}").text
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "template.add"))
    assert entry is not None and "sharpness" in entry.details


@pytest.mark.parametrize("kind", ["garbage", "no_face"])
def test_refused_photo_shows_the_advice_and_stores_nothing(
    manager: FlaskClient, with_engine: EnrollmentEngine, site: Site, make_person, kind: str
) -> None:
    person = consented_adult(with_engine, site, make_person)
    if kind == "garbage":
        data, advice = b"\x00this is no photo\xff" * 64, "could not be read"
    else:
        buffer = io.BytesIO()
        PilImage.new("RGB", (640, 480), (120, 130, 140)).save(buffer, "PNG")
        data, advice = buffer.getvalue(), "No face"
    response = upload(manager, person, data, "x.png")
    assert response.status_code == 422
    assert 'id="photo-error" role="alert"' in response.text and advice in response.text
    assert 'aria-invalid="true"' in response.text
    assert images_in(response.get_data()) == []
    assert templates_of(person) == []


def test_upload_without_a_file_asks_for_one(
    manager: FlaskClient, with_engine: EnrollmentEngine, site: Site, make_person
) -> None:
    person = consented_adult(with_engine, site, make_person)
    response = post(manager, person, "face/photo")
    assert response.status_code == 422 and "Choose a photo" in response.text


def test_server_without_a_face_engine_says_so(manager: FlaskClient, site: Site, make_person) -> None:
    enable_face(site, TEST_MODEL)
    person = adult(make_person, site)
    give_consent(person)
    page = manager.get(f"/people/{person.id}").text
    assert "not set up to make face templates" in page and "Upload photo" not in page
    response = upload(manager, person, photo())
    assert response.status_code == 503 and "[face] section" in response.text
    assert templates_of(person) == []


def test_photo_without_consent_is_refused_before_reading(
    manager: FlaskClient, with_engine: EnrollmentEngine, site: Site, make_person
) -> None:
    enable_face(site, with_engine.model().model_id)
    person = adult(make_person, site)
    response = upload(manager, person, photo())
    assert response.status_code == 409 and "record their (or their guardian" in response.text
    assert templates_of(person) == []


# ---- withdrawal and its receipt -----------------------------------------------------------------------------------


def test_withdraw_erases_and_the_receipt_follows_the_terminals(
    manager: FlaskClient, site: Site, terminal: Terminal, make_person, keys: ServerKeys
) -> None:
    enable_face(site, TEST_MODEL)
    person = adult(make_person, site)
    template = store(keys, person, give_consent(person))
    erasure.record_holdings(db.session, terminal.id, [template.id])
    db.session.commit()
    response = post(manager, person, "face/withdraw")
    assert response.status_code == 302
    assert templates_of(person) == []
    [record] = consents(person)
    assert record.withdrawn_at is not None and record.withdrawal_channel is ConsentChannel.CONSOLE
    receipt = db.session.scalar(select(ErasureReceipt).where(ErasureReceipt.template_id == template.id))
    assert receipt is not None

    page = manager.get(f"/people/{person.id}").text
    fragment_url = f"/people/{person.id}/receipts/{receipt.id}"
    assert 'aria-label="Erasure receipt"' in page and f'data-poll="{fragment_url}"' in page
    # A withdrawal is named as one, never as "declined".
    assert face_state(page) == "withdrawn"
    assert "Consent withdrawn on " in page and "face data erased" in page and "declined" not in page
    waiting = manager.get(fragment_url).text
    assert "North terminal" in waiting and "Waiting for the terminal" in waiting and "data-final" not in waiting

    erasure.confirm_items(db.session, terminal, [template.id])
    db.session.commit()
    done = manager.get(fragment_url).text
    assert "All terminals confirmed" in done and "data-final" in done and "Confirmed" in done
    page = manager.get(f"/people/{person.id}").text
    assert "All terminals confirmed" in page and f'data-poll="{fragment_url}"' not in page


def test_withdraw_without_terminals_is_complete_at_once(
    manager: FlaskClient, site: Site, make_person, keys: ServerKeys
) -> None:
    enable_face(site, TEST_MODEL)
    person = adult(make_person, site)
    store(keys, person, give_consent(person))
    assert post(manager, person, "face/withdraw").status_code == 302
    [receipt] = erasure.receipts_of_person(db.session, person.id)
    fragment = manager.get(f"/people/{person.id}/receipts/{receipt.id}").text
    assert "Deleted on the server; no terminal held it" in fragment and "data-final" in fragment


def test_withdraw_with_nothing_to_withdraw_is_refused(manager: FlaskClient, site: Site, make_person) -> None:
    enable_face(site, TEST_MODEL)
    person = adult(make_person, site)
    response = post(manager, person, "face/withdraw")
    assert response.status_code == 409 and "no face consent to withdraw" in response.text


def test_receipt_of_another_person_is_not_shown(
    manager: FlaskClient, site: Site, make_person, keys: ServerKeys
) -> None:
    enable_face(site, TEST_MODEL)
    person = adult(make_person, site)
    store(keys, person, give_consent(person))
    post(manager, person, "face/withdraw")
    [receipt] = erasure.receipts_of_person(db.session, person.id)
    other = adult(make_person, site, "Wang Fang")
    assert manager.get(f"/people/{other.id}/receipts/{receipt.id}").status_code == 404


def test_no_page_shows_template_bytes(manager: FlaskClient, site: Site, make_person, keys: ServerKeys) -> None:
    enable_face(site, TEST_MODEL)
    person = adult(make_person, site)
    template = store(keys, person, give_consent(person))
    sealed = template.sealed_vector
    body = manager.get(f"/people/{person.id}").get_data()
    for start in range(0, len(sealed) - 16, 64):
        assert sealed[start : start + 16] not in body
    assert db.session.scalar(select(func.count()).select_from(FaceTemplate)) == 1
