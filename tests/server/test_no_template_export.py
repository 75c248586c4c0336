"""No role and no endpoint exports face templates or images: every GET route and every CLI command, swept.

The sweep enumerates routes and commands at run time, so a route or command added later is checked too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from urllib.parse import urlsplit

import click
import pytest
from flask import Flask
from flask.testing import FlaskClient

from gatehouse_core.configfile import parse_config
from mobile_api.app import create_app as create_mobile_app
from mobile_api.config import MobileApiConfig
from mobile_api.routes.share import share_link
from server.cli.main import main
from server.extensions import db
from server.models import ConsoleRole, Person
from server.services.accounts import app_accounts, app_sessions
from tests.conftest import TEST_ACTOR, login
from tests.server.services.test_subject_access import Subject, assert_no_leak, populate, template_needles

# `<int:person_id>`, `<path:filename>`, `<name>`: converter (optional) and argument name.
ARGUMENT = re.compile(r"<(?:(?P<converter>[a-zA-Z_]+)(?:\([^)]*\))?:)?(?P<name>\w+)>")
TEMPLATE_WORDS = re.compile(r"template|photo|image|picture|face|vector|biometric|embedding", re.IGNORECASE)
EXPORT_WORDS = re.compile(r"export|dump|download|extract|backup", re.IGNORECASE)


def int_value(name: str, subject: Subject) -> int:
    """The id of what `populate` made that a route argument named `name` most likely means."""
    ids = [
        (("consent",), subject.consent_ids[-1]),
        (("template",), subject.template_id),
        (("receipt", "erasure"), subject.erased_template_id),
        (("pass",), subject.pass_id),
        (("group",), subject.group_id),
        (("notice",), subject.notice_id),
        (("credential", "card"), subject.credential_ids[0]),
        (("terminal",), subject.terminal_id),
        (("door",), subject.door_id),
        (("user", "operator"), subject.user_id),
        (("person", "people", "resident", "host"), subject.person_id),
        (("site",), subject.site_id),
    ]
    for words, value in ids:
        if any(word in name for word in words):
            return value
    return 1


def str_value(name: str, subject: Subject) -> str:
    """A string route argument: the site code, pseudonym or terminal identity when the name says so."""
    if "pseudonym" in name:
        return subject.pseudonym
    if "ident" in name or "terminal" in name:
        return subject.terminal_ident
    if "code" in name or "site" in name:
        return subject.site_code
    return "x"


def static_folders(app: Flask) -> Iterator[tuple[str, Path]]:
    """(URL prefix, folder) of the app's and its blueprints' static routes."""
    for rule in app.url_map.iter_rules():
        if rule.endpoint != "static" and not rule.endpoint.endswith(".static"):
            continue
        owner = app if rule.endpoint == "static" else app.blueprints[rule.endpoint.rsplit(".", 1)[0]]
        if owner.static_folder:
            yield rule.rule.split("<", 1)[0].rstrip("/"), Path(owner.static_folder)


def urls(app: Flask, subject: Subject, values: dict[str, str] | None = None) -> Iterator[str]:
    """One URL per GET route with its arguments filled in (`values` by name first); every static file."""
    folders = dict(static_folders(app))
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or set()):
            continue
        prefix = rule.rule.split("<", 1)[0].rstrip("/")
        if prefix in folders:
            folder = folders[prefix]
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                yield f"{prefix}/{path.relative_to(folder).as_posix()}"
            continue

        def fill(match: re.Match[str], rule_text: str = rule.rule) -> str:
            name = match["name"].lower()
            if values and name in values:
                return values[name]
            if name == "id":
                # A bare `<int:id>` (the mobile API's style) names what the path segment before it names.
                name = rule_text[: match.start()].rstrip("/").rsplit("/", 1)[-1].lower() + "_id"
            if match["converter"] in ("int", "float"):
                return str(int_value(name, subject))
            return str_value(name, subject)

        yield ARGUMENT.sub(fill, rule.rule)


def sweep(
    client: FlaskClient,
    app: Flask,
    subject: Subject,
    headers: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> dict[str, int]:
    """Fetch every GET URL of `app`; no body holds a template and only static assets are images.

    Returns each URL fetched with its status.
    """
    needles = template_needles(subject)
    assets = tuple(f"{prefix}/" for prefix, _ in static_folders(app))
    fetched = {}
    for url in urls(app, subject, values):
        response = client.get(url, headers=headers or {}, buffered=False)
        try:
            if response.mimetype == "text/event-stream":
                # A live stream (the operations screen) runs for minutes: its first messages, then hang up.
                body = b"".join(islice(response.iter_encoded(), 5))
            else:
                body = response.get_data()
            assert response.status_code < 500, f"GET {url} failed with {response.status_code}"
            assert_no_leak(body, needles, f"GET {url}")
            if response.mimetype.startswith("image/"):
                # Images only as shipped assets (icons, logos): never person data, which is never served.
                assert url.startswith(assets), f"GET {url} answers with an image"
        finally:
            response.close()
        fetched[url] = response.status_code
    return fetched


@pytest.fixture
def subject(app: Flask, keys) -> Subject:
    return populate(keys)


def test_no_console_route_serves_a_template_or_an_image(app, client, subject, make_user):
    make_user("admin1", ConsoleRole.ADMIN)
    login(client, "admin1")
    fetched = sweep(client, app, subject)
    # The sweep really reached the pages that show the most about a person.
    assert f"/people/{subject.person_id}/subject-access" in fetched
    assert f"/people/{subject.person_id}/subject-access.json" in fetched
    assert "/people" in fetched and "/terminals" in fetched


def test_no_mobile_api_route_serves_a_template_or_an_image(app, subject, key_dir, keys):
    config = parse_config(
        MobileApiConfig, {"database_url": app.config["SQLALCHEMY_DATABASE_URI"], "key_dir": str(key_dir)}
    )
    mobile = create_mobile_app(config)
    mobile.config["TESTING"] = True
    # Signed in as the subject, so every GET answers with their data rather than a 401.
    person = db.session.get(Person, subject.person_id)
    account = app_accounts.enable_account(db.session, TEST_ACTOR, person, username="subject", password=None)
    key = app_sessions.access_key(keys.session_secret)
    issued = app_sessions.start_session(db.session, key, account, app_sessions.TokenPolicy(), how="test")
    db.session.commit()
    with mobile.test_request_context():
        share_path = urlsplit(share_link(subject.pass_id)).path
    try:
        fetched = sweep(
            mobile.test_client(),
            mobile,
            subject,
            headers={"Authorization": f"Bearer {issued.access_token}"},
            values={"token": share_path.rsplit("/", 1)[-1]},
        )
    finally:
        with mobile.app_context():
            db.session.remove()
            db.engine.dispose()
    # The sweep really reached the subject's data: every address answered, the richest ones included.
    assert {url: status for url, status in fetched.items() if status != 200} == {}
    for url in ("/api/v1/me", "/api/v1/me/export", "/api/v1/me/face", "/api/v1/me/events", "/api/v1/passes"):
        assert url in fetched
    assert f"/api/v1/passes/{subject.pass_id}" in fetched and share_path in fetched
    assert "/api/v1/health" in fetched


@pytest.mark.parametrize("make", ["console", "mobile"])
def test_no_route_is_named_for_exporting_templates(app, key_dir, make):
    if make == "console":
        rules = [rule.rule for rule in app.url_map.iter_rules()]
    else:
        config = parse_config(
            MobileApiConfig, {"database_url": app.config["SQLALCHEMY_DATABASE_URI"], "key_dir": str(key_dir)}
        )
        mobile = create_mobile_app(config)
        rules = [rule.rule for rule in mobile.url_map.iter_rules()]
        with mobile.app_context():
            db.engine.dispose()
    named = [r for r in rules if TEMPLATE_WORDS.search(r) and EXPORT_WORDS.search(r)]
    assert named == [], f"routes that look like template or photo exports: {named}"


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The path of every command under `group`, followed by its option names."""
    for name, command in sorted(group.commands.items()):
        path = (*prefix, name)
        options = tuple(opt for param in command.params for opt in getattr(param, "opts", []))
        yield (*path, *options)
        if isinstance(command, click.Group):
            yield from command_paths(command, path)


def test_no_cli_command_exports_templates_or_photos():
    paths = [" ".join(path) for path in command_paths(main)]
    assert any(p.startswith("face enroll") for p in paths) and any(p.startswith("subject-access") for p in paths)
    named = [p for p in paths if TEMPLATE_WORDS.search(p) and EXPORT_WORDS.search(p)]
    assert named == [], f"commands that look like template or photo exports: {named}"
