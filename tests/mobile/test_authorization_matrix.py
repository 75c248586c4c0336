"""Who may call what: every secured operation refuses bad tokens, and no resident reaches another's objects.

The operations come from the served OpenAPI document (built once at collection time), so a route added later is
in the matrix without anyone remembering to add it.
"""

from __future__ import annotations

import functools
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from gatehouse_core.configfile import parse_config
from gatehouse_core.keyring import ServerKeys, init_keys, load_keys
from gatehouse_core.wire.messages import Decision, EntryMethod
from mobile_api.app import OPENAPI_PATH
from mobile_api.app import create_app as create_mobile_app
from mobile_api.config import MobileApiConfig
from server.extensions import db
from server.models import AccessEvent, AppSession, PassStatus, Person, ResidentAccount, VisitorPass, utcnow
from server.services.accounts import app_sessions
from server.services.people import credentials, people
from server.services.privacy import erasure
from server.services.visitors import passes
from tests.conftest import TEST_ACTOR
from tests.mobile.conftest import Household
from tests.mobile.test_openapi import error_shape, fill, operations
from tests.server.services.test_subject_access import populate

API = "/api/v1"


@functools.cache
def served_operations() -> tuple[tuple[str, str, bool], ...]:
    """(method, path, secured) of every operation in the document of a freshly built app."""
    with tempfile.TemporaryDirectory() as tmp:
        key_dir = Path(tmp) / "keys"
        init_keys(key_dir)
        config = parse_config(
            MobileApiConfig, {"database_url": f"sqlite:///{Path(tmp) / 'unused.db'}", "key_dir": str(key_dir)}
        )
        app = create_mobile_app(config, keys=load_keys(key_dir))
        document = app.test_client().get(OPENAPI_PATH).get_json()
        with app.app_context():
            db.engine.dispose()
    return tuple((op.method, op.path, op.secured) for op in operations(document))


SECURED = [(method, path) for method, path, secured in served_operations() if secured]
WITH_ID = [(method, path) for method, path in SECURED if "{" in path]
LISTS = [(method, path) for method, path in SECURED if method == "GET" and "{" not in path]
# What identifies Zhang Min's records (populate in tests.server.services.test_subject_access): name, visitor,
# unit, phone, birthday.
ZHANG_WORDS = ["Zhang Min", "zhangmin", "Zhang's tablet", "Wang Fang", "3-201", "+86 138 0000 0000", "1980-05-17"]
# What the id in each path names: the path segment before the id, mapped to a field of Holdings.
OWNED_BY_SEGMENT = {
    "passes": "pass_ids",
    "devices": "device_ids",
    "credentials": "credential_ids",
    "events": "event_ids",
    "erasure-receipts": "receipt_ids",
}


def owned_field(path: str) -> str:
    """The Holdings field whose ids `path` takes (its segment before the first parameter) or lists."""
    segment = path.split("/{", 1)[0].rsplit("/", 1)[1]
    return OWNED_BY_SEGMENT.get(segment, "")


@dataclass
class Holdings:
    """A signed-in resident and the ids of everything they own, plus text that identifies them."""

    person_id: int
    account: ResidentAccount
    headers: dict[str, str]
    pass_ids: list[int]
    device_ids: list[int]
    credential_ids: list[int]
    event_ids: list[int]
    receipt_ids: list[int]
    words: list[str] = field(default_factory=list)


def _event(person: Person, door_id: int, pass_id: int | None = None, method: EntryMethod = EntryMethod.CARD) -> int:
    event = AccessEvent(
        event_uid=str(uuid.uuid4()),
        site_id=person.site_id,
        door_id=door_id,
        person_pseudonym=None if pass_id else person.pseudonym,
        pass_id=pass_id,
        method=method,
        decision=Decision.GRANT,
        reason="granted",
        occurred_at=utcnow() - timedelta(minutes=5),
    )
    db.session.add(event)
    db.session.flush()
    return event.id


def resident_with_records(
    keys: ServerKeys,
    make_account: Callable[..., ResidentAccount],
    bearer: Callable[[ResidentAccount], dict[str, str]],
) -> Holdings:
    """Zhang Min of tests.server.services.test_subject_access, with everything it makes, signed in on two devices."""
    subject = populate(keys)
    person = db.session.get(Person, subject.person_id)
    assert person is not None
    account = make_account(person, username="zhangmin")
    headers = bearer(account)
    key = app_sessions.access_key(keys.session_secret)
    policy = app_sessions.TokenPolicy()
    tablet = app_sessions.start_session(db.session, key, account, policy, device="Zhang's tablet", how="test")
    _event(person, subject.door_id, subject.pass_id, EntryMethod.VISITOR_CODE)
    db.session.commit()
    sessions = db.session.scalars(select(AppSession.id).where(AppSession.account_id == account.id)).all()
    events = db.session.scalars(select(AccessEvent.id).where(AccessEvent.person_pseudonym == person.pseudonym)).all()
    receipts = [r.id for r in erasure.receipts_of_person(db.session, person.id)]
    assert receipts and events and len(sessions) == 2 and tablet.session.id in sessions
    return Holdings(
        person_id=person.id,
        account=account,
        headers=headers,
        pass_ids=[subject.pass_id],
        device_ids=list(sessions),
        credential_ids=list(subject.credential_ids),
        event_ids=list(events),
        receipt_ids=receipts,
        words=[*ZHANG_WORDS, person.pseudonym],
    )


def neighbour_of(a: Holdings, keys: ServerKeys, make_household: Callable[..., Household]) -> Holdings:
    """Wang Lei, on A's site, with a card, a pass and an entry of his own."""
    site = db.session.get(Person, a.person_id).site  # type: ignore[union-attr]
    home = make_household(site, name="Wang Lei")
    person = home.person
    card = credentials.add_card(db.session, TEST_ACTOR, keys, person, "04112233445566")
    now = utcnow()
    later = now + timedelta(hours=1), now + timedelta(hours=3)
    issued = passes.issue_pass(db.session, TEST_ACTOR, keys, person, "Chen Jie", *later, home.doors, 1)
    event = _event(person, home.doors[0].id)
    db.session.commit()
    session_id = db.session.scalar(select(AppSession.id).where(AppSession.account_id == home.account.id))
    assert session_id is not None
    return Holdings(
        person_id=person.id,
        account=home.account,
        headers=home.headers,
        pass_ids=[issued.visitor_pass.id],
        device_ids=[session_id],
        credential_ids=[card.id],
        event_ids=[event],
        receipt_ids=[],
        words=["Wang Lei", "Chen Jie"],
    )


def refused(response: Any, *codes: str) -> None:
    """A 401 in the error shape, with a WWW-Authenticate challenge."""
    body = error_shape(response, response.get_json().get("error"), 401)
    assert set(body) == {"error", "message"} and body["error"] in codes, body
    assert response.headers.get("WWW-Authenticate", "").startswith("Bearer"), dict(response.headers)


# ---- tokens ------------------------------------------------------------------------------------------------------


def test_the_matrix_covers_every_operation_of_the_served_document(mobile: FlaskClient) -> None:
    document = mobile.get(OPENAPI_PATH).get_json()
    assert [(op.method, op.path) for op in operations(document) if op.secured] == SECURED
    assert len(SECURED) >= 15 and WITH_ID and LISTS
    unmapped = [f"{m} {p}" for m, p in WITH_ID if not owned_field(p)]
    assert unmapped == [], "say in OWNED_BY_SEGMENT whose ids these paths take"


@pytest.mark.parametrize(("method", "path"), SECURED, ids=[f"{m} {p}" for m, p in SECURED])
def test_every_secured_operation_refuses_bad_tokens(
    method: str,
    path: str,
    mobile: FlaskClient,
    keys: ServerKeys,
    make_household: Callable[..., Household],
    bearer: Callable[[ResidentAccount], dict[str, str]],
) -> None:
    home = make_household()
    url = fill(path)

    def call(headers: dict[str, str] | None = None) -> Any:
        return mobile.open(url, method=method, headers=headers or {})

    refused(call(), "token_missing")
    refused(call({"Authorization": "Basic " + home.headers["Authorization"].split()[1]}), "token_missing")
    refused(call({"Authorization": "Bearer not-a-token"}), "token_invalid")

    key = app_sessions.access_key(keys.session_secret)
    late = app_sessions.TokenPolicy(access_ttl=timedelta(minutes=-1))
    expired = app_sessions.start_session(db.session, key, home.account, late, how="test").access_token
    db.session.commit()
    refused(call({"Authorization": f"Bearer {expired}"}), "token_expired")

    genuine = home.headers["Authorization"].split()[1]
    claims = jwt.decode(genuine, options={"verify_signature": False})
    forged = jwt.encode(claims, b"another key of the right length!", algorithm="HS256")
    refused(call({"Authorization": f"Bearer {forged}"}), "token_invalid")
    unsigned = jwt.encode(claims, None, algorithm="none")
    refused(call({"Authorization": f"Bearer {unsigned}"}), "token_invalid")

    signed_out = bearer(home.account)
    assert mobile.post(f"{API}/auth/logout", headers=signed_out).status_code == 204
    refused(call(signed_out), "session_revoked")

    # The household's own token still passes the gate (whatever the operation then answers) until they move out.
    assert call(home.headers).status_code != 401
    people.move_out(db.session, TEST_ACTOR, home.person)
    db.session.commit()
    refused(call(home.headers), "account_disabled", "session_revoked")


# ---- objects of another resident ---------------------------------------------------------------------------------


@pytest.fixture
def a(keys: ServerKeys, make_account: Any, bearer: Any) -> Holdings:
    return resident_with_records(keys, make_account, bearer)


@pytest.fixture
def b(a: Holdings, keys: ServerKeys, make_household: Callable[..., Household]) -> Holdings:
    return neighbour_of(a, keys, make_household)


def _snapshot(mobile: FlaskClient, who: Holdings) -> dict[str, Any]:
    """Everything `who` can read about their own objects, through every GET that takes an id."""
    seen = {}
    for method, path in WITH_ID:
        if method != "GET":
            continue
        for object_id in getattr(who, owned_field(path)):
            response = mobile.get(fill(path, object_id), headers=who.headers)
            assert response.status_code == 200, (path, response.get_json())
            seen[fill(path, object_id)] = response.get_json()
    return seen


def test_another_residents_objects_are_not_found_and_stay_unchanged(
    mobile: FlaskClient, a: Holdings, b: Holdings
) -> None:
    before = _snapshot(mobile, a)
    assert before, "A has objects the id routes can read"
    missing = 2**31 - 1
    for method, path in WITH_ID:
        ids = getattr(a, owned_field(path))
        assert ids, f"A owns nothing that {method} {path} takes"
        nowhere = error_shape(mobile.open(fill(path, missing), method=method, headers=b.headers), "not_found", 404)
        for object_id in ids:
            response = mobile.open(fill(path, object_id), method=method, headers=b.headers)
            # Exactly what a missing id gets: nothing tells B that A's object exists.
            assert error_shape(response, "not_found", 404) == nowhere, f"{method} {path} with A's {object_id}"

    db.session.expire_all()
    for pass_id in a.pass_ids:
        visitor_pass = db.session.get(VisitorPass, pass_id)
        assert visitor_pass is not None and visitor_pass.status is PassStatus.ACTIVE
    live = {s.id for s in app_sessions.live_sessions(db.session, a.account)}
    assert live == set(a.device_ids)
    assert _snapshot(mobile, a) == before
    assert mobile.get(f"{API}/me", headers=a.headers).status_code == 200

    # B's own objects are reachable with the same calls, so the 404s above are about ownership.
    for method, path in WITH_ID:
        if method == "GET":
            for object_id in getattr(b, owned_field(path)):
                assert mobile.get(fill(path, object_id), headers=b.headers).status_code == 200


def test_lists_hold_only_the_callers_own_objects(mobile: FlaskClient, a: Holdings, b: Holdings) -> None:
    # One test for every list (not one per list): A's records take seconds to build.
    for _, path in LISTS:
        mine = mobile.get(path, headers=b.headers)
        assert mine.status_code == 200, (path, mine.get_json())
        text = mine.get_data(as_text=True)
        leaked = [word for word in a.words if word in text]
        assert leaked == [], f"B's {path} shows A's {leaked}"
        owned = owned_field(path)
        if owned and "items" in mine.get_json():
            ids = {item["id"] for item in mine.get_json()["items"]}
            assert not ids & set(getattr(a, owned)), f"B's {path} lists A's ids"
            # Not vacuous: B's list holds B's own, and A's the ids checked above.
            assert set(getattr(b, owned)) <= ids, path
            theirs = {item["id"] for item in mobile.get(path, headers=a.headers).get_json()["items"]}
            assert set(getattr(a, owned)) <= theirs, path
    export = mobile.get(f"{API}/me/export", headers=b.headers).get_data(as_text=True)
    assert "Wang Lei" in export and "Chen Jie" in export
