"""The gatehouse command: --check-config on every program, key setup, and production refusals."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from server.cli.main import main


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture
def server_toml(tmp_path: Path, key_dir: Path) -> Path:
    path = tmp_path / "server.toml"
    path.write_text(
        f'mode = "production"\ndatabase_url = "sqlite:///{tmp_path / "gh.db"}"\nkey_dir = "{key_dir}"\n'
        "[http]\nport = 8099\n"
    )
    return path


PROGRAMS = [("server", "run"), ("server", "worker"), ("terminal", "run"), ("mobile-api", "run")]


@pytest.mark.parametrize("program", PROGRAMS)
def test_check_config_reports_key_value_and_problem(tmp_path, program):
    section = "http" if program[0] == "mobile-api" else "mqtt"  # the mobile API holds no MQTT client
    bad = tmp_path / "bad.toml"
    bad.write_text(f'log_level = "LOUD"\ncolour = "blue"\n[{section}]\nport = 70000\n')
    code, output = run(*program, "--config", str(bad), "--check-config")
    assert code == 2
    assert "log_level = 'LOUD'" in output and "Input should be" in output
    assert "colour = 'blue': unknown key" in output
    assert f"{section}.port = 70000" in output and "less than or equal to 65535" in output
    assert "required key is missing" in output


@pytest.mark.parametrize("program", PROGRAMS)
def test_broken_toml_and_missing_file_are_reported(tmp_path, program):
    broken = tmp_path / "broken.toml"
    broken.write_text("mode = \n")
    code, output = run(*program, "--config", str(broken), "--check-config")
    assert code == 2 and "not valid TOML" in output
    code, output = run(*program, "--config", str(tmp_path / "absent.toml"), "--check-config")
    assert code == 2 and "file not found" in output


def test_valid_server_config_passes_check(server_toml):
    code, output = run("server", "run", "--config", str(server_toml), "--check-config")
    assert code == 0 and "is valid" in output


def test_valid_terminal_config_passes_check(tmp_path):
    path = tmp_path / "terminal.toml"
    path.write_text(
        'terminal_id = "t-1"\nsite = "demo"\ndata_dir = "data"\nserver_public_key = "key.pem"\n'
        'seal_key_file = "seal.key"\ncredential_key_file = "credential.key"\n'
        '[mqtt]\nhost = "broker.lan"\nport = 8883\ntls = true\nusername = "t-1"\n'
    )
    code, output = run("terminal", "run", "--config", str(path), "--check-config")
    assert code == 0, output


def test_passwords_in_bad_config_are_not_echoed(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text(
        'terminal_id = "T 1"\nsite = "x"\ndata_dir = "d"\nserver_public_key = "k"\n'
        '[mqtt]\npassword = "hunter2-secret"\n'
    )
    code, output = run("terminal", "run", "--config", str(path), "--check-config")
    assert code == 2
    assert "hunter2-secret" not in output and "mqtt.password = (hidden)" in output


def test_production_refuses_to_start_without_keys(tmp_path):
    path = tmp_path / "server.toml"
    path.write_text(f'database_url = "sqlite:///{tmp_path / "x.db"}"\nkey_dir = "no-keys-here"\n')
    code, output = run("server", "run", "--config", str(path))
    assert code == 2
    assert "does not exist" in output and "gatehouse keys init" in output
    assert not (tmp_path / "no-keys-here").exists()  # never falls back to generating keys


def test_production_refuses_an_empty_database_then_a_missing_admin(server_toml, tmp_path):
    code, output = run("server", "run", "--config", str(server_toml))
    assert code == 2 and "gatehouse db upgrade" in output
    assert run("db", "upgrade", "--config", str(server_toml))[0] == 0
    code, output = run("server", "run", "--config", str(server_toml))
    assert code == 2 and "needs an admin user" in output and "gatehouse users create" in output


def test_keys_init_writes_private_files(tmp_path):
    key_dir = tmp_path / "keys"
    code, output = run("keys", "init", "--key-dir", str(key_dir))
    assert code == 0 and "signing_ed25519.pem" in output
    for name in ("signing_ed25519.pem", "credential_hmac.key", "template_aes256.key", "session_secret.key"):
        assert stat.S_IMODE((key_dir / name).stat().st_mode) == 0o600
    assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700
    before = (key_dir / "credential_hmac.key").read_bytes()
    code, output = run("keys", "init", "--key-dir", str(key_dir))
    assert "nothing changed" in output and (key_dir / "credential_hmac.key").read_bytes() == before


def terminal_add(server_toml: Path, door: str, out_dir: Path) -> tuple[int, str]:
    return run(
        "terminal",
        "add",
        "--config",
        str(server_toml),
        "--site",
        "oak",
        "--name",
        "Gate",
        "--door",
        door,
        "--out-dir",
        str(out_dir),
    )


def test_site_user_and_terminal_provisioning(server_toml, tmp_path):
    assert run("db", "upgrade", "--config", str(server_toml))[0] == 0
    code, output = run("users", "create", "--config", str(server_toml), "--username", "admin", "--role", "admin")
    assert code == 0 and "password (shown once):" in output
    assert run("site", "create", "--config", str(server_toml), "--code", "oak", "--name", "Oak Park")[0] == 0
    code, output = run("site", "create", "--config", str(server_toml), "--code", "Oak Park", "--name", "x")
    assert code == 2 and "site code" in output
    code, output = terminal_add(server_toml, "Nope", tmp_path / "t")
    assert code == 2 and "no door named Nope" in output
    # The terminal directory produced by `terminal add` passes its own check.
    from server.app import create_app
    from server.config import load_server_config
    from server.extensions import db
    from server.services.access import sites
    from server.services.audit import Actor

    app = create_app(load_server_config(server_toml))
    with app.app_context():
        sites.save_door(db.session, Actor("t"), sites.get_site(db.session, "oak"), "Main", sites.DoorMethods())
        db.session.commit()
        db.engine.dispose()
    out = tmp_path / "t"
    code, output = terminal_add(server_toml, "Main", out)
    assert code == 0, output
    assert stat.S_IMODE((out / "mqtt_password").stat().st_mode) == 0o600
    assert run("terminal", "run", "--config", str(out / "terminal.toml"), "--check-config")[0] == 0
    code, output = run("server", "run", "--config", str(server_toml), "--check-config")
    assert code == 0
