"""The services behind the app's sign-in: accounts, phone sync, one-time codes, and the code senders."""

from __future__ import annotations

import json
import stat
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from gatehouse_core.configfile import ConfigError, parse_config
from gatehouse_core.keyring import ServerKeys
from mobile_api.code_senders import CommandSender, SpoolSender, make_sender
from mobile_api.config import LoginCodeConfig, MobileApiConfig
from server.extensions import db
from server.models import Person, PersonKind, ResidentAccount, Site, utcnow
from server.services.accounts import app_accounts, login_codes
from server.services.accounts.login_codes import CodeMessage, CodeSenderError
from server.services.errors import Conflict, NotFound, RuleViolation
from server.services.people import people
from tests.conftest import PASSWORD, TEST_ACTOR

PHONE = "+86 138 0000 0001"
PHONE_KEY = "+8613800000001"
OTHER_PHONE = "+86 139 1111 2222"
MESSAGE = CodeMessage(phone=PHONE_KEY, code="042917", site_name="Test site", valid_minutes=5)


class MemorySender:
    """A code sender that keeps what it was asked to send."""

    def __init__(self) -> None:
        self.sent: list[CodeMessage] = []

    def send(self, message: CodeMessage) -> None:
        self.sent.append(message)


@pytest.fixture
def site(make_site: Callable[..., Site]) -> Site:
    return make_site()


def enable(person: Person, username: str | None = None, password: str | None = None) -> ResidentAccount:
    account = app_accounts.enable_account(db.session, TEST_ACTOR, person, username=username, password=password)
    db.session.commit()
    return account


# ---- enabling accounts -----------------------------------------------------------------------------------------


def test_an_account_signs_in_by_username_or_by_the_phone_on_file(
    site: Site, make_person: Callable[..., Person]
) -> None:
    account = enable(make_person(site, phone=PHONE), username="  Li.Wei  ")
    assert account.username == "li.wei"
    assert account.phone_key == PHONE_KEY
    assert account.password_hash is None
    for login in ("li.wei", "LI.WEI", PHONE, "+86-138-0000-0001", "+86 (138) 0000.0001"):
        assert app_accounts.find_account(db.session, login) is account, login
    for login in ("", "   ", "x" * 65, "+86 138 0000 0002", "someone.else"):
        assert app_accounts.find_account(db.session, login) is None, login


@pytest.mark.parametrize(
    ("person_kw", "username", "code"),
    [
        ({"kind": PersonKind.VISITOR, "phone": PHONE}, "guest", "visitor"),
        ({}, None, "no_login"),
        ({"phone": "12"}, None, "no_login"),
        ({"phone": PHONE}, "No Spaces Allowed", "bad_username"),
        ({"phone": PHONE}, "ab", "bad_username"),
    ],
)
def test_enable_account_refuses_and_changes_nothing(
    site: Site, make_person: Callable[..., Person], person_kw: dict[str, Any], username: str | None, code: str
) -> None:
    person = make_person(site, **person_kw)
    with pytest.raises(RuleViolation) as refused:
        app_accounts.enable_account(db.session, TEST_ACTOR, person, username=username)
    assert refused.value.code == code
    db.session.rollback()
    assert app_accounts.account_of(db.session, person) is None


@pytest.mark.parametrize("leave", [people.move_out, people.deactivate])
def test_only_people_active_at_the_site_get_an_account(
    site: Site, make_person: Callable[..., Person], leave: Callable[..., None]
) -> None:
    person = make_person(site, phone=PHONE)
    leave(db.session, TEST_ACTOR, person)
    db.session.commit()
    with pytest.raises(RuleViolation) as refused:
        app_accounts.enable_account(db.session, TEST_ACTOR, person, username="liwei")
    assert refused.value.code == "inactive"


def test_a_weak_first_password_is_refused_before_anything_is_saved(
    site: Site, make_person: Callable[..., Person]
) -> None:
    person = make_person(site, phone=PHONE)
    with pytest.raises(RuleViolation) as refused:
        app_accounts.enable_account(db.session, TEST_ACTOR, person, password="short")
    assert refused.value.code == "weak_password"
    assert app_accounts.account_of(db.session, person) is None


def test_usernames_are_unique_whatever_their_case(site: Site, make_person: Callable[..., Person]) -> None:
    enable(make_person(site, "Li Wei"), username="liwei")
    other = make_person(site, "Li Wei Jr")
    with pytest.raises(Conflict) as refused:
        app_accounts.enable_account(db.session, TEST_ACTOR, other, username="LiWei")
    assert refused.value.code == "username_taken"


def test_a_phone_already_signing_in_falls_back_to_the_username(site: Site, make_person: Callable[..., Person]) -> None:
    first = enable(make_person(site, "Wang Fang", phone=PHONE))
    spouse = make_person(site, "Zhao Lei", phone="+86-138-0000-0001")
    with pytest.raises(Conflict) as refused:
        app_accounts.enable_account(db.session, TEST_ACTOR, spouse)
    assert refused.value.code == "phone_taken"
    db.session.rollback()
    second = enable(spouse, username="zhaolei")
    assert second.phone_key is None
    assert app_accounts.find_account(db.session, PHONE) is first
    assert app_accounts.find_account(db.session, "zhaolei") is second


def test_enabling_again_after_disabling_keeps_the_account(site: Site, make_person: Callable[..., Person]) -> None:
    person = make_person(site, phone=PHONE)
    account = enable(person, username="liwei")
    assert app_accounts.disable_account(db.session, TEST_ACTOR, person) == 0
    db.session.commit()
    assert not app_accounts.may_sign_in(account)
    again = enable(person)
    assert again.id == account.id
    assert again.enabled and again.username == "liwei"
    with pytest.raises(NotFound):
        app_accounts.disable_account(db.session, TEST_ACTOR, make_person(site, "No App"))


def test_authenticate_needs_a_password_and_an_enabled_account(site: Site, make_person: Callable[..., Person]) -> None:
    person = make_person(site, phone=PHONE)
    account = enable(person, username="liwei")
    # Code-only account: no password matches.
    assert app_accounts.authenticate(db.session, "liwei", PASSWORD) is None
    app_accounts.set_password(db.session, account, None, PASSWORD, keep_session=None)
    db.session.commit()
    assert app_accounts.authenticate(db.session, PHONE, PASSWORD) is account
    assert app_accounts.authenticate(db.session, PHONE, PASSWORD + "x") is None
    with pytest.raises(RuleViolation) as refused:
        app_accounts.set_password(db.session, account, None, "another password", keep_session=None)
    assert refused.value.code == "wrong_password"


# ---- the phone follows the person's record ---------------------------------------------------------------------


def test_a_managers_phone_correction_moves_the_sign_in(site: Site, make_person: Callable[..., Person]) -> None:
    person = make_person(site, phone=PHONE)
    account = enable(person, username="liwei")
    people.update_person(db.session, TEST_ACTOR, person, phone=" 139-1111-2222 ")
    db.session.commit()
    assert account.phone_key == "13911112222"
    assert app_accounts.find_account(db.session, "139 1111 2222") is account
    assert app_accounts.find_account(db.session, PHONE) is None

    people.update_person(db.session, TEST_ACTOR, person, phone=None)
    db.session.commit()
    assert account.phone_key is None
    assert app_accounts.find_account(db.session, "liwei") is account


def test_a_phone_that_another_account_signs_in_with_is_not_taken_over(
    site: Site, make_person: Callable[..., Person]
) -> None:
    first = enable(make_person(site, "Wang Fang", phone=PHONE))
    person = make_person(site, "Zhao Lei", phone=OTHER_PHONE)
    second = enable(person, username="zhaolei")
    people.update_person(db.session, TEST_ACTOR, person, phone=PHONE)
    db.session.commit()
    assert second.phone_key is None
    assert first.phone_key == PHONE_KEY
    assert app_accounts.find_account(db.session, PHONE) is first


def test_a_person_without_an_account_is_unaffected_by_phone_edits(
    site: Site, make_person: Callable[..., Person]
) -> None:
    person = make_person(site, phone=PHONE)
    assert people.update_person(db.session, TEST_ACTOR, person, phone=OTHER_PHONE) == ["phone"]
    db.session.commit()
    assert app_accounts.account_of(db.session, person) is None


# ---- one-time codes --------------------------------------------------------------------------------------------


@pytest.fixture
def code_key(keys: ServerKeys) -> bytes:
    return login_codes.code_key(keys.session_secret)


def test_a_code_works_once_and_only_while_fresh(
    site: Site, make_person: Callable[..., Person], code_key: bytes
) -> None:
    account = enable(make_person(site, phone=PHONE))
    sender = MemorySender()
    t0 = utcnow()
    assert login_codes.request_code(db.session, code_key, sender, PHONE, at=t0)
    [message] = sender.sent
    assert message.phone == PHONE_KEY and message.site_name == "Test site" and message.valid_minutes == 5
    assert login_codes.check_code(db.session, code_key, PHONE, message.code, at=t0 + timedelta(minutes=6)) is None
    assert login_codes.check_code(db.session, code_key, PHONE, message.code, at=t0 + timedelta(minutes=4)) is account
    assert login_codes.check_code(db.session, code_key, PHONE, message.code, at=t0 + timedelta(minutes=4)) is None


def test_after_five_wrong_tries_even_the_right_code_fails(
    site: Site, make_person: Callable[..., Person], code_key: bytes
) -> None:
    enable(make_person(site, phone=PHONE))
    sender = MemorySender()
    assert login_codes.request_code(db.session, code_key, sender, PHONE)
    code = sender.sent[0].code
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for attempt in (wrong, wrong, "12345", "abcdef", wrong):
        assert login_codes.check_code(db.session, code_key, PHONE, attempt) is None
    assert login_codes.check_code(db.session, code_key, PHONE, code) is None


def test_at_most_three_codes_per_fifteen_minutes(
    site: Site, make_person: Callable[..., Person], code_key: bytes
) -> None:
    account = enable(make_person(site, phone=PHONE))
    sender = MemorySender()
    t0 = utcnow()
    for minutes in (0, 1, 2):
        assert login_codes.request_code(db.session, code_key, sender, PHONE, at=t0 + timedelta(minutes=minutes))
    assert not login_codes.request_code(db.session, code_key, sender, PHONE, at=t0 + timedelta(minutes=3))
    assert len(sender.sent) == 3
    later = t0 + timedelta(minutes=16)
    assert login_codes.request_code(db.session, code_key, sender, PHONE, at=later)
    assert login_codes.check_code(db.session, code_key, PHONE, sender.sent[-1].code, at=later) is account


def test_no_code_goes_to_an_account_that_cannot_receive_or_use_one(
    site: Site, make_person: Callable[..., Person], code_key: bytes
) -> None:
    enable(make_person(site, "Username Only"), username="nophone")
    person = make_person(site, "Disabled", phone=PHONE)
    enable(person)
    app_accounts.disable_account(db.session, TEST_ACTOR, person)
    db.session.commit()
    sender = MemorySender()
    for login in ("nophone", PHONE, "+86 139 9999 9999"):
        assert not login_codes.request_code(db.session, code_key, sender, login)
    assert sender.sent == []


# ---- senders ---------------------------------------------------------------------------------------------------


def test_the_message_text_names_the_code_site_and_lifetime() -> None:
    text = MESSAGE.text()
    assert "042917" in text and "Test site" in text and "5 minutes" in text


def test_the_command_sender_passes_the_phone_as_argument_and_the_text_on_stdin(tmp_path: Path) -> None:
    out = tmp_path / "sent.txt"
    script = tmp_path / "send-sms.sh"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$1" > "{out}"\ncat >> "{out}"\n', encoding="utf-8")
    sender = make_sender(LoginCodeConfig(sender="command", command=["sh", str(script), "{phone}"]))
    assert isinstance(sender, CommandSender)
    sender.send(MESSAGE)
    phone_line, text = out.read_text(encoding="utf-8").split("\n", 1)
    assert phone_line == PHONE_KEY
    assert text == MESSAGE.text()


@pytest.mark.parametrize(
    ("argv", "timeout", "reason"),
    [
        (["sh", "-c", "cat > /dev/null; exit 3", "sender"], 10.0, "exit status 3"),
        (["sh", "-c", "sleep 5"], 0.2, "TimeoutExpired"),
        (["/nonexistent/send-sms"], 10.0, "could not run"),
    ],
)
def test_a_failing_command_is_a_sender_error_without_the_code(argv: list[str], timeout: float, reason: str) -> None:
    with pytest.raises(CodeSenderError) as failed:
        CommandSender(argv, timeout).send(MESSAGE)
    assert reason in str(failed.value)
    assert MESSAGE.code not in str(failed.value) and PHONE_KEY not in str(failed.value)


def test_the_spool_sender_writes_private_files(tmp_path: Path) -> None:
    sender = make_sender(LoginCodeConfig(sender="spool", spool_dir=tmp_path / "spool"))
    assert isinstance(sender, SpoolSender)
    sender.send(MESSAGE)
    [written] = list((tmp_path / "spool").iterdir())
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert json.loads(written.read_text(encoding="utf-8")) == {
        "phone": PHONE_KEY,
        "text": MESSAGE.text(),
        "code": MESSAGE.code,
    }
    blocked = tmp_path / "a-file"
    blocked.write_text("", encoding="utf-8")
    with pytest.raises(CodeSenderError, match="spool folder"):
        SpoolSender(blocked).send(MESSAGE)


PLUGIN = """
class Sender:
    def __init__(self, options):
        self.options = options
        self.sent = []

    def send(self, message):
        self.sent.append(message)


def make(options):
    return Sender(options)


def useless(options):
    return object()
"""


def test_a_plugin_sender_is_loaded_from_module_and_factory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    name = f"gatehouse_test_sms_{tmp_path.name}"
    (tmp_path / f"{name}.py").write_text(PLUGIN, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    request.addfinalizer(lambda: sys.modules.pop(name, None))

    sender: Any = make_sender(LoginCodeConfig(sender="plugin", plugin=f"{name}:make", options={"account": "acme"}))
    sender.send(MESSAGE)
    assert sender.options == {"account": "acme"}
    assert sender.sent == [MESSAGE]

    with pytest.raises(ValueError, match="send"):
        make_sender(LoginCodeConfig(sender="plugin", plugin=f"{name}:useless"))
    with pytest.raises(ValueError, match="cannot be loaded"):
        make_sender(LoginCodeConfig(sender="plugin", plugin=f"{name}:missing"))
    with pytest.raises(ValueError, match="cannot be loaded"):
        make_sender(LoginCodeConfig(sender="plugin", plugin="no_such_gatehouse_module:make"))


def test_no_login_codes_section_means_no_sender() -> None:
    assert make_sender(None) is None


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ({"sender": "spool"}, "the spool sender needs login_codes.spool_dir"),
        ({"sender": "command"}, "the command sender needs login_codes.command"),
        ({"sender": "command", "command": []}, "the command sender needs login_codes.command"),
        ({"sender": "plugin"}, "the plugin sender needs login_codes.plugin"),
        ({"sender": "plugin", "plugin": "just_a_module"}, "write login_codes.plugin as 'package.module:factory'"),
        ({"sender": "carrier-pigeon", "spool_dir": "spool"}, "Input should be 'spool', 'command' or 'plugin'"),
        ({"sender": "spool", "spool_dir": "spool", "retries": 3}, "unknown key"),
        ({"sender": "command", "command": ["sms"], "timeout_seconds": 0}, "greater than or equal to 1"),
    ],
)
def test_the_login_codes_section_is_checked(tmp_path: Path, section: dict[str, Any], problem: str) -> None:
    data = {"database_url": "sqlite:///gatehouse.db", "key_dir": str(tmp_path), "login_codes": section}
    with pytest.raises(ConfigError) as refused:
        parse_config(MobileApiConfig, data)
    problems = [(p.key, p.problem) for p in refused.value.problems]
    assert len(problems) == 1, problems
    key, text = problems[0]
    assert key.startswith("login_codes"), problems
    assert problem in text, problems


def test_a_complete_login_codes_section_is_accepted(tmp_path: Path) -> None:
    data = {
        "database_url": "sqlite:///gatehouse.db",
        "key_dir": str(tmp_path),
        "login_codes": {"sender": "command", "command": ["sms-send", "--to", "{phone}"], "timeout_seconds": 5},
    }
    config = parse_config(MobileApiConfig, data)
    assert config.login_codes is not None
    assert config.login_codes.command == ["sms-send", "--to", "{phone}"]
