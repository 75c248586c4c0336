"""`gatehouse app-accounts enable|disable|sign-out|show` on a migrated database (SQLite and PostgreSQL)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from gatehouse_core.keyring import load_keys
from server.app import create_app
from server.cli.main import main
from server.config import load_server_config
from server.extensions import db
from server.models import AppSession, AuditEntry, PersonKind, ResidentAccount, SessionEnd
from server.services.access import sites
from server.services.accounts import app_sessions
from server.services.accounts.users import check_password
from server.services.audit import Actor
from server.services.people import people

ACTOR = Actor("t")
PHONE = "+86 138 0000 0001"
PASSWORD = "plum blossom window 7"


@dataclass
class People:
    """Ids of a resident with a phone, one without, and a visitor."""

    with_phone: int
    phoneless: int
    visitor: int


@pytest.fixture
def seeded(config: Path) -> People:
    app = create_app(load_server_config(config))
    with app.app_context():
        site = sites.create_site(db.session, ACTOR, code="oak", name="Oak Park")
        made = [
            people.create_person(db.session, ACTOR, site, full_name="Zhang Min", phone=PHONE),
            people.create_person(db.session, ACTOR, site, full_name="Wu Hao"),
            people.create_person(
                db.session, ACTOR, site, full_name="Guest Liu", kind=PersonKind.VISITOR, phone="+86 139 0000 0002"
            ),
        ]
        db.session.commit()
        ids = People(*(p.id for p in made))
        db.session.remove()
        db.engine.dispose()
    return ids


def run(config: Path, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, ["app-accounts", *args, "--config", str(config)], input=stdin)


def look(config: Path, person_id: int) -> tuple[ResidentAccount | None, list[AppSession], list[AuditEntry]]:
    """The person's account, sessions and app_account audit entries, read in a fresh app."""
    app = create_app(load_server_config(config))
    with app.app_context():
        found = db.session.scalar(select(ResidentAccount).where(ResidentAccount.person_id == person_id))
        sessions = list(db.session.scalars(select(AppSession).order_by(AppSession.id)))
        audit = list(db.session.scalars(select(AuditEntry).where(AuditEntry.action.like("app_account.%"))))
        db.session.expunge_all()
        db.session.remove()
        db.engine.dispose()
    return found, sessions, audit


def sign_in_devices(config: Path, person_id: int, n: int) -> None:
    app = create_app(load_server_config(config))
    with app.app_context():
        account = db.session.scalar(select(ResidentAccount).where(ResidentAccount.person_id == person_id))
        assert account is not None
        key = app_sessions.access_key(load_keys(load_server_config(config).key_dir).session_secret)
        for _ in range(n):
            app_sessions.start_session(db.session, key, account, app_sessions.TokenPolicy(), how="test")
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


def test_enable_with_username_and_password_from_stdin_then_show(config: Path, seeded: People) -> None:
    result = run(
        config, "enable", str(seeded.with_phone), "--username", "Zhang.Min", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"phone app on for person {seeded.with_phone}; signs in with username zhang.min or the phone on file\n"
    )
    account, _sessions, audit = look(config, seeded.with_phone)
    assert account is not None and account.enabled and account.username == "zhang.min"
    assert check_password(account.password_hash, PASSWORD)  # the line ending is not part of it
    assert [(e.action, e.actor_label) for e in audit] == [("app_account.enable", "cli")]

    sign_in_devices(config, seeded.with_phone, 2)
    shown = run(config, "show", str(seeded.with_phone))
    assert shown.exit_code == 0
    lines = shown.stdout.splitlines()
    assert lines[:4] == [
        "phone app: on",
        "signs in with: username zhang.min or the phone on file",
        "password: set",
        "signed-in devices: 2",
    ]
    assert lines[4].startswith("last used: ") and lines[4].endswith(" UTC")
    assert "argon2" not in shown.stdout and "0000" not in shown.stdout  # no hash, no phone number


def test_enable_by_phone_alone_sets_no_password(config: Path, seeded: People) -> None:
    result = run(config, "enable", str(seeded.with_phone))
    assert result.exit_code == 0
    assert result.stdout.endswith("signs in with the phone on file\n")
    account, _, _ = look(config, seeded.with_phone)
    assert account is not None and account.username is None and account.password_hash is None
    assert run(config, "show", str(seeded.with_phone)).stdout.splitlines()[2:4] == [
        "password: not set",
        "signed-in devices: 0",
    ]


def test_disable_and_sign_out_end_every_session(config: Path, seeded: People) -> None:
    assert run(config, "enable", str(seeded.with_phone), "--username", "zhangmin").exit_code == 0
    sign_in_devices(config, seeded.with_phone, 2)
    signed_out = run(config, "sign-out", str(seeded.with_phone))
    assert signed_out.exit_code == 0 and signed_out.stdout == f"2 device(s) of person {seeded.with_phone} signed out\n"
    account, sessions, _ = look(config, seeded.with_phone)
    assert account is not None and account.enabled
    assert [s.revoked_reason for s in sessions] == [SessionEnd.MANAGER] * 2

    sign_in_devices(config, seeded.with_phone, 1)
    disabled = run(config, "disable", str(seeded.with_phone))
    assert disabled.exit_code == 0
    assert disabled.stdout == f"phone app off for person {seeded.with_phone}; 1 device(s) signed out\n"
    account, sessions, audit = look(config, seeded.with_phone)
    assert account is not None and not account.enabled
    assert sessions[-1].revoked_reason is SessionEnd.DISABLED
    assert [e.action for e in audit] == [
        "app_account.enable",
        "app_account.sign_out_everywhere",
        "app_account.disable",
    ]
    assert run(config, "show", str(seeded.with_phone)).stdout.splitlines()[0] == "phone app: off"


@pytest.mark.parametrize(
    ("who", "args", "stdin", "reason"),
    [
        ("with_phone", ["--username", "x!"], None, "(bad_username)"),
        ("with_phone", ["--password-stdin"], "short\n", "(weak_password)"),
        ("with_phone", ["--password-stdin"], "\n", "stdin held no password"),
        ("phoneless", [], None, "(no_login)"),
        ("visitor", ["--username", "guest"], None, "(visitor)"),
    ],
    ids=["bad_username", "weak_password", "empty_stdin", "no_login", "visitor"],
)
def test_refused_enable_says_why_and_stores_nothing(
    config: Path, seeded: People, who: str, args: list[str], stdin: str | None, reason: str
) -> None:
    person_id = getattr(seeded, who)
    result = run(config, "enable", str(person_id), *args, stdin=stdin)
    assert result.exit_code == 2 and reason in result.stderr and result.stdout == ""
    account, _, audit = look(config, person_id)
    assert account is None and audit == []


def test_other_refusals(config: Path, seeded: People) -> None:
    missing = run(config, "show", "9999")
    assert missing.exit_code == 2 and "no person with id 9999" in missing.stderr
    for command in ("disable", "sign-out"):
        result = run(config, command, str(seeded.with_phone))
        assert result.exit_code == 2 and "(no_account)" in result.stderr
    assert run(config, "show", str(seeded.with_phone)).stdout == "phone app: never turned on\n"
    # A username another account has is refused, and the first account keeps it.
    assert run(config, "enable", str(seeded.phoneless), "--username", "taken").exit_code == 0
    taken = run(config, "enable", str(seeded.with_phone), "--username", "TAKEN")
    assert taken.exit_code == 2 and "(username_taken)" in taken.stderr
    assert look(config, seeded.with_phone)[0] is None


def test_person_id_must_be_a_number(config: Path) -> None:
    result = run(config, "show", "zhang")
    assert result.exit_code == 2 and "is not a valid integer" in result.stderr


def test_app_accounts_is_a_gatehouse_command() -> None:
    result = CliRunner().invoke(main, ["app-accounts", "--help"])
    assert result.exit_code == 0
    for command in ("enable", "disable", "sign-out", "show"):
        assert command in result.stdout
