"""No role and no endpoint exports face templates or images: every GET route and every CLI command, swept.

The sweep enumerates routes and commands at run time, so a route or command added later is checked too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from flask import Flask
from flask.testing import FlaskClient

from gatehouse_core.configfile import parse_config
from mobile_api.app import create_app as create_mobile_app
from mobile_api.config import MobileApiConfig
from server.cli import main
from server.extensions import db
from server.models import ConsoleRole
from tests.conftest import login
from tests.test_subject_access import Subject, assert_no_leak, populate, template_needles

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


def urls(app: Flask, subject: Subject) -> Iterator[str]:
    """One URL per GET route with its arguments filled in; every file for the static route."""
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or set()):
            continue
        if rule.endpoint == "static" and app.static_folder:
            folder = Path(app.static_folder)
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                yield f"{app.static_url_path}/{path.relative_to(folder).as_posix()}"
            continue

        def fill(match: re.Match[str]) -> str:
            name = match["name"].lower()
            if match["converter"] in ("int", "float"):
                return str(int_value(name, subject))
            return str_value(name, subject)

        yield ARGUMENT.sub(fill, rule.rule)


def sweep(client: FlaskClient, app: Flask, subject: Subject) -> list[str]:
    """Fetch every GET URL of `app`; no body holds a template and only static assets are images."""
    needles = template_needles(subject)
    fetched = []
    for url in urls(app, subject):
        response = client.get(url)
        try:
            body = response.get_data()
            assert response.status_code < 500, f"GET {url} failed with {response.status_code}"
            assert_no_leak(body, needles, f"GET {url}")
            if response.mimetype.startswith("image/"):
                # Images only as shipped assets (icons, logos): never person data, which is never served.
                assert url.startswith(f"{app.static_url_path}/"), f"GET {url} answers with an image"
        finally:
            response.close()
        fetched.append(url)
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


def test_no_mobile_api_route_serves_a_template_or_an_image(app, subject, key_dir):
    config = parse_config(
        MobileApiConfig, {"database_url": app.config["SQLALCHEMY_DATABASE_URI"], "key_dir": str(key_dir)}
    )
    mobile = create_mobile_app(config)
    mobile.config["TESTING"] = True
    try:
        fetched = sweep(mobile.test_client(), mobile, subject)
    finally:
        with mobile.app_context():
            db.session.remove()
            db.engine.dispose()
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
