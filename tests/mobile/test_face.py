"""The app's face part: status, notice, consent, withdrawal with receipts, decline, and selfie enrollment with the
real model. A resident only ever reaches their own face data; photos and templates never come back."""

from __future__ import annotations

import base64
import io
import re
import secrets
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image as PilImage
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from bench.face_data import SHARED
from gatehouse_core.keyring import ServerKeys
from server.config import FaceServerConfig
from server.extensions import db
from server.models import (
    AuditEntry,
    ConsentChannel,
    ConsentRecord,
    ErasureReceipt,
    FaceTemplate,
    Person,
    Site,
    Terminal,
)
from server.services.face import templates as face_templates
from server.services.face.consent_rules import active_consent
from server.services.face.enrollment import EnrollmentEngine
from server.services.privacy import erasure, notice_text, privacy
from server.services.terminals import terminals
from tests.conftest import TEST_ACTOR
from tests.mobile.conftest import Household
from tests.support.faces import images_in
from tests.support.privacy import enable_face, give_consent, notice_fields

MODEL_DIR = SHARED / "models" / "buffalo_s"
FACES = SHARED / "data" / "faces-dev"
TEST_MODEL = "test-model-000000000000"
ADULT = date(1988, 4, 9)
GARBAGE = b"\x00this is no photo\xff" * 64

FACE = "/api/v1/me/face"
NOTICE = f"{FACE}/notice"
CONSENT = f"{FACE}/consent"
DECLINE = f"{FACE}/decline"
PHOTO = f"{FACE}/photo"


def face_site(make_site: Callable[..., Site], model_id: str = TEST_MODEL) -> Site:
    return enable_face(make_site(), model_id)


def adult(make_household: Callable[..., Household], site: Site, name: str = "Li Wei") -> Household:
    return make_household(site, name=name, date_of_birth=ADULT)


def consent_body(site: Site) -> dict[str, Any]:
    notice = privacy.current_notice(db.session, site)
    assert notice is not None
    return {"notice_version": notice.version, "notice_sha256": notice.sha256}


def consents_of(person: Person) -> list[ConsentRecord]:
    db.session.expire_all()
    return list(db.session.scalars(select(ConsentRecord).where(ConsentRecord.person_id == person.id)))


def templates_of(person: Person) -> list[FaceTemplate]:
    db.session.expire_all()
    return list(db.session.scalars(select(FaceTemplate).where(FaceTemplate.person_id == person.id)))


def store(keys: ServerKeys, person: Person) -> FaceTemplate:
    """A template under the person's active consent (random bytes: these tests are not about the model)."""
    db.session.expire_all()
    given = active_consent(person)
    assert given is not None
    template = face_templates.store_template(
        db.session, TEST_ACTOR, keys, person, given, TEST_MODEL, secrets.token_bytes(512)
    )
    db.session.commit()
    return template


def terminal_holding(site: Site, template: FaceTemplate, name: str = "North terminal") -> Terminal:
    """A terminal that was sent the template (so its erasure waits for that terminal's confirmation)."""
    made = terminals.provision_terminal(db.session, TEST_ACTOR, site, name, list(site.doors)).terminal
    erasure.record_holdings(db.session, made.id, [template.id])
    db.session.commit()
    return made


def refused(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_json()
    body: dict[str, Any] = response.get_json()
    assert body["error"] == code and body["message"], body
    return body


# ---- status and notice --------------------------------------------------------------------------------------------


def test_a_new_resident_is_not_asked_and_may_be_offered_face(
    mobile: FlaskClient, make_site: Callable[..., Site], make_household: Callable[..., Household]
) -> None:
    site = face_site(make_site)
    home = adult(make_household, site)
    notice = privacy.current_notice(db.session, site)
    assert notice is not None

    response = mobile.get(FACE, headers=home.headers)

    assert response.status_code == 200
    assert response.get_json() == {
        "state": "not_asked",
        "offer": True,
        "site_face_enabled": True,
        "app_enrollment_allowed": False,
        "consent": None,
        "notice": {"version": 1, "sha256": notice.sha256},
        "templates": [],
        "erasures_pending": 0,
    }
    site.app_face_enrollment = True
    db.session.commit()
    assert mobile.get(FACE, headers=home.headers).get_json()["app_enrollment_allowed"] is True


def test_a_site_without_face_offers_nothing_and_takes_no_consent(
    mobile: FlaskClient, make_site: Callable[..., Site], make_household: Callable[..., Household]
) -> None:
    site = make_site()
    # Allowing app enrollment means nothing while face entry itself is off.
    site.app_face_enrollment = True
    db.session.commit()
    home = adult(make_household, site)

    status = mobile.get(FACE, headers=home.headers).get_json()
    assert status["state"] == "off" and status["offer"] is False
    assert status["site_face_enabled"] is False and status["app_enrollment_allowed"] is False
    refused(mobile.get(NOTICE, headers=home.headers), 422, "face_disabled")
    body = {"notice_version": 1, "notice_sha256": "0" * 64}
    refused(mobile.post(CONSENT, json=body, headers=home.headers), 422, "face_disabled")
    assert consents_of(home.person) == []


def test_the_notice_comes_with_the_version_and_hash_to_echo_back(
    mobile: FlaskClient, make_site: Callable[..., Site], make_household: Callable[..., Household]
) -> None:
    site = face_site(make_site)
    privacy.publish_notice(db.session, TEST_ACTOR, site, notice_fields(retention="Until you withdraw."))
    db.session.commit()
    home = adult(make_household, site)

    response = mobile.get(NOTICE, headers=home.headers)

    assert response.status_code == 200
    body = response.get_json()
    assert body["version"] == 2 and "Until you withdraw." in body["text"]
    assert body["sha256"] == privacy.notice_digest(body["text"])
    assert body["published_at"].endswith(("+00:00", "Z"))
    assert body["readings"] == []  # published in English only: the app shows the text
    assert mobile.get(FACE, headers=home.headers).get_json()["notice"] == {"version": 2, "sha256": body["sha256"]}


def test_a_bilingual_notice_comes_by_language_with_headings_in_that_language(
    mobile: FlaskClient, make_site: Callable[..., Site], make_household: Callable[..., Household]
) -> None:
    site = face_site(make_site)
    starter = notice_text.starter_draft(template_days=365, event_days=90)
    filled = {
        key: {lang: re.sub(r"\[to complete: [^\]]*\]|【待填写：[^】]*】", "X", text) for lang, text in texts.items()}  # noqa: RUF001
        for key, texts in starter.sections.items()
    }
    draft = replace(starter, controller="Maple Court Ltd.", contact="010 5555 0100", sections=filled)
    privacy.publish_notice(db.session, TEST_ACTOR, site, draft)
    db.session.commit()
    home = adult(make_household, site)

    body = mobile.get(NOTICE, headers=home.headers).get_json()

    assert body["sha256"] == privacy.notice_digest(body["text"])
    readings = {reading["lang"]: reading for reading in body["readings"]}
    assert set(readings) == {"en", "zh"}
    for lang, reading in readings.items():
        assert [s["heading"] for s in reading["sections"]] == [s.heading[lang] for s in notice_text.SECTIONS]
        assert reading["closing"] == notice_text.GUARANTEE[lang] and reading["title"] in body["text"]
        for section in reading["sections"]:
            assert section["text"].split("\n")[0] in body["text"]  # each reading is part of the hashed text
    assert readings["zh"]["sections"][0] == {
        "key": "controller",
        "heading": "谁保管这些数据",
        "text": "Maple Court Ltd.\n" + filled["controller"]["zh"],
    }
    given = mobile.post(
        f"{FACE}/consent",
        headers=home.headers,
        json={"notice_version": body["version"], "notice_sha256": body["sha256"]},
    )
    assert given.status_code == 201


def test_a_face_site_without_a_notice_says_so(
    mobile: FlaskClient, make_site: Callable[..., Site], make_household: Callable[..., Household]
) -> None:
    site = make_site()
    site.face_enabled = True  # skipping the set-up enable_face insists on, as a broken database might
    db.session.commit()
    home = adult(make_household, site)
    refused(mobile.get(NOTICE, headers=home.headers), 404, "notice_missing")
    assert mobile.get(FACE, headers=home.headers).get_json()["notice"] is None


def test_face_calls_need_a_signed_in_resident(mobile: FlaskClient) -> None:
    for response in (mobile.get(FACE), mobile.delete(CONSENT), mobile.post(PHOTO)):
        refused(response, 401, "token_missing")


# ---- consent --------------------------------------------------------------------------------------------------------


def test_consent_under_the_current_notice_is_recorded_as_the_residents_own(
    mobile: FlaskClient, make_site: Callable[..., Site], make_household: Callable[..., Household]
) -> None:
    site = face_site(make_site)
    home = adult(make_household, site)
    notice = mobile.get(NOTICE, headers=home.headers).get_json()

    response = mobile.post(
        CONSENT,
        json={"notice_version": notice["version"], "notice_sha256": notice["sha256"]},
        headers=home.headers,
    )

    assert response.status_code == 201
    status = response.get_json()
    assert status["state"] == "consented" and status["offer"] is False and status["templates"] == []
    assert status["consent"]["channel"] == "app" and status["consent"]["given_by"] == "self"
    assert status["consent"]["notice_version"] == 1 and status["consent"]["expires_at"] is None
    [record] = consents_of(home.person)
    assert (record.id, record.channel, record.notice_sha256) == (
        status["consent"]["id"],
        ConsentChannel.APP,
        notice["sha256"],
    )
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "consent.give")).one()
    assert entry.actor_label == f"resident:{home.person.pseudonym}"
    assert mobile.get(FACE, headers=home.headers).get_json() == status

    again = mobile.post(CONSENT, json=consent_body(site), headers=home.headers)
    assert "already active" in refused(again, 409, "already_consented")["message"]
    assert len(consents_of(home.person)) == 1


@pytest.mark.parametrize("case", ["wrong_hash", "stale_version", "old_notice_hash"])
def test_consent_to_anything_but_the_current_notice_is_refused_and_stores_nothing(
    mobile: FlaskClient, make_site: Callable[..., Site], make_household: Callable[..., Household], case: str
) -> None:
    site = face_site(make_site)
    first = consent_body(site)
    privacy.publish_notice(db.session, TEST_ACTOR, site, notice_fields(contact="dpo@maple-court.example"))
    db.session.commit()
    current = consent_body(site)
    home = adult(make_household, site)
    body = {
        "wrong_hash": {**current, "notice_sha256": "ab" * 32},
        "stale_version": {**current, "notice_version": first["notice_version"]},
        "old_notice_hash": {**current, "notice_sha256": first["notice_sha256"]},
    }[case]

    response = mobile.post(CONSENT, json=body, headers=home.headers)

    assert "fetch it again" in refused(response, 409, "notice_changed")["message"]
    assert consents_of(home.person) == []
    assert mobile.get(FACE, headers=home.headers).get_json()["state"] == "not_asked"


@pytest.mark.parametrize(
    "body",
    [
        {"notice_version": 1},
        {"notice_version": 1, "notice_sha256": "xyz"},
        {"notice_version": 1, "notice_sha256": "g" * 64},
        {"notice_version": 0, "notice_sha256": "a" * 64},
        {"notice_version": 1, "notice_sha256": "a" * 64, "given_by": "guardian"},
    ],
)
def test_a_malformed_consent_request_is_refused(
    mobile: FlaskClient, make_site: Callable[..., Site], make_household: Callable[..., Household], body: dict
) -> None:
    site = face_site(make_site)
    home = adult(make_household, site)
    body = refused(mobile.post(CONSENT, json=body, headers=home.headers), 400, "invalid_request")
    assert body["fields"]
    assert consents_of(home.person) == []


def test_a_minor_cannot_consent_in_the_app_and_is_told_a_guardian_must_at_the_office(
    mobile: FlaskClient, make_site: Callable[..., Site], make_household: Callable[..., Household]
) -> None:
    site = face_site(make_site)
    site.no_face_for_minors = False
    db.session.commit()
    child = make_household(site, name="Zhang Xiao", date_of_birth=date(date.today().year - 9, 1, 1))
    status = mobile.get(FACE, headers=child.headers).get_json()
    assert status["state"] == "not_asked"

    response = mobile.post(CONSENT, json=consent_body(site), headers=child.headers)

    message = refused(response, 409, "guardian_consent_needed")["message"]
    assert "guardian" in message and "management office" in message and "card" in message
    assert consents_of(child.person) == []


def test_a_minor_at_a_site_without_face_for_minors_is_not_offered_it(
    mobile: FlaskClient, make_site: Callable[..., Site], make_household: Callable[..., Household]
) -> None:
    site = face_site(make_site)  # no face for minors is the default
    child = make_household(site, name="Zhang Xiao", date_of_birth=date(date.today().year - 9, 1, 1))
    status = mobile.get(FACE, headers=child.headers).get_json()
    assert status["state"] == "minor_not_offered" and status["offer"] is False
    response = mobile.post(CONSENT, json=consent_body(site), headers=child.headers)
    assert "under 14" in refused(response, 422, "minor_face_off")["message"]
    assert consents_of(child.person) == []


def test_without_a_date_of_birth_the_resident_is_sent_to_the_office(
    mobile: FlaskClient, make_site: Callable[..., Site], make_household: Callable[..., Household]
) -> None:
    site = face_site(make_site)
    home = make_household(site)
    response = mobile.post(CONSENT, json=consent_body(site), headers=home.headers)
    assert "management office" in refused(response, 422, "date_of_birth_needed")["message"]
    assert consents_of(home.person) == []


# ---- withdrawal and decline -----------------------------------------------------------------------------------------


def test_withdrawing_takes_one_call_and_erases_every_template_with_receipts(
    mobile: FlaskClient, make_site: Callable[..., Site], make_household: Callable[..., Household], keys: ServerKeys
) -> None:
    site = face_site(make_site)
    home = adult(make_household, site)
    assert mobile.post(CONSENT, json=consent_body(site), headers=home.headers).status_code == 201
    template = store(keys, home.person)
    template_id = template.id
    terminal = terminal_holding(site, template)
    assert mobile.get(FACE, headers=home.headers).get_json()["state"] == "enrolled"

    response = mobile.delete(CONSENT, headers=home.headers)

    assert response.status_code == 200
    body = response.get_json()
    assert body["state"] == "declined" and body["withdrawn_at"]
    [receipt] = body["receipts"]
    assert receipt["reason"] == "consent_withdrawn" and receipt["complete"] is False
    assert receipt["terminals"] == [{"name": "North terminal", "confirmed_at": None}]
    assert templates_of(home.person) == []
    [record] = consents_of(home.person)
    assert record.withdrawn_at is not None and record.withdrawal_channel is ConsentChannel.APP
    stored = db.session.get(ErasureReceipt, receipt["id"])
    assert stored is not None and stored.template_id == template_id and stored.person_id == home.person.id

    status = mobile.get(FACE, headers=home.headers).get_json()
    assert status["templates"] == [] and status["consent"] is None
    assert status["state"] == "declined" and status["offer"] is False and status["erasures_pending"] == 1
    # The terminal confirms: nothing is pending any more.
    erasure.confirm_items(db.session, terminal, [template_id])
    db.session.commit()
    assert mobile.get(FACE, headers=home.headers).get_json()["erasures_pending"] == 0

    refused(mobile.delete(CONSENT, headers=home.headers), 409, "no_consent")


def test_withdrawing_consent_without_a_template_has_no_receipts(
    mobile: FlaskClient, make_site: Callable[..., Site], make_household: Callable[..., Household]
) -> None:
    site = face_site(make_site)
    home = adult(make_household, site)
    refused(mobile.delete(CONSENT, headers=home.headers), 409, "no_consent")
    give_consent(home.person)
    body = mobile.delete(CONSENT, headers=home.headers).get_json()
    assert body["receipts"] == [] and body["state"] == "declined"
    assert all(c.withdrawn_at is not None for c in consents_of(home.person))


def test_declining_is_recorded_once_and_not_over_a_consent(
    mobile: FlaskClient, make_site: Callable[..., Site], make_household: Callable[..., Household]
) -> None:
    site = face_site(make_site)
    home = adult(make_household, site)

    response = mobile.post(DECLINE, headers=home.headers)

    assert response.status_code == 200
    status = response.get_json()
    assert status["state"] == "declined" and status["offer"] is False
    db.session.expire_all()
    assert db.session.get(Person, home.person.id).face_declined_at is not None  # type: ignore[union-attr]
    refused(mobile.post(DECLINE, headers=home.headers), 409, "already_declined")
    # Changing one's mind is always possible: consenting clears the decline.
    assert mobile.post(CONSENT, json=consent_body(site), headers=home.headers).status_code == 201
    refused(mobile.post(DECLINE, headers=home.headers), 409, "consent_active")


def test_a_resident_only_ever_reaches_their_own_face_data(
    mobile: FlaskClient, make_site: Callable[..., Site], make_household: Callable[..., Household], keys: ServerKeys
) -> None:
    site = face_site(make_site)
    alice = adult(make_household, site, "Alice")
    bob = adult(make_household, site, "Bob")
    assert mobile.post(CONSENT, json=consent_body(site), headers=alice.headers).status_code == 201
    template = store(keys, alice.person)

    status = mobile.get(FACE, headers=bob.headers).get_json()
    assert status["state"] == "not_asked" and status["consent"] is None and status["templates"] == []
    refused(mobile.delete(CONSENT, headers=bob.headers), 409, "no_consent")
    assert mobile.post(DECLINE, headers=bob.headers).status_code == 200

    assert [t.id for t in templates_of(alice.person)] == [template.id]
    assert all(c.withdrawn_at is None for c in consents_of(alice.person))
    alice_status = mobile.get(FACE, headers=alice.headers).get_json()
    assert alice_status["state"] == "enrolled" and [t["id"] for t in alice_status["templates"]] == [template.id]


def test_the_openapi_document_describes_the_photo_upload_as_a_file(mobile: FlaskClient) -> None:
    spec = mobile.get("/api/v1/openapi.json").get_json()
    upload = spec["paths"]["/api/v1/me/face/photo"]["post"]
    form = upload["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert {"201", "403", "409", "413", "503", "401"} <= set(upload["responses"])
    assert "/api/v1/me/face/consent" in spec["paths"] and "delete" in spec["paths"]["/api/v1/me/face/consent"]
    schema = spec["components"]["schemas"][form["$ref"].rsplit("/", 1)[-1]] if "$ref" in form else form
    assert schema["properties"]["photo"] == {**schema["properties"]["photo"], "format": "binary", "type": "string"}


# ---- selfie enrollment with the real model ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine() -> EnrollmentEngine:
    """The real InsightFace models, loaded once for the module (each app would otherwise load them again)."""
    if not MODEL_DIR.is_dir():
        pytest.fail(f"face models not found in {MODEL_DIR}: set GATEHOUSE_SHARED to the shared folder")
    made = EnrollmentEngine(FaceServerConfig(engine="insightface", model_dir=MODEL_DIR))
    made.model()
    return made


@pytest.fixture
def face_client(make_mobile_app: Callable[..., Flask], engine: EnrollmentEngine) -> FlaskClient:
    """The mobile API configured with a [face] section, its engine swapped for the module's loaded one."""
    app = make_mobile_app(face={"engine": "insightface", "model_dir": str(MODEL_DIR)})
    state = app.extensions["gatehouse_mobile"]
    assert state.face.config == engine.config  # the config file's section builds exactly this engine
    app.extensions["gatehouse_mobile"] = replace(state, face=engine)
    return app.test_client()


def photo(name: str = "Al_Pacino", number: int = 1) -> bytes:
    return (FACES / name / f"{number}.jpg").read_bytes()


def upload(client: FlaskClient, home: Household, data: bytes, filename: str = "selfie.jpg") -> Any:
    # Encoded in memory: the test client would spool a large body to an unclosed temporary file.
    boundary, body = encode_multipart({"photo": FileStorage(io.BytesIO(data), filename)})
    return client.post(PHOTO, data=body, content_type=f"multipart/form-data; boundary={boundary}", headers=home.headers)


def enrolling_resident(
    client: FlaskClient,
    engine: EnrollmentEngine,
    make_site: Callable[..., Site],
    make_household: Callable[..., Household],
    *,
    allowed: bool = True,
    consented: bool = True,
) -> Household:
    site = face_site(make_site, engine.model().model_id)
    site.app_face_enrollment = allowed
    db.session.commit()
    home = adult(make_household, site)
    if consented:
        assert client.post(CONSENT, json=consent_body(site), headers=home.headers).status_code == 201
    return home


def test_an_accepted_selfie_stores_a_sealed_template_and_nothing_comes_back_but_ids(
    face_client: FlaskClient,
    engine: EnrollmentEngine,
    make_site: Callable[..., Site],
    make_household: Callable[..., Household],
) -> None:
    home = enrolling_resident(face_client, engine, make_site, make_household)
    data = photo()

    response = upload(face_client, home, data)

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    [template] = templates_of(home.person)
    assert body["template_id"] == template.id and body["model_id"] == template.model_id == engine.model().model_id
    quality = body["quality"]
    assert set(quality) == {"face_px", "score", "sharpness", "contrast", "yaw_deg", "pitch_deg", "roll_deg"}
    assert quality["face_px"] >= 64 and quality["sharpness"] >= 25
    assert data[:64] not in template.sealed_vector
    # Neither the photo nor the template (raw, base64 or hex) is in any answer.
    status = face_client.get(FACE, headers=home.headers)
    assert status.get_json()["state"] == "enrolled"
    assert status.get_json()["templates"] == [
        {
            "id": template.id,
            "model_id": template.model_id,
            "created_at": status.get_json()["templates"][0]["created_at"],
        }
    ]
    sealed = template.sealed_vector
    for answer in (response, status):
        raw = answer.get_data()
        assert images_in(raw) == []
        for form in (sealed[8:40], base64.b64encode(sealed)[8:40], sealed.hex()[8:72].encode()):
            assert form not in raw


@pytest.mark.parametrize("kind", ["garbage", "no_face"])
def test_a_refused_selfie_says_what_to_change_and_stores_nothing(
    face_client: FlaskClient,
    engine: EnrollmentEngine,
    make_site: Callable[..., Site],
    make_household: Callable[..., Household],
    kind: str,
) -> None:
    home = enrolling_resident(face_client, engine, make_site, make_household)
    if kind == "garbage":
        data, code = GARBAGE, "photo_unreadable"
    else:
        buffer = io.BytesIO()
        PilImage.new("RGB", (640, 480), (120, 130, 140)).save(buffer, "PNG")
        data, code = buffer.getvalue(), "photo_no_face"

    response = upload(face_client, home, data, "x.png")

    body = refused(response, 422, code)
    assert "photo" in body["message"].lower() or "face" in body["message"].lower()
    assert images_in(response.get_data()) == []
    assert templates_of(home.person) == []


def test_a_site_without_app_enrollment_refuses_before_looking_at_the_photo(
    face_client: FlaskClient,
    engine: EnrollmentEngine,
    make_site: Callable[..., Site],
    make_household: Callable[..., Household],
) -> None:
    home = enrolling_resident(face_client, engine, make_site, make_household, allowed=False)
    # Garbage would answer 422 photo_unreadable had it been decoded.
    body = refused(upload(face_client, home, GARBAGE), 403, "app_enrollment_off")
    assert "management office" in body["message"]
    refused(upload(face_client, home, photo()), 403, "app_enrollment_off")
    assert templates_of(home.person) == []


def test_a_selfie_without_consent_is_refused_before_looking_at_it(
    face_client: FlaskClient,
    engine: EnrollmentEngine,
    make_site: Callable[..., Site],
    make_household: Callable[..., Household],
) -> None:
    home = enrolling_resident(face_client, engine, make_site, make_household, consented=False)
    refused(upload(face_client, home, GARBAGE), 409, "no_consent")
    refused(upload(face_client, home, photo()), 409, "no_consent")
    assert templates_of(home.person) == []
    # Nor after withdrawing.
    assert face_client.post(CONSENT, json=consent_body(home.site), headers=home.headers).status_code == 201
    assert face_client.delete(CONSENT, headers=home.headers).status_code == 200
    refused(upload(face_client, home, photo()), 409, "no_consent")
    assert templates_of(home.person) == []


def test_an_oversized_selfie_is_refused_unread(
    face_client: FlaskClient,
    engine: EnrollmentEngine,
    make_site: Callable[..., Site],
    make_household: Callable[..., Household],
) -> None:
    home = enrolling_resident(face_client, engine, make_site, make_household)
    too_big = engine.photo_limits.max_bytes + 1
    refused(upload(face_client, home, b"\xff" * too_big), 413, "too_large")
    refused(
        face_client.post(PHOTO, data={}, content_type="multipart/form-data", headers=home.headers),
        400,
        "invalid_request",
    )
    assert templates_of(home.person) == []


def test_without_a_face_engine_the_app_cannot_enroll_but_consent_works(
    mobile: FlaskClient, make_site: Callable[..., Site], make_household: Callable[..., Household]
) -> None:
    site = face_site(make_site)
    site.app_face_enrollment = True
    db.session.commit()
    home = adult(make_household, site)
    assert mobile.post(CONSENT, json=consent_body(site), headers=home.headers).status_code == 201
    assert "management office" in refused(upload(mobile, home, photo()), 503, "face_unavailable")["message"]
    assert templates_of(home.person) == []
    assert db.session.scalar(select(func.count()).select_from(FaceTemplate)) == 0
