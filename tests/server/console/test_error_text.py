"""Service refusals reach the console user in their language: every code has a sentence, and pages use them."""

from __future__ import annotations

import re
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from gatehouse_core.credential_hash import CredentialKind
from gatehouse_core.face.quality import QualityReason
from server.console.error_text import INTERNAL_CODES, MESSAGES, describe
from server.extensions import db
from server.models import Credential, Person, Site
from server.services.errors import Conflict, DomainError
from tests.conftest import csrf_token, login
from tests.support import REPO

ROOT = REPO
_RAISED_CODE = re.compile(r"""\bcode=["']([a-z0-9_]+)["']""")
_CJK = re.compile(r"[\u4e00-\u9fff]")
CARD = "04A2B3C4D5E6F7"


def _raised_codes() -> set[str]:
    """Every literal code="..." in the services, plus the codes they build (photo_<reason>, bad_<credential>)."""
    found: set[str] = set()
    for path in (ROOT / "server/services").rglob("*.py"):
        found.update(_RAISED_CODE.findall(path.read_text(encoding="utf-8")))
    found.update(f"photo_{reason.value}" for reason in QualityReason)
    found.update(f"bad_{kind.value}" for kind in (CredentialKind.CARD, CredentialKind.ID_DOCUMENT))
    return found


def test_the_scan_finds_the_services_codes() -> None:
    # Guards the regex: if it stopped matching, the next test would pass on an empty set.
    assert {"credential_taken", "no_consent", "pia_missing", "bad_window", "photo_blurry"} <= _raised_codes()


def test_every_service_code_has_a_sentence_or_is_internal() -> None:
    missing = sorted(code for code in _raised_codes() if code not in MESSAGES and code not in INTERNAL_CODES)
    assert missing == [], f"add these codes to server/console/error_text.py MESSAGES (or INTERNAL_CODES): {missing}"
    assert not INTERNAL_CODES & MESSAGES.keys()


def test_every_sentence_is_translated_to_chinese(app: Flask) -> None:
    with app.test_request_context(headers={"Accept-Language": "zh-CN"}):
        untranslated = [code for code in MESSAGES if not _CJK.search(describe(DomainError("service words", code=code)))]
    assert untranslated == [], "run scripts/i18n.sh update, translate, then compile"


def test_english_keeps_the_services_own_words(app: Flask) -> None:
    # The service's message names the values involved; the generic sentence is for other languages.
    refusal = Conflict("This card is already registered to someone at this site; revoke it there first.")
    refusal.code = "credential_taken"
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert describe(refusal) == refusal.message


def test_an_unknown_code_falls_back_to_the_services_words(app: Flask) -> None:
    with app.test_request_context(headers={"Accept-Language": "zh-CN"}):
        assert describe(DomainError("Something specific.", code="not_a_known_code")) == "Something specific."


def _chinese_manager(client: FlaskClient, make_user: Callable) -> None:
    make_user("manager1")
    login(client, "manager1")
    page = client.get("/")
    client.post("/language", data={"language": "zh_CN", "csrf_token": csrf_token(page.text)})


def test_a_duplicate_card_is_refused_in_chinese_on_the_person_page(
    client: FlaskClient,
    make_user: Callable,
    make_site: Callable[..., Site],
    make_person: Callable[..., Person],
) -> None:
    site = make_site("maple")
    first, second = make_person(site, "Wang Fang"), make_person(site, "Zhang Min")
    _chinese_manager(client, make_user)
    for person in (first, second):
        url = f"/people/{person.id}"
        response = client.post(f"{url}/cards", data={"uid": CARD, "csrf_token": csrf_token(client.get(url).text)})
    assert response.status_code == 409
    assert 'id="uid-error" role="alert"' in response.text
    assert "此门禁卡或身份证件已登记给本小区的其他人员" in response.text
    assert "already registered" not in response.text
    db.session.expire_all()
    holders = db.session.scalars(select(Credential.person_id)).all()
    assert holders == [first.id]


def test_the_app_wide_refusal_flash_is_in_chinese(app: Flask, client: FlaskClient, make_user: Callable) -> None:
    def refuse() -> str:
        raise Conflict("This person has already moved out.", code="already_moved_out")

    # Routes must be added before the first request; the handler is the one every console page shares.
    app.add_url_rule("/_test/refuse", "test_refuse", refuse, methods=["GET"])
    _chinese_manager(client, make_user)
    response = client.get("/_test/refuse", headers={"Referer": "http://localhost/"})
    assert response.status_code == 302
    page = client.get("/").text
    assert "此人已经迁出。" in page and "already moved out" not in page
