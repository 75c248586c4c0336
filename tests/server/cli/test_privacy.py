"""`gatehouse privacy` and `gatehouse consent` on a real, migrated SQLite database with the real face model."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from server.app import create_app
from server.cli.main import main
from server.config import load_server_config
from server.extensions import db
from server.services.access import sites
from server.services.audit import Actor
from server.services.people import people
from tests.support.faces import MODELS

MARKED = re.compile(r"\[to complete:[^\]]*\]|【待填写：[^】]*】")  # noqa: RUF001
NOTICE = """
controller = "Oak Park Management Ltd."
contact = "privacy@oak-park.example"
purpose = "Opening the park gates for members who choose face entry."
method = "A face template, never a photo, matched at the gate."
storage = "Encrypted on the park server and the gate terminals."
retention = "Until you withdraw, or a year after your face last opened a gate."
rights = "See, correct and delete your data."
withdrawal = "At the desk or in the app; deleted everywhere."
"""


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture
def setup(tmp_path: Path, key_dir: Path) -> Iterator[tuple[Path, dict[str, int]]]:
    """A server config with [face], a migrated database, a site, an adult, a child and one without a birthday."""
    config = tmp_path / "server.toml"
    config.write_text(
        f'mode = "production"\ndatabase_url = "sqlite:///{tmp_path / "gh.db"}"\nkey_dir = "{key_dir}"\n'
        f'[face]\nengine = "insightface"\nmodel_dir = "{MODELS / "buffalo_s"}"\n'
    )
    assert run("db", "upgrade", "--config", str(config))[0] == 0
    app = create_app(load_server_config(config))
    with app.app_context():
        site = sites.create_site(db.session, Actor("t"), code="oak", name="Oak Park")
        today = date.today()
        adult = people.create_person(db.session, Actor("t"), site, full_name="Ada", date_of_birth=date(1985, 3, 2))
        child = people.create_person(
            db.session, Actor("t"), site, full_name="Kid", date_of_birth=today - timedelta(days=365 * 8)
        )
        db.session.commit()
        ids = {"adult": adult.id, "child": child.id}
        db.session.remove()
        db.engine.dispose()
    yield config, ids


def test_privacy_set_up_and_consent_at_the_desk(setup: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    config, ids = setup
    c = ["--config", str(config)]
    # Face cannot go on before an assessment and a notice.
    code, output = run("privacy", "face-on", *c, "--site", "oak")
    assert code == 2 and "impact assessment" in output
    summary = tmp_path / "pia.txt"
    summary.write_text("Face optional; templates encrypted; alternatives at every door.")
    today = date.today()
    code, output = run(
        "privacy", "attach-assessment", *c, "--site", "oak", "--assessed-on", today.isoformat(),
        "--author", "Wang Fang", "--review-due", (today + timedelta(days=365)).isoformat(),
        "--summary-file", str(summary),
    )  # fmt: skip
    assert code == 0, output
    notice = tmp_path / "notice.toml"
    notice.write_text(NOTICE + 'colour = "blue"\n')
    code, output = run("privacy", "publish-notice", *c, "--site", "oak", "--file", str(notice))
    assert code == 2 and "colour" in output  # unknown keys are refused, nothing published
    notice.write_text(NOTICE)
    code, output = run("privacy", "publish-notice", *c, "--site", "oak", "--file", str(notice))
    assert code == 0 and "version 1" in output, output
    code, output = run("privacy", "show-notice", *c, "--site", "oak")
    assert code == 0 and "Oak Park Management" in output and "Face entry is optional" in output
    code, output = run("privacy", "face-on", *c, "--site", "oak")
    assert code == 0 and "w600k_mbf-9cc6e4a75f0e" in output, output

    adult, child = str(ids["adult"]), str(ids["child"])
    code, output = run("consent", "status", *c, "--person", adult)
    assert json.loads(output) == {"state": "not_asked", "offer_face": True, "consent": None, "notice_version": 1}
    code, output = run("consent", "give", *c, "--person", adult, "--notice-version", "1")
    assert code == 0 and "recorded" in output, output
    code, output = run("consent", "give", *c, "--person", child, "--notice-version", "1")
    assert code == 2 and "does not enroll the faces of people under 14" in output
    photo = MODELS.parent / "data" / "faces-dev" / "Al_Pacino" / "1.jpg"
    code, output = run("face", "enroll", *c, "--person", adult, "--photo", str(photo))
    assert code == 0, output
    code, output = run("consent", "withdraw", *c, "--person", adult, "--channel", "app")
    assert code == 0 and "1 template(s) erased" in output, output
    assert json.loads(run("consent", "status", *c, "--person", adult)[1])["state"] == "declined"
    code, output = run("consent", "withdraw", *c, "--person", adult)
    assert code == 2 and "no face consent" in output
    code, output = run("consent", "decline", *c, "--person", child)
    assert code == 0, output
    code, output = run("privacy", "figures", *c, "--json")
    figures = json.loads(output)
    assert figures["sites"][0]["declined"] == 2 and figures["sites"][0]["face_enrolled"] == 0
    assert figures["face_templates"] == {"people": 0, "threshold": 100_000, "warning": None}


def test_notice_template_then_publish_in_both_languages(setup: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    """The template carries every section in English and Chinese with the parts to complete marked; a marked
    file is refused and publishes nothing; completed, it publishes a notice a Chinese reader reads in Chinese."""
    import tomllib

    from server.services.privacy import notice_text

    config, _ids = setup
    c = ["--config", str(config)]
    code, template = run("privacy", "notice-template", *c, "--site", "oak")
    assert code == 0, template
    body = tomllib.loads(template)
    assert set(body["sections"]) == set(notice_text.SECTION_KEYS)
    assert all(set(texts) == {"en", "zh"} for texts in body["sections"].values())
    assert notice_text.has_mark(template) and "【待填写" in template

    notice = tmp_path / "notice.toml"
    notice.write_text(template, encoding="utf-8")
    code, output = run("privacy", "publish-notice", *c, "--site", "oak", "--file", str(notice))
    assert code == 2 and "to complete" in output, output  # controller and marked sections refused
    code, output = run("privacy", "show-notice", *c, "--site", "oak")
    assert code != 0 and "version 1" not in output  # nothing was published

    body["controller"], body["contact"] = "Oak Park Management Ltd.", "privacy@oak-park.example"
    for texts in body["sections"].values():
        texts["en"] = MARKED.sub("the Oak Park office", texts["en"])
        texts["zh"] = MARKED.sub("橡树公园管理处", texts["zh"])
    import tomli_w

    body["sections"]["nonsense"] = {"en": "x", "zh": "x"}
    notice.write_text(tomli_w.dumps(body), encoding="utf-8")
    code, output = run("privacy", "publish-notice", *c, "--site", "oak", "--file", str(notice))
    assert code == 2 and "sections.nonsense" in output, output
    del body["sections"]["nonsense"]
    notice.write_text(tomli_w.dumps(body), encoding="utf-8")
    code, output = run("privacy", "publish-notice", *c, "--site", "oak", "--file", str(notice))
    assert code == 0 and "version 1" in output, output
    code, text = run("privacy", "show-notice", *c, "--site", "oak")
    assert code == 0 and "橡树公园管理处" in text and "the Oak Park office" in text
    zh_headings = [s.heading["zh"] for s in notice_text.SECTIONS]
    assert all(heading in text for heading in zh_headings)
