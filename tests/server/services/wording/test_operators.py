"""Service refusals in staff's language: every code the services raise has a sentence, translated to Chinese."""

from __future__ import annotations

import re

from flask import Flask

from gatehouse_core.credential_hash import CredentialKind
from gatehouse_core.face.quality import QualityReason
from server.services.errors import Conflict, DomainError
from server.services.wording.operators import INTERNAL_CODES, MESSAGES, describe
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
    assert missing == [], (
        f"add these codes to server/services/wording/operators.py MESSAGES (or INTERNAL_CODES): {missing}"
    )
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
