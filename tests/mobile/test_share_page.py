"""The visitor's share page: the QR of the pass, its doors and times in the site's zone, and nothing personal."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import segno
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import URLSafeSerializer

from server.extensions import db
from server.models import VisitorPass
from server.services.accounts.app_accounts import resident_actor
from server.services.visitors import passes
from server.services.visitors.passes import IssuedPass
from tests.mobile.conftest import Household

CSP = "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'"
BORDER = 4


def issue(household: Household, mobile_app: Flask, start: datetime, hours: int = 3, uses: int = 2) -> IssuedPass:
    """A pass for Zhang Min through both doors, issued through the service like the API does."""
    issued = passes.issue_pass(
        db.session,
        resident_actor(household.person),
        mobile_app.extensions["gatehouse_mobile"].keys,
        household.person,
        "Zhang Min",
        start,
        start + timedelta(hours=hours),
        household.doors,
        uses,
    )
    db.session.commit()
    return issued


def page_path(mobile_app: Flask, pass_id: int) -> str:
    serializer: URLSafeSerializer = mobile_app.extensions["gatehouse_mobile"].share
    return "/v/" + serializer.dumps(pass_id)


def visible_text(html: str) -> str:
    """The page without the QR drawing and markup: what a reader sees."""
    return re.sub(r"<[^>]+>", " ", re.sub(r"<svg.*?</svg>", "", html, flags=re.S))


def dark_modules(svg: str) -> set[tuple[int, int]]:
    """Read the dark modules back from segno's path (runs of 'h' strokes along each module row's centre line)."""
    match = re.search(r'<path class="qrline" stroke="#000" d="([^"]+)"', svg)
    assert match, svg[:200]
    x = y = 0.0
    dark: set[tuple[int, int]] = set()
    for op, args in re.findall(r"([Mmh])([-0-9. ]+)", match.group(1)):
        numbers = [float(n) for n in args.split()]
        if op == "M":
            x, y = numbers
        elif op == "m":
            x, y = x + numbers[0], y + numbers[1]
        else:
            for column in range(int(x), int(x + numbers[0])):
                dark.add((int(y - 0.5) - BORDER, column - BORDER))
            x += numbers[0]
    return dark


def encoded_modules(token: str) -> set[tuple[int, int]]:
    matrix = segno.make(token, error="m").matrix
    return {(r, c) for r, row in enumerate(matrix) for c, value in enumerate(row) if value}


@pytest.fixture
def home(make_household: Callable[..., Household]) -> Household:
    return make_household(name="Li Wei", phone="+86 139 1234 5678")


def test_the_page_shows_the_qr_doors_and_times_in_the_site_zone(
    mobile: FlaskClient, mobile_app: Flask, home: Household
) -> None:
    start = datetime(2031, 3, 9, 6, 30, tzinfo=UTC)  # 14:30 in Shanghai
    issued = issue(home, mobile_app, start, hours=3, uses=2)

    response = mobile.get(page_path(mobile_app, issued.visitor_pass.id))
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    svgs = re.findall(r"<svg.*?</svg>", html, flags=re.S)
    assert len(svgs) == 1
    # The drawing is exactly the QR of the pass's signed token.
    assert dark_modules(svgs[0]) == encoded_modules(issued.token)
    assert "QR code for the visitor pass" in html

    text = visible_text(html)
    assert "North gate" in text and "Garden door" in text
    assert "2031-03-09 14:30" in text and "2031-03-09 17:30" in text and "Asia/Shanghai" in text
    assert "Door" in text and "门" in text and "Test site" in text
    assert re.search(r"Entries left\s+剩余次数\s+2\b", text)
    assert issued.token not in text  # scanned, not read


def test_the_page_names_no_one_and_shows_no_code(mobile: FlaskClient, mobile_app: Flask, home: Household) -> None:
    issued = issue(home, mobile_app, datetime.now(UTC) - timedelta(minutes=5))
    html = mobile.get(page_path(mobile_app, issued.visitor_pass.id)).get_data(as_text=True)
    person = home.person
    for personal in ("Zhang Min", person.full_name, person.unit, person.phone, person.pseudonym, issued.code):
        assert personal
        assert personal not in html


def test_the_page_is_locked_down_and_accessible(mobile: FlaskClient, mobile_app: Flask, home: Household) -> None:
    issued = issue(home, mobile_app, datetime.now(UTC) + timedelta(hours=1))
    response = mobile.get(page_path(mobile_app, issued.visitor_pass.id))
    assert response.headers["Content-Security-Policy"] == CSP
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Robots-Tag"] == "noindex"
    html = response.get_data(as_text=True)
    assert re.search(r'<html lang="en">', html)
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert 'lang="zh-Hans"' in html
    assert 'role="img" aria-label="QR code for the visitor pass"' in html
    assert "<title>QR code for the visitor pass</title>" in html
    # Nothing the CSP would block: no inline style or script, no outside resources.
    assert not re.search(r"<script|<style|\sstyle=|\son[a-z]+=|https?://", html)
    stylesheets = re.findall(r'<link rel="stylesheet" href="([^"]+)">', html)
    assert stylesheets == ["/v/static/share.css"]
    with mobile.get(stylesheets[0]) as css:
        assert css.status_code == 200 and css.mimetype == "text/css"
        assert b".qr svg" in css.get_data()


def test_the_page_needs_no_sign_in_and_ignores_a_token(mobile: FlaskClient, mobile_app: Flask, home: Household) -> None:
    issued = issue(home, mobile_app, datetime.now(UTC))
    path = page_path(mobile_app, issued.visitor_pass.id)
    assert mobile.get(path, headers={"Authorization": "Bearer nonsense"}).status_code == 200


def test_a_revoked_pass_is_no_longer_valid(mobile: FlaskClient, mobile_app: Flask, home: Household) -> None:
    issued = issue(home, mobile_app, datetime.now(UTC))
    passes.revoke_pass(db.session, resident_actor(home.person), issued.visitor_pass)
    db.session.commit()
    response = mobile.get(page_path(mobile_app, issued.visitor_pass.id))
    assert response.status_code == 410
    html = response.get_data(as_text=True)
    assert "no longer valid" in html and "已失效" in html
    assert "<svg" not in html and "North gate" not in html
    assert response.headers["Content-Security-Policy"] == CSP


def test_a_used_up_pass_is_no_longer_valid(mobile: FlaskClient, mobile_app: Flask, home: Household) -> None:
    issued = issue(home, mobile_app, datetime.now(UTC), uses=1)
    passes.count_uses(db.session, [issued.visitor_pass.id])
    db.session.commit()
    response = mobile.get(page_path(mobile_app, issued.visitor_pass.id))
    assert response.status_code == 410
    assert "<svg" not in response.get_data(as_text=True)


@pytest.mark.parametrize("marked", [False, True], ids=["past-its-end", "marked-expired"])
def test_an_expired_pass_is_no_longer_valid(
    mobile: FlaskClient, mobile_app: Flask, home: Household, marked: bool
) -> None:
    issued = issue(home, mobile_app, datetime.now(UTC))
    row = issued.visitor_pass
    row.valid_from, row.valid_until = datetime.now(UTC) - timedelta(hours=5), datetime.now(UTC) - timedelta(hours=1)
    db.session.commit()
    if marked:
        assert passes.expire_passes(db.session, site_id=home.site.id) == 1
        db.session.commit()
    response = mobile.get(page_path(mobile_app, row.id))
    assert response.status_code == 410
    assert "<svg" not in response.get_data(as_text=True)


def test_bad_links_find_nothing(mobile: FlaskClient, mobile_app: Flask, home: Household) -> None:
    issued = issue(home, mobile_app, datetime.now(UTC))
    good = page_path(mobile_app, issued.visitor_pass.id)
    assert mobile.get(good).status_code == 200
    forged = URLSafeSerializer(b"not the server's secret", salt="gatehouse visitor pass share link v1")
    payload, _, signature = good.rpartition(".")
    other_payload = page_path(mobile_app, issued.visitor_pass.id + 1).rpartition(".")[0]
    tampered = [
        payload + "." + ("A" if signature[0] != "A" else "B") + signature[1:],  # signature changed
        other_payload + "." + signature,  # another id under this pass's signature
        "/v/" + forged.dumps(issued.visitor_pass.id),  # signed with another key
        "/v/" + forged.dumps("1"),
        "/v/nonsense",
        page_path(mobile_app, issued.visitor_pass.id + 1000),  # genuine link to no pass
    ]
    for path in tampered:
        response = mobile.get(path)
        assert response.status_code == 404, path
        assert response.mimetype == "text/html"
        html = response.get_data(as_text=True)
        assert "Pass not found" in html and "<svg" not in html and "Test site" not in html
        assert response.headers["Content-Security-Policy"] == CSP


def test_a_link_whose_pass_was_deleted_finds_nothing(mobile: FlaskClient, mobile_app: Flask, home: Household) -> None:
    issued = issue(home, mobile_app, datetime.now(UTC))
    path = page_path(mobile_app, issued.visitor_pass.id)
    db.session.delete(db.session.get(VisitorPass, issued.visitor_pass.id))
    db.session.commit()
    assert mobile.get(path).status_code == 404
