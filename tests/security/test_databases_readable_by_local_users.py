"""Attack: a local user on the server or a door terminal reads the databases (names, phones, units, dates of
birth; a terminal's roster and events) because they were created 0644 in 0755 folders.

Each test runs the real code that first creates the files, under a permissive umask (022), then checks the
modes on disk: data directories 0700, database files 0600, and SQLite's -wal and -shm files 0600 too.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from server.cli.main import main
from terminals.store import TerminalStore

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def assert_private(db: Path, *, made_dir: bool = True) -> None:
    """The database and its WAL/SHM files are 0600; the folder that holds them is 0700 if the code made it."""
    if made_dir:
        assert mode(db.parent) == 0o700, f"{db.parent} is {oct(mode(db.parent))}"
    # A writer in WAL mode, as the programs open it, makes the -wal and -shm files: SQLite gives them the
    # database file's own mode.
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE IF NOT EXISTS probe (x)")
        conn.execute("INSERT INTO probe VALUES (1)")
        conn.commit()
        for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
            assert path.exists(), path
            assert mode(path) == 0o600, f"{path.name} is {oct(mode(path))}"
    conn.close()


def test_terminal_store_is_private_on_first_start(tmp_path: Path) -> None:
    db = tmp_path / "var" / "gatehouse-terminal" / "terminal.db"
    store = TerminalStore(db)
    try:
        store.set_state("probe", "1")
        for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
            assert mode(path) == 0o600, f"{path.name} is {oct(mode(path))}"
        assert mode(db.parent) == 0o700
    finally:
        store.close()
    assert_private(db)


def test_terminal_store_left_readable_by_an_older_version_is_closed_on_start(tmp_path: Path) -> None:
    db = tmp_path / "terminal.db"
    TerminalStore(db).close()
    db.chmod(0o644)
    TerminalStore(db).close()
    assert mode(db) == 0o600


def _server_toml(tmp_path: Path, db: Path) -> Path:
    config = tmp_path / "server.toml"
    config.write_text(f'mode = "production"\ndatabase_url = "sqlite:///{db}"\nkey_dir = "keys"\n')
    return config


@pytest.mark.parametrize("folder", ["missing", "existing 0755"])
def test_server_sqlite_database_is_private_when_db_upgrade_creates_it(tmp_path: Path, folder: str) -> None:
    db = tmp_path / "var" / "lib" / "gatehouse" / "gatehouse.db"
    if folder != "missing":
        db.parent.mkdir(parents=True)  # an operator's /var/lib/gatehouse: left as it is, the files are closed
    config = _server_toml(tmp_path, db)
    runner = CliRunner()
    for args in (["keys", "init", "--config", str(config)], ["db", "upgrade", "--config", str(config)]):
        result = runner.invoke(main, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
    assert_private(db, made_dir=folder == "missing")


def test_demo_data_dir_is_private(tmp_path: Path) -> None:
    from server.ops.demo import prepare

    data_dir = tmp_path / "demo"
    prepare(data_dir, http_port=18080, mqtt_port=11883, api_port=18090)
    assert mode(data_dir) == 0o700
    assert_private(data_dir / "gatehouse.db")
