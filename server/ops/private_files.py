"""Files only the server's own user may read: the SQLite database, its WAL and SHM files, and their folder.

SQLite creates a missing database file with the process umask (usually 0644) and gives its -wal, -shm and
-journal files the database file's own mode. So the file is made 0600 before SQLite first opens it, and a
file an older version left readable is closed to other users. PostgreSQL keeps its own files.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sqlalchemy.engine import make_url

SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def private_dir(path: Path) -> None:
    """Create a missing folder 0700 (its missing parents as usual); an existing folder is left as it is."""
    if not path.is_dir():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.chmod(0o700)


def private_file(path: Path) -> None:
    """Create a missing file empty with mode 0600; take group and other access from an existing one."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) & 0o077:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def sqlite_path(database_url: str) -> Path | None:
    """The database file of a `sqlite:///FILE` URL; None for PostgreSQL and in-memory SQLite."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    if url.database.startswith("file:") or url.query.get("mode") == "memory":
        return None
    return Path(url.database)


def private_sqlite(database_url: str) -> None:
    """Before SQLite opens it: the database's folder 0700 if missing, the file and its side files 0600."""
    path = sqlite_path(database_url)
    if path is None:
        return
    private_dir(path.parent)
    private_file(path)
    for suffix in SQLITE_SIDE_FILES:
        side = Path(f"{path}{suffix}")
        if side.exists():
            private_file(side)
