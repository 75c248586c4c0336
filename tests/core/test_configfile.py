"""gatehouse_core.configfile / configtypes, validated against the real server and terminal config models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from gatehouse_core.configfile import ConfigError, ConfigProblem, StrictModel, load_config, parse_config
from server.config import ServerConfig
from terminals.config import TerminalConfig

SERVER_TOML = """\
database_url = "sqlite:///gatehouse.db"
key_dir = "keys"

[http]
port = 8443
"""

TERMINAL_TOML = """\
terminal_id = "door-1"
site = "north"
data_dir = "data"
server_public_key = "signing_ed25519.pub.pem"
seal_key_file = "seal.key"
credential_key_file = "credential.key"

[mqtt]
host = "broker.lan"
username = "door-1"
password_file = "secrets/mqtt.pw"
"""


def server_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"database_url": "sqlite:///g.db", "key_dir": "/etc/gatehouse/keys"}
    data.update(overrides)
    return data


def terminal_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "terminal_id": "door-1",
        "site": "north",
        "data_dir": "/var/lib/gatehouse",
        "server_public_key": "/etc/gatehouse/server.pub.pem",
        "seal_key_file": "/etc/gatehouse/seal.key",
        "credential_key_file": "/etc/gatehouse/credential.key",
        "mqtt": {"username": "door-1"},
    }
    data.update(overrides)
    return data


def problems_of(model: type[StrictModel], data: dict[str, Any]) -> dict[str, ConfigProblem]:
    with pytest.raises(ConfigError) as info:
        parse_config(model, data)
    return {p.key: p for p in info.value.problems}


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# ---- loading files -----------------------------------------------------------------------------------------------


def test_load_server_config_applies_values_and_defaults(tmp_path: Path) -> None:
    cfg = load_config(ServerConfig, write(tmp_path / "server.toml", SERVER_TOML))
    assert cfg.database_url == "sqlite:///gatehouse.db"
    assert cfg.http.port == 8443
    assert cfg.http.host == "127.0.0.1"
    assert cfg.http.threads == 8
    assert cfg.mode == "production"
    assert cfg.log_level == "INFO"
    assert cfg.mqtt.port == 1883


def test_relative_paths_resolve_against_the_config_files_directory(tmp_path: Path) -> None:
    path = write(tmp_path / "etc" / "terminal.toml", TERMINAL_TOML)
    cfg = load_config(TerminalConfig, path)
    base = (tmp_path / "etc").resolve()
    assert cfg.data_dir == base / "data"
    assert cfg.server_public_key == base / "signing_ed25519.pub.pem"
    assert cfg.mqtt.password_file == base / "secrets" / "mqtt.pw"


def test_relative_paths_do_not_depend_on_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "etc" / "server.toml", SERVER_TOML)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(tmp_path)
    cfg = load_config(ServerConfig, Path("etc") / "server.toml")
    monkeypatch.chdir(elsewhere)
    assert cfg.key_dir.is_absolute()
    assert cfg.key_dir == (tmp_path / "etc" / "keys").resolve()


def test_absolute_and_home_paths_are_not_rebased(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    text = TERMINAL_TOML.replace('"data"', '"/srv/gatehouse/data"').replace(
        '"signing_ed25519.pub.pem"', '"~/server.pub.pem"'
    )
    cfg = load_config(TerminalConfig, write(tmp_path / "etc" / "terminal.toml", text))
    assert cfg.data_dir == Path("/srv/gatehouse/data")
    assert cfg.server_public_key == tmp_path / "home" / "server.pub.pem"


def test_parse_config_without_base_dir_keeps_relative_paths() -> None:
    cfg = parse_config(ServerConfig, server_data(key_dir="keys"))
    assert cfg.key_dir == Path("keys")


def test_read_password_reads_the_resolved_password_file(tmp_path: Path) -> None:
    write(tmp_path / "secrets" / "mqtt.pw", "s3cret-value\n")
    cfg = load_config(TerminalConfig, write(tmp_path / "terminal.toml", TERMINAL_TOML))
    assert cfg.mqtt.read_password() == "s3cret-value"
    assert parse_config(ServerConfig, server_data()).mqtt.read_password() is None


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_config(ServerConfig, path)
    assert info.value.path == str(path)
    assert [(p.key, p.problem) for p in info.value.problems] == [("(file)", "file not found")]
    assert str(path) in str(info.value)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(ServerConfig, tmp_path)
    assert info.value.problems[0].problem.startswith("cannot read:")


def test_invalid_toml(tmp_path: Path) -> None:
    path = write(tmp_path / "server.toml", 'database_url = "sqlite:///x.db"\nkey_dir = \n')
    with pytest.raises(ConfigError) as info:
        load_config(ServerConfig, path)
    (problem,) = info.value.problems
    assert problem.key == "(file)"
    assert problem.problem.startswith("not valid TOML:")
    assert "line 2" in problem.problem


def test_non_utf8_file(tmp_path: Path) -> None:
    path = write(tmp_path / "server.toml", 'database_url = "sqlite:///caf\xe9.db"\n'.encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        load_config(ServerConfig, path)
    assert [p.problem for p in info.value.problems] == ["not UTF-8 text"]


# ---- validation problems -----------------------------------------------------------------------------------------


def test_unknown_keys_are_rejected_and_named(tmp_path: Path) -> None:
    text = SERVER_TOML + "prot = 1\n" + "\n[mqtt]\nhots = 'broker'\n"
    with pytest.raises(ConfigError) as info:
        load_config(ServerConfig, write(tmp_path / "server.toml", text))
    problems = {p.key: p for p in info.value.problems}
    assert set(problems) == {"http.prot", "mqtt.hots"}
    assert problems["mqtt.hots"].value == "'broker'"
    assert problems["mqtt.hots"].problem.startswith("unknown key")
    report = str(info.value)
    assert report.splitlines()[0] == f"config file {tmp_path / 'server.toml'} is not valid:"
    assert "  mqtt.hots = 'broker': unknown key" in report


@pytest.mark.parametrize("missing", ["database_url", "key_dir"])
def test_missing_required_server_key(missing: str) -> None:
    data = server_data()
    del data[missing]
    problems = problems_of(ServerConfig, data)
    assert set(problems) == {missing}
    assert problems[missing].value == "(missing)"
    assert problems[missing].problem == "required key is missing"


def test_missing_terminal_sections_are_all_reported() -> None:
    data = terminal_data()
    del data["mqtt"], data["site"]
    assert set(problems_of(TerminalConfig, data)) == {"mqtt", "site"}


@pytest.mark.parametrize(
    ("overrides", "key", "fragment"),
    [
        ({"database_url": "mysql://u@h/db"}, "database_url", "use sqlite:///FILE or postgresql+psycopg://"),
        ({"database_url": "postgres://u@h/db"}, "database_url", "use sqlite:///FILE"),
        ({"http": {"port": 0}}, "http.port", "greater than or equal to 1"),
        ({"http": {"port": 65536}}, "http.port", "less than or equal to 65535"),
        ({"http": {"port": "eighty"}}, "http.port", "valid integer"),
        ({"http": {"threads": 65}}, "http.threads", "less than or equal to 64"),
        ({"mqtt": {"port": -1}}, "mqtt.port", "greater than or equal to 1"),
        ({"mqtt": {"keepalive": 4}}, "mqtt.keepalive", "greater than or equal to 5"),
        ({"mode": "staging"}, "mode", "'production' or 'development'"),
        ({"log_level": "debug"}, "log_level", "'DEBUG'"),
    ],
)
def test_invalid_server_values(overrides: dict[str, Any], key: str, fragment: str) -> None:
    problems = problems_of(ServerConfig, server_data(**overrides))
    assert list(problems) == [key]
    assert fragment in problems[key].problem


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://gate@db.lan/gatehouse", "postgresql+psycopg://gate@db.lan/gatehouse"),
        ("postgresql+psycopg://gate@db.lan/gatehouse", "postgresql+psycopg://gate@db.lan/gatehouse"),
        ("sqlite:///var/lib/gatehouse.db", "sqlite:///var/lib/gatehouse.db"),
    ],
)
def test_database_url_scheme(url: str, expected: str) -> None:
    assert parse_config(ServerConfig, server_data(database_url=url)).database_url == expected


@pytest.mark.parametrize("port", [1, 65535])
def test_http_port_edges_accepted(port: int) -> None:
    assert parse_config(ServerConfig, server_data(http={"port": port})).http.port == port


@pytest.mark.parametrize(
    ("overrides", "key", "fragment"),
    [
        ({"mqtt": {"username": "door-2"}}, "mqtt", "mqtt.username must equal terminal_id ('door-1')"),
        ({"terminal_id": "Door-1", "mqtt": {}}, "terminal_id", "must be 1-64 characters"),
        ({"terminal_id": "door/1", "mqtt": {}}, "terminal_id", "must be 1-64 characters"),
        ({"site": "north+"}, "site", "must be 1-64 characters"),
        ({"site": "#"}, "site", "must be 1-64 characters"),
        ({"mqtt": {"username": "door-1", "tls": "maybe"}}, "mqtt.tls", "valid boolean"),
    ],
)
def test_invalid_terminal_values(overrides: dict[str, Any], key: str, fragment: str) -> None:
    problems = problems_of(TerminalConfig, terminal_data(**overrides))
    assert list(problems) == [key]
    assert fragment in problems[key].problem


def test_terminal_without_mqtt_username_is_valid() -> None:
    cfg = parse_config(TerminalConfig, terminal_data(mqtt={"host": "10.0.0.2"}))
    assert cfg.mqtt.username is None
    assert cfg.mqtt.host == "10.0.0.2"


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("mqtt", "password", "hunter2"),
        ("mqtt", "api_token", "tok-123456"),
        ("http", "shared_secret", "s3cr3t"),
        ("http", "private_key", "-----BEGIN"),
    ],
)
def test_secret_values_are_hidden(section: str, key: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(ServerConfig, server_data(**{section: {key: value}}))
    (problem,) = info.value.problems
    assert problem.key == f"{section}.{key}"
    assert problem.value == "(hidden)"
    assert value not in str(info.value)


def test_file_and_dir_keys_are_shown_even_though_they_mention_secrets() -> None:
    problems = problems_of(ServerConfig, server_data(key_dir=5, mqtt={"password_file": 7}))
    assert problems["key_dir"].value == "5"
    assert problems["mqtt.password_file"].value == "7"


def test_secret_inside_an_unknown_table_is_not_echoed() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(ServerConfig, server_data(mqtt={"credentials": {"password": "hunter2"}}))
    assert "hunter2" not in str(info.value)


def test_error_names_source_and_config_problem_formats() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(ServerConfig, server_data(mode="x"), source="/etc/gatehouse/server.toml")
    assert info.value.path == "/etc/gatehouse/server.toml"
    assert str(ConfigProblem("http.port", "0", "too small")) == "http.port = 0: too small"


def test_loaded_config_is_frozen() -> None:
    cfg = parse_config(ServerConfig, server_data())
    with pytest.raises(ValidationError):
        cfg.mode = "development"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        cfg.http.port = 1  # type: ignore[misc]


def test_password_inside_database_url_is_not_echoed() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(ServerConfig, server_data(database_url="mysql://gate:s3cret-pw@db.lan/gh"))
    report = info.value.report()
    assert "s3cret-pw" not in report
    assert "mysql://gate:(hidden)@db.lan/gh" in report
