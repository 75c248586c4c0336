"""Adding a person from the console: details, access groups (the usual one ticked) and a first card, all or nothing."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from gatehouse_core.schedule import ALWAYS
from server.extensions import db
from server.models import AccessGroup, Credential, Person, Site
from server.services.access import access
from server.services.access.usual_group import set_usual_group
from tests.conftest import TEST_ACTOR, csrf_token, login

CARD = "04A2B3C4D5E6F7"


@pytest.fixture
def setup(
    client: FlaskClient, make_site: Callable[..., Site], make_user: Callable
) -> tuple[Site, AccessGroup, AccessGroup]:
    site = make_site("maple")
    cleaning = access.create_group(db.session, TEST_ACTOR, site, "Cleaning staff", [], ALWAYS.windows)
    residents = access.create_group(db.session, TEST_ACTOR, site, "Residents", [], ALWAYS.windows)
    set_usual_group(db.session, TEST_ACTOR, site, residents)
    db.session.commit()
    make_user("manager1")
    login(client, "manager1")
    return site, cleaning, residents


def create(client: FlaskClient, **data: object):
    page = client.get("/people/new")
    return client.post("/people/new", data={"csrf_token": csrf_token(page.text), "kind": "resident", **data})


def count(model: type) -> int:
    return db.session.scalar(select(func.count()).select_from(model)) or 0


def test_the_form_ticks_the_usual_group_not_the_first_by_name(client: FlaskClient, setup) -> None:
    _site, cleaning, residents = setup
    page = client.get("/people/new").text
    assert re.search(rf'id="groups-{residents.id}" name="groups" value="{residents.id}" checked', page)
    assert re.search(rf'id="groups-{cleaning.id}" name="groups" value="{cleaning.id}">', page)
    assert '<label for="card_uid">First key card (optional)</label>' in page
    assert "<legend>" in page and "Access groups" in page


def test_details_groups_and_card_in_one_step(client: FlaskClient, setup) -> None:
    site, _cleaning, residents = setup
    response = create(client, full_name="Zhang Min", site=site.id, groups=[residents.id], card_uid=CARD)
    assert response.status_code == 302
    person = db.session.scalar(select(Person))
    assert person is not None and response.headers["Location"].endswith(f"/people/{person.id}")
    assert [g.name for g in person.access_groups] == ["Residents"]
    assert [c.kind.value for c in person.credentials] == ["card"]
    page = client.get(f"/people/{person.id}").text
    assert "Opens 1 door now" not in page  # the group has no doors: the page says so instead
    assert 'data-blocker="no_doors"' in page and CARD not in page


@pytest.mark.parametrize("uid", ["not a card", "04A2B3"])
def test_a_bad_card_refuses_the_whole_create_at_its_field(client: FlaskClient, setup, uid: str) -> None:
    site, _cleaning, residents = setup
    response = create(client, full_name="Zhang Min", site=site.id, groups=[residents.id], card_uid=uid)
    assert response.status_code == 422
    assert 'id="card_uid-error" role="alert"' in response.text and "hexadecimal digits" in response.text
    assert f'value="{uid}"' in response.text and 'value="Zhang Min"' in response.text
    assert (count(Person), count(Credential)) == (0, 0)


def test_a_card_registered_to_someone_else_refuses_the_create(
    client: FlaskClient, setup, make_person: Callable[..., Person]
) -> None:
    site, _cleaning, residents = setup
    assert create(client, full_name="Wang Fang", site=site.id, card_uid=CARD).status_code == 302
    response = create(client, full_name="Zhang Min", site=site.id, groups=[residents.id], card_uid=CARD)
    assert response.status_code == 422 and "already registered" in response.text
    assert 'id="card_uid-error"' in response.text
    assert count(Person) == 1 and count(Credential) == 1


def test_a_group_of_another_site_is_refused_at_the_groups(
    client: FlaskClient, setup, make_site: Callable[..., Site]
) -> None:
    site, _cleaning, _residents = setup
    foreign = access.create_group(db.session, TEST_ACTOR, make_site("oak"), "Oak residents", [], ALWAYS.windows)
    db.session.commit()
    response = create(client, full_name="Zhang Min", site=site.id, groups=[foreign.id])
    assert response.status_code == 422 and 'id="groups-error" role="alert"' in response.text
    assert count(Person) == 0


@pytest.mark.parametrize("groups", [["x"], ["999999"]])
def test_nonsense_groups_never_answer_500(client: FlaskClient, setup, groups: list[str]) -> None:
    site, _cleaning, _residents = setup
    response = create(client, full_name="Zhang Min", site=site.id, groups=groups)
    assert response.status_code in (302, 422)
    if response.status_code == 422:
        assert count(Person) == 0


def test_no_group_and_no_card_is_fine(client: FlaskClient, setup) -> None:
    site, _cleaning, _residents = setup
    assert create(client, full_name="Li Wei", site=site.id).status_code == 302
    person = db.session.scalar(select(Person))
    assert person is not None and person.access_groups == [] and person.credentials == []
