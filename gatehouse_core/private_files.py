"""Files only the program's own user may read: SQLite databases (with their -wal, -shm and -journal files) and folders.

SQLite creates a missing database file with the process umask (usually 0644) and gives its side files the database
file's own mode. So the file is made 0600 before SQLite first opens it, and a file an older version left readable is
closed to other local users. Server and terminals both keep people's data in SQLite; PostgreSQL keeps its own files.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

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


def private_sqlite_file(path: Path) -> None:
    """Before SQLite opens `path`: its folder 0700 if missing, the file and any side files 0600."""
    private_dir(path.parent)
    private_file(path)
    for suffix in SQLITE_SIDE_FILES:
        side = Path(f"{path}{suffix}")
        if side.exists():
            private_file(side)
