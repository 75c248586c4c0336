"""Red team, issue 18 item 4: an account signed into by username or by phone had a counter under each login.

Five wrong passwords under the username, five more under the phone number: ten guesses against one account.
Once the login names an account, every failure counts against that account, whichever name was typed.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from server.services.accounts import login_throttle
from tests.conftest import PASSWORD

# The phone-app fixtures of tests/mobile, found by pytest under these names in this module.
from tests.mobile.conftest import (  # noqa: F401
    Household,
    bearer,
    code_spool,
    make_account,
    make_household,
    make_mobile_app,
    mobile,
    mobile_app,
)

PHONE = "+86 138 0000 0001"


def password_login(client: FlaskClient, login: str, password: str):
    body = {"login": login, "password": password, "device": "Pixel 8"}
    return client.post("/api/v1/auth/login", json=body)


@pytest.fixture
def phone(mobile: FlaskClient) -> FlaskClient:  # noqa: F811 - the fixture imported above
    """The phone-app API (a name that does not shadow the imported fixture in the tests)."""
    return mobile


@pytest.fixture
def household(make_household: Callable[..., Household]) -> Household:  # noqa: F811 - the fixture imported above
    """A resident whose app account has the username resident<n> and the phone PHONE."""
    return make_household(phone=PHONE)


def test_wrong_passwords_under_the_username_also_lock_the_phone(phone: FlaskClient, household: Household) -> None:
    username = household.account.username
    for i in range(login_throttle.MAX_PER_USERNAME):
        assert password_login(phone, username, f"wrong guess {i}").status_code == 401
    # The phone number names the same account: no more guesses, and not the right password either.
    for login in (PHONE, "+86-138-0000-0001", username.upper()):
        refused = password_login(phone, login, "another wrong guess")
        assert refused.status_code == 429, refused.get_json()
        assert refused.get_json()["error"] == "too_many_attempts"
    assert password_login(phone, PHONE, PASSWORD).status_code == 429


def test_guesses_split_between_username_and_phone_share_one_limit(phone: FlaskClient, household: Household) -> None:
    logins = [household.account.username, PHONE]
    for i in range(login_throttle.MAX_PER_USERNAME):
        assert password_login(phone, logins[i % 2], f"wrong guess {i}").status_code == 401
    assert password_login(phone, logins[1], PASSWORD).status_code == 429
    assert password_login(phone, logins[0], PASSWORD).status_code == 429
