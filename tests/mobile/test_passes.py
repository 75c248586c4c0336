"""The mobile API's visitor passes: create, list, show, revoke and entries, each resident seeing only their own."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from gatehouse_core.credential_hash import hash_pass_code, site_hashing_key
from gatehouse_core.keyring import ServerKeys
from gatehouse_core.pass_token import verify_pass
from server.extensions import db
from server.models import AccessEvent, Decision, Door, EntryMethod, PassStatus, Site, VisitorPass
from server.services.visitors import passes
from tests.mobile.conftest import Household

SHANGHAI = timezone(timedelta(hours=8))
PASS_OUT_KEYS = {
    "id",
    "visitor_name",
    "valid_from",
    "valid_until",
    "doors",
    "uses_allowed",
    "uses_count",
    "status",
    "qr_token",
    "share_url",
}


def pass_body(household: Household, **changes: Any) -> dict[str, Any]:
    """A valid request: tomorrow afternoon at the first door, as a phone in Shanghai would send it."""
    start = (datetime.now(UTC) + timedelta(days=1)).astimezone(SHANGHAI).replace(microsecond=0)
    body: dict[str, Any] = {
        "visitor_name": "Zhang Min",
        "valid_from": start.isoformat(),
        "valid_until": (start + timedelta(hours=4)).isoformat(),
        "door_ids": [household.doors[0].id],
        "uses": 1,
    }
    body.update(changes)
    return body


def create(client: FlaskClient, household: Household, **changes: Any) -> dict[str, Any]:
    response = client.post("/api/v1/passes", json=pass_body(household, **changes), headers=household.headers)
    assert response.status_code == 201, response.get_json()
    data: dict[str, Any] = response.get_json()
    return data


def count_passes() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(VisitorPass)) or 0


def stored(pass_id: int) -> VisitorPass:
    db.session.expire_all()
    visitor_pass = db.session.get(VisitorPass, pass_id)
    assert visitor_pass is not None
    return visitor_pass


def share_path(share_url: str) -> str:
    match = re.fullmatch(r"http://localhost(/v/[A-Za-z0-9._-]+)", share_url)
    assert match, share_url
    return match.group(1)


# ---- creating ----------------------------------------------------------------------------------------------------


def test_a_new_pass_carries_its_code_signed_token_and_share_link(
    mobile: FlaskClient, make_household: Callable[..., Household], keys: ServerKeys
) -> None:
    home = make_household()
    doors = [home.doors[1].id, home.doors[0].id]
    sent = pass_body(home, door_ids=doors, uses=3)
    response = mobile.post("/api/v1/passes", json=sent, headers=home.headers)
    assert response.status_code == 201, response.get_json()
    data = response.get_json()

    assert set(data) == {"pass", "code", "qr_token", "share_url"}
    assert re.fullmatch(r"[0-9]{6}", data["code"])
    out = data["pass"]
    assert set(out) == PASS_OUT_KEYS
    assert out["visitor_name"] == "Zhang Min"
    assert out["status"] == "active"
    assert (out["uses_allowed"], out["uses_count"]) == (3, 0)
    assert [d["id"] for d in out["doors"]] == sorted(doors)
    assert {d["name"] for d in out["doors"]} == {"North gate", "Garden door"}
    assert out["qr_token"] == data["qr_token"] and out["share_url"] == data["share_url"]
    assert datetime.fromisoformat(out["valid_from"]) == datetime.fromisoformat(sent["valid_from"])

    row = stored(out["id"])
    assert row.host_id == home.person.id
    # Only the hash is stored, and it is the hash of the code just shown.
    assert row.code_hash == hash_pass_code(site_hashing_key(keys.credential_secret, home.site.code), data["code"])
    claims = verify_pass(keys.public_key, home.site.code, data["qr_token"])
    assert claims.pass_id == out["id"]
    assert claims.doors == tuple(sorted(doors))
    assert claims.uses_allowed == 3

    page = mobile.get(share_path(data["share_url"]))
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<svg" in html and "North gate" in html and "Garden door" in html
    assert "Zhang Min" not in html and data["code"] not in html


def test_the_code_is_shown_only_once(mobile: FlaskClient, make_household: Callable[..., Household]) -> None:
    home = make_household()
    data = create(mobile, home)
    shown = mobile.get(f"/api/v1/passes/{data['pass']['id']}", headers=home.headers)
    listed = mobile.get("/api/v1/passes", headers=home.headers)
    for response in (shown, listed):
        assert response.status_code == 200
        text = response.get_data(as_text=True)
        assert data["code"] not in text and "code_hash" not in text and stored(data["pass"]["id"]).code_hash not in text
    assert shown.get_json()["qr_token"] == data["qr_token"]


def test_share_links_use_the_configured_public_address(
    make_mobile_app: Callable[..., Flask], make_household: Callable[..., Household]
) -> None:
    client = make_mobile_app(public_base_url="https://gate.example.com/estate/").test_client()
    home = make_household()
    data = create(client, home)
    assert re.fullmatch(r"https://gate\.example\.com/estate/v/[A-Za-z0-9._-]+", data["share_url"])


@pytest.mark.parametrize(
    "changes",
    [
        {"visitor_name": ""},
        {"visitor_name": "   "},
        {"visitor_name": "x" * 201},
        {"valid_from": "2030-05-01T10:00:00", "valid_until": "2030-05-01T12:00:00"},
        {"valid_until": "2030-05-01T12:00:00"},
        {"valid_from": "tomorrow"},
        {"uses": 0},
        {"uses": 101},
        {"door_ids": []},
        {"door_ids": list(range(1, 18))},
        {"secret": "x"},
        {"host_id": 1},
    ],
    ids=[
        "empty-name",
        "blank-name",
        "long-name",
        "naive-times",
        "naive-until",
        "not-a-time",
        "no-uses",
        "too-many-uses",
        "no-doors",
        "too-many-doors",
        "unknown-key",
        "host-key",
    ],
)
def test_invalid_requests_are_refused_and_change_nothing(
    mobile: FlaskClient, make_household: Callable[..., Household], changes: dict[str, Any]
) -> None:
    home = make_household()
    response = mobile.post("/api/v1/passes", json=pass_body(home, **changes), headers=home.headers)
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "invalid_request" and body["fields"]
    assert count_passes() == 0


def test_the_same_door_twice_is_refused(mobile: FlaskClient, make_household: Callable[..., Household]) -> None:
    home = make_household()
    door = home.doors[0].id
    response = mobile.post("/api/v1/passes", json=pass_body(home, door_ids=[door, door]), headers=home.headers)
    assert response.status_code == 400
    assert response.get_json()["fields"][0]["field"] == "door_ids"
    assert count_passes() == 0


def test_a_window_that_ends_before_it_starts_is_refused(
    mobile: FlaskClient, make_household: Callable[..., Household]
) -> None:
    home = make_household()
    body = pass_body(home)
    body["valid_from"], body["valid_until"] = body["valid_until"], body["valid_from"]
    response = mobile.post("/api/v1/passes", json=body, headers=home.headers)
    assert response.status_code == 422
    assert response.get_json()["error"] == "bad_window"
    assert count_passes() == 0


@pytest.mark.parametrize("which", ["other_site", "not_allowed", "unknown"])
def test_doors_the_resident_may_not_use_are_refused(
    mobile: FlaskClient,
    make_household: Callable[..., Household],
    make_site: Callable[..., Site],
    make_door: Callable[..., Door],
    which: str,
) -> None:
    home = make_household()
    if which == "other_site":
        door_id = make_door(make_site(), "Their gate").id
    elif which == "not_allowed":
        door_id = make_door(home.site, "Plant room").id  # no group of the resident covers it
    else:
        door_id = 2**31 - 1
    response = mobile.post(
        "/api/v1/passes", json=pass_body(home, door_ids=[home.doors[0].id, door_id]), headers=home.headers
    )
    assert response.status_code == 422
    assert response.get_json()["error"] == "foreign_door"
    assert count_passes() == 0


def test_creating_needs_a_signed_in_resident(mobile: FlaskClient, make_household: Callable[..., Household]) -> None:
    home = make_household()
    response = mobile.post("/api/v1/passes", json=pass_body(home))
    assert response.status_code == 401
    assert count_passes() == 0


def test_creating_passes_is_rate_limited_but_revoking_is_not(
    make_mobile_app: Callable[..., Flask], make_household: Callable[..., Household]
) -> None:
    client = make_mobile_app(
        rate_limits={"passes": "2/hour", "default": "10000/minute", "sign_in": "10000/minute"}
    ).test_client()
    home = make_household()
    made = [create(client, home)["pass"]["id"] for _ in range(2)]
    third = client.post("/api/v1/passes", json=pass_body(home), headers=home.headers)
    assert third.status_code == 429
    assert third.get_json()["error"] == "rate_limited"
    assert count_passes() == 2
    for pass_id in [*made, *made]:
        assert client.delete(f"/api/v1/passes/{pass_id}", headers=home.headers).status_code == 200
    assert client.get("/api/v1/passes", headers=home.headers).status_code == 200


# ---- listing, showing, revoking: each resident's own only ----------------------------------------------------------


def test_residents_list_only_their_own_passes(mobile: FlaskClient, make_household: Callable[..., Household]) -> None:
    mine = make_household(name="Li Wei")
    theirs = make_household(site=mine.site, name="Wang Fang")
    own = [create(mobile, mine, visitor_name=f"Guest {n}")["pass"]["id"] for n in range(3)]
    other = create(mobile, theirs, visitor_name="Their guest")["pass"]["id"]

    listed = mobile.get("/api/v1/passes", headers=mine.headers).get_json()
    assert [p["id"] for p in listed["items"]] == own[::-1]
    assert listed["next_before"] is None
    assert [p["id"] for p in mobile.get("/api/v1/passes", headers=theirs.headers).get_json()["items"]] == [other]

    first = mobile.get("/api/v1/passes?limit=2", headers=mine.headers).get_json()
    assert [p["id"] for p in first["items"]] == [own[2], own[1]]
    rest = mobile.get(f"/api/v1/passes?limit=2&before={first['next_before']}", headers=mine.headers).get_json()
    assert [p["id"] for p in rest["items"]] == [own[0]]
    assert rest["next_before"] is None


def test_the_list_filters_by_status(mobile: FlaskClient, make_household: Callable[..., Household]) -> None:
    home = make_household()
    kept, revoked, ended = (create(mobile, home)["pass"]["id"] for _ in range(3))
    assert mobile.delete(f"/api/v1/passes/{revoked}", headers=home.headers).status_code == 200
    row = stored(ended)
    row.valid_from, row.valid_until = datetime.now(UTC) - timedelta(hours=3), datetime.now(UTC) - timedelta(hours=1)
    db.session.commit()

    def ids(status: str) -> list[int]:
        response = mobile.get(f"/api/v1/passes?status={status}", headers=home.headers)
        assert response.status_code == 200
        return [p["id"] for p in response.get_json()["items"]]

    assert ids("active") == [kept]
    assert ids("revoked") == [revoked]
    # Not yet marked by the expiry job, but past its end: it is expired to the resident.
    assert ids("expired") == [ended]
    assert ids("used_up") == []
    assert mobile.get("/api/v1/passes?status=lost", headers=home.headers).status_code == 400


def test_a_resident_sees_and_revokes_their_own_pass(
    mobile: FlaskClient, make_household: Callable[..., Household]
) -> None:
    home = make_household()
    data = create(mobile, home)
    pass_id = data["pass"]["id"]

    shown = mobile.get(f"/api/v1/passes/{pass_id}", headers=home.headers)
    assert shown.status_code == 200
    assert shown.get_json() == data["pass"]

    revoked = mobile.delete(f"/api/v1/passes/{pass_id}", headers=home.headers)
    assert revoked.status_code == 200
    assert revoked.get_json()["status"] == "revoked"
    assert stored(pass_id).status is PassStatus.REVOKED
    # Revoking again is harmless.
    again = mobile.delete(f"/api/v1/passes/{pass_id}", headers=home.headers)
    assert again.status_code == 200 and again.get_json()["status"] == "revoked"
    assert mobile.get(share_path(data["share_url"])).status_code == 410


@pytest.mark.parametrize("method, suffix", [("get", ""), ("delete", ""), ("get", "/events")])
def test_another_residents_pass_is_not_found_and_unchanged(
    mobile: FlaskClient, make_household: Callable[..., Household], method: str, suffix: str
) -> None:
    owner = make_household(name="Wang Fang")
    stranger = make_household(site=owner.site, name="Li Wei")
    pass_id = create(mobile, owner)["pass"]["id"]

    for pid in (pass_id, pass_id + 1000):
        response = mobile.open(f"/api/v1/passes/{pid}{suffix}", method=method.upper(), headers=stranger.headers)
        assert response.status_code == 404
        assert response.get_json()["error"] == "not_found"
        assert "Wang Fang" not in response.get_data(as_text=True)
    assert stored(pass_id).status is PassStatus.ACTIVE
    assert mobile.get(f"/api/v1/passes/{pass_id}", headers=owner.headers).get_json()["status"] == "active"


# ---- a pass's entries ---------------------------------------------------------------------------------------------


def add_event(
    visitor_pass_id: int, site: Site, door: Door | None, decision: Decision, reason: str, at: datetime
) -> int:
    event = AccessEvent(
        event_uid=str(uuid.uuid4()),
        site_id=site.id,
        door_id=door.id if door else None,
        pass_id=visitor_pass_id,
        method=EntryMethod.VISITOR_QR,
        decision=decision,
        reason=reason,
        occurred_at=at,
    )
    db.session.add(event)
    db.session.commit()
    return event.id


def test_a_pass_lists_its_grants_and_refusals_newest_first(
    mobile: FlaskClient, make_household: Callable[..., Household]
) -> None:
    home = make_household()
    pass_id = create(mobile, home, uses=2)["pass"]["id"]
    other_id = create(mobile, home)["pass"]["id"]
    north, garden = home.doors
    t = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    granted = add_event(pass_id, home.site, north, Decision.GRANT, "granted", t)
    # Stored later but happened earlier (an offline terminal catching up): time decides the order.
    refused = add_event(pass_id, home.site, garden, Decision.DENY, "not_yet_valid", t - timedelta(minutes=30))
    gone = add_event(pass_id, home.site, None, Decision.DENY, "revoked", t + timedelta(minutes=5))
    add_event(other_id, home.site, north, Decision.GRANT, "granted", t)

    response = mobile.get(f"/api/v1/passes/{pass_id}/events", headers=home.headers)
    assert response.status_code == 200
    page = response.get_json()
    assert [e["id"] for e in page["items"]] == [gone, granted, refused]
    assert page["next_before"] is None
    first, second, third = page["items"]
    assert first["door"] is None and first["decision"] == "deny"
    assert second["door"] == {"id": north.id, "name": "North gate"}
    assert (second["decision"], second["reason"], second["method"]) == ("grant", "granted", "visitor_qr")
    assert third["door"] == {"id": garden.id, "name": "Garden door"} and third["reason"] == "not_yet_valid"
    assert datetime.fromisoformat(second["occurred_at"]) == t

    one = mobile.get(f"/api/v1/passes/{pass_id}/events?limit=2", headers=home.headers).get_json()
    assert [e["id"] for e in one["items"]] == [gone, granted] and one["next_before"] == granted
    two = mobile.get(f"/api/v1/passes/{pass_id}/events?limit=2&before={granted}", headers=home.headers).get_json()
    assert [e["id"] for e in two["items"]] == [refused] and two["next_before"] is None


def test_a_pass_without_entries_has_an_empty_page(
    mobile: FlaskClient, make_household: Callable[..., Household]
) -> None:
    home = make_household()
    pass_id = create(mobile, home)["pass"]["id"]
    response = mobile.get(f"/api/v1/passes/{pass_id}/events", headers=home.headers)
    assert response.status_code == 200
    assert response.get_json() == {"items": [], "next_before": None}


def test_a_used_up_pass_shows_its_uses(mobile: FlaskClient, make_household: Callable[..., Household]) -> None:
    home = make_household()
    pass_id = create(mobile, home)["pass"]["id"]
    passes.count_uses(db.session, [pass_id])
    db.session.commit()
    out = mobile.get(f"/api/v1/passes/{pass_id}", headers=home.headers).get_json()
    assert (out["status"], out["uses_count"]) == ("used_up", 1)
