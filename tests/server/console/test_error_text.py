"""Service refusals reach the console user in their language: pages show the sentences of the wording table."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from server.extensions import db
from server.models import Credential, Person, Site
from server.services.errors import Conflict
from tests.conftest import csrf_token, login

CARD = "04A2B3C4D5E6F7"


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
