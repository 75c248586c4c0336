"""The resident's profile, credentials, doors and app-code provisioning: only ever their own, never a value."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from urllib.parse import parse_qs, urlparse

from flask.testing import FlaskClient
from sqlalchemy import select

from gatehouse_core import app_code
from gatehouse_core.keyring import ServerKeys
from gatehouse_core.sealed import unseal
from server.extensions import db
from server.models import AuditEntry, Credential, CredentialStatus, Door, Person, Site
from server.services.people import credentials, people
from tests.conftest import TEST_ACTOR
from tests.mobile.conftest import Household
from tests.support.privacy import enable_face

CARD = "04A2B3C4D5E6F7"
OTHER_CARD = "04112233445566"
ID_NUMBER = "110105199001011234"
PROFILE_KEYS = {"name", "kind", "unit", "phone", "status", "username", "has_password", "site", "face"}


def _secret_forms(secret_base32: str) -> list[str]:
    """The ways a seed could leak into a JSON body: base32 as given, hex and standard base64."""
    seed = base64.b32decode(secret_base32)
    return [secret_base32, seed.hex(), base64.b64encode(seed).decode()]


# ---- GET /me -----------------------------------------------------------------------------------------------------


def test_profile_is_the_callers_own_record(mobile: FlaskClient, make_household: Callable[..., Household]) -> None:
    mine = make_household(name="Zhang Min", phone="+86 139 1111 2222")
    other = make_household(mine.site, name="Wang Fang")
    response = mobile.get("/api/v1/me", headers=mine.headers)
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == PROFILE_KEYS
    assert body["name"] == "Zhang Min" and body["kind"] == "resident" and body["status"] == "active"
    assert body["unit"] == mine.person.unit and body["phone"] == "+86 139 1111 2222"
    assert body["username"] == mine.account.username and body["has_password"] is True
    assert body["site"] == {"code": mine.site.code, "name": mine.site.name, "timezone": "Asia/Shanghai"}
    assert body["face"] == {"state": "off", "app_enrollment_allowed": False}
    # No pseudonyms, hashes or anyone else's data.
    assert mine.person.pseudonym not in response.text and other.person.pseudonym not in response.text
    assert "Wang Fang" not in response.text and "hash" not in response.text
    # The other resident sees their own record with their own token.
    assert mobile.get("/api/v1/me", headers=other.headers).get_json()["name"] == "Wang Fang"


def test_profile_face_state_follows_the_site(mobile: FlaskClient, make_household: Callable[..., Household]) -> None:
    home = make_household()
    enable_face(home.site)
    assert mobile.get("/api/v1/me", headers=home.headers).get_json()["face"] == {
        "state": "not_asked",
        "app_enrollment_allowed": False,
    }
    home.site.app_face_enrollment = True
    db.session.commit()
    face = mobile.get("/api/v1/me", headers=home.headers).get_json()["face"]
    assert face == {"state": "not_asked", "app_enrollment_allowed": True}


def test_phone_only_account_without_password(
    mobile: FlaskClient,
    make_site: Callable[..., Site],
    make_person: Callable[..., Person],
    make_account: Callable[..., object],
    bearer: Callable[..., dict[str, str]],
) -> None:
    person = make_person(make_site(), "Chen Jie", phone="+86 137 0000 0001")
    account = make_account(person, username=None, password=None)
    body = mobile.get("/api/v1/me", headers=bearer(account)).get_json()
    assert body["username"] is None and body["has_password"] is False and body["unit"] is None


def test_profile_needs_a_token(mobile: FlaskClient, make_household: Callable[..., Household]) -> None:
    make_household()
    for path in ("/api/v1/me", "/api/v1/me/credentials", "/api/v1/me/doors"):
        response = mobile.get(path)
        assert response.status_code == 401 and response.get_json()["error"] == "token_missing"
    assert mobile.post("/api/v1/me/app-code").status_code == 401
    assert db.session.scalar(select(Credential.id)) is None


# ---- GET /me/credentials ------------------------------------------------------------------------------------------


def test_credentials_are_listed_without_values_and_only_the_callers(
    mobile: FlaskClient, make_household: Callable[..., Household], keys: ServerKeys
) -> None:
    mine = make_household()
    other = make_household(mine.site, name="Wang Fang")
    card = credentials.add_card(db.session, TEST_ACTOR, keys, mine.person, CARD)
    document = credentials.add_id_document(db.session, TEST_ACTOR, keys, mine.person, ID_NUMBER)
    credentials.revoke(db.session, TEST_ACTOR, document)
    theirs = credentials.add_card(db.session, TEST_ACTOR, keys, other.person, OTHER_CARD)
    db.session.commit()

    response = mobile.get("/api/v1/me/credentials", headers=mine.headers)
    assert response.status_code == 200
    items = response.get_json()["items"]
    assert [i["id"] for i in items] == [document.id, card.id]  # newest first
    assert all(set(i) == {"id", "kind", "status", "created_at", "revoked_at"} for i in items)
    by_id = {i["id"]: i for i in items}
    assert by_id[card.id]["kind"] == "card" and by_id[card.id]["status"] == "active"
    assert by_id[card.id]["revoked_at"] is None
    assert by_id[document.id]["kind"] == "id_document" and by_id[document.id]["status"] == "revoked"
    assert by_id[document.id]["revoked_at"] is not None
    assert theirs.id not in by_id
    for value in (CARD, ID_NUMBER, card.lookup_hash, document.lookup_hash, theirs.lookup_hash):
        assert value and value.lower() not in response.text.lower()


# ---- POST /me/app-code --------------------------------------------------------------------------------------------


def test_app_code_seed_generates_codes_terminals_accept(
    mobile: FlaskClient, make_household: Callable[..., Household], keys: ServerKeys
) -> None:
    home = make_household()
    response = mobile.post("/api/v1/me/app-code", headers=home.headers)
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert (body["digits"], body["step_seconds"], body["algorithm"]) == (8, 30, "SHA256")
    seed = base64.b32decode(body["secret_base32"])

    # The seed the resident got is the one the server sealed for the terminals.
    db.session.expire_all()
    credential = db.session.get(Credential, body["credential_id"])
    assert credential is not None and credential.person_id == home.person.id
    assert credential.status is CredentialStatus.ACTIVE and credential.sealed_secret is not None
    assert unseal(keys.template_key, credential.sealed_secret, credentials.app_code_context(home.person.id)) == seed

    generator = app_code.totp(seed)
    now = time.time()
    code = app_code.code_at_step(generator, app_code.step_of(now))
    assert app_code.matching_step(generator, code, now) == app_code.step_of(now)
    # The example QR names the credential and carries a code the terminal accepts.
    assert body["qr"]["prefix"] == "GHA1" and body["qr"]["format"] == "GHA1:<credential_id>:<8-digit code>"
    qr = app_code.parse_qr(body["qr"]["example"])
    assert qr.credential == body["credential_id"]
    assert app_code.matching_step(generator, qr.code, time.time()) is not None

    uri = urlparse(body["otpauth_uri"])
    params = parse_qs(uri.query)
    assert uri.scheme == "otpauth" and uri.netloc == "totp"
    assert params["secret"] == [body["secret_base32"]] and params["algorithm"] == ["SHA256"]
    # pyotp leaves out the period when it is RFC 6238's default of 30 seconds.
    assert params["digits"] == ["8"] and params.get("period", ["30"]) == ["30"] and params["issuer"] == ["Gatehouse"]

    # Issued by the resident, as the audit log tells.
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "credential.add")).one()
    assert entry.actor_label == f"resident:{home.person.pseudonym}"
    assert entry.details == {"credential": credential.id, "kind": "app_code"}


def test_second_app_code_revokes_the_first_and_seeds_are_never_shown_again(
    mobile: FlaskClient, make_household: Callable[..., Household]
) -> None:
    home = make_household()
    first = mobile.post("/api/v1/me/app-code", headers=home.headers).get_json()
    second = mobile.post("/api/v1/me/app-code", headers=home.headers).get_json()
    assert first["credential_id"] != second["credential_id"]
    assert first["secret_base32"] != second["secret_base32"]

    items = mobile.get("/api/v1/me/credentials", headers=home.headers).get_json()["items"]
    by_id = {i["id"]: i for i in items}
    assert by_id[first["credential_id"]]["status"] == "revoked"
    assert by_id[first["credential_id"]]["revoked_at"] is not None
    assert by_id[second["credential_id"]]["status"] == "active"
    assert [i["kind"] for i in items] == ["app_code", "app_code"]

    seeds = _secret_forms(first["secret_base32"]) + _secret_forms(second["secret_base32"])
    for path in ("/api/v1/me", "/api/v1/me/credentials", "/api/v1/me/doors", "/api/v1/me/export"):
        response = mobile.get(path, headers=home.headers)
        assert response.status_code == 200, path
        assert not any(s in response.text for s in seeds), path


def test_app_code_is_refused_once_the_resident_has_moved_out(
    mobile: FlaskClient, make_household: Callable[..., Household]
) -> None:
    home = make_household()
    people.move_out(db.session, TEST_ACTOR, home.person)
    db.session.commit()
    response = mobile.post("/api/v1/me/app-code", headers=home.headers)
    assert response.status_code == 401 and response.get_json()["error"] == "account_disabled"
    assert db.session.scalar(select(Credential.id)) is None


# ---- GET /me/doors ------------------------------------------------------------------------------------------------


def test_doors_are_those_the_resident_may_use_with_their_methods(
    mobile: FlaskClient,
    make_site: Callable[..., Site],
    make_door: Callable[..., Door],
    make_household: Callable[..., Household],
) -> None:
    site = make_site()
    lobby = make_door(site, "Lobby", face=True)
    shed = make_door(site, "Bike shed", id_document=False)
    home = make_household(site)
    make_door(site, "Plant room")  # not in the resident's group
    elsewhere = make_household()  # another site's doors

    response = mobile.get("/api/v1/me/doors", headers=home.headers)
    assert response.status_code == 200
    assert response.get_json()["items"] == [
        {"id": shed.id, "name": "Bike shed", "methods": ["card", "app_code"]},
        {"id": lobby.id, "name": "Lobby", "methods": ["card", "id_document", "app_code"]},
    ]
    # Face is offered at a face door only while the site has face entry on.
    enable_face(site)
    items = mobile.get("/api/v1/me/doors", headers=home.headers).get_json()["items"]
    assert items[1]["methods"] == ["card", "id_document", "app_code", "face"]

    theirs = mobile.get("/api/v1/me/doors", headers=elsewhere.headers).get_json()["items"]
    assert sorted(d["id"] for d in theirs) == sorted(d.id for d in elsewhere.doors)
    assert {d["name"] for d in theirs} == {"Garden door", "North gate"}
