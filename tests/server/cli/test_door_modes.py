"""`gatehouse doors lockdown|release|lift|status` on a migrated SQLite database (the service is tested on both)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from flask_migrate import upgrade

from server.app import MIGRATIONS_DIR, create_app
from server.cli.main import main
from server.config import load_server_config
from server.extensions import db
from server.services.access import sites
from server.services.access.sites import DoorMethods
from server.services.audit import Actor


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def config(tmp_path: Path, key_dir: Path) -> Path:
    """Site oak with doors Front and Back, on a migrated database."""
    path = tmp_path / "server.toml"
    path.write_text(f'mode = "production"\ndatabase_url = "sqlite:///{tmp_path / "gh.db"}"\nkey_dir = "{key_dir}"\n')
    app = create_app(load_server_config(path))
    with app.app_context():
        upgrade(directory=MIGRATIONS_DIR)
        oak = sites.create_site(db.session, Actor("t"), code="oak", name="Oak Park")
        sites.save_door(db.session, Actor("t"), oak, "Front", DoorMethods())
        sites.save_door(db.session, Actor("t"), oak, "Back", DoorMethods())
        db.session.commit()
        db.engine.dispose()
    return path


def test_lockdown_status_and_lift(config: Path) -> None:
    code, out, _ = run(
        "doors", "lockdown", "--config", str(config), "--site", "oak", "--door", "Front", "--reason", "Drill"
    )
    assert code == 0 and "lockdown" in out and "Front" in out
    code, out, _ = run("doors", "status", "--config", str(config))
    batch, mode, site, doors, _since, by, reason = out.strip().split("\t")
    assert (mode, site, doors, by, reason) == ("lockdown", "oak", "Front", "cli", "Drill")
    code, out, _ = run("doors", "lift", "--config", str(config), batch, "--reason", "Drill over")
    assert code == 0 and "lifted" in out
    code, out, err = run("doors", "status", "--config", str(config))
    assert out == "" and "no lockdown" in err


def test_release_of_the_whole_site_and_refusals(config: Path) -> None:
    code, out, _ = run("doors", "release", "--config", str(config), "--site", "oak", "--reason", "Fire")
    assert code == 0 and "Front" in out and "Back" in out
    code, _, err = run("doors", "lockdown", "--config", str(config), "--site", "oak", "--reason", "  ")
    assert code != 0 and "reason" in err
    code, _, err = run("doors", "lift", "--config", str(config), "nope", "--reason", "x")
    assert code != 0 and "No live" in err
