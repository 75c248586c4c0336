"""The server's SQLite database (from its URL) made private before SQLite opens it; see gatehouse_core.private_files.

SQLite creates a missing database file with the process umask (usually 0644) and gives its -wal, -shm and
-journal files the database file's own mode. So the file is made 0600 before SQLite first opens it, and a
file an older version left readable is closed to other users. PostgreSQL keeps its own files.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url

from gatehouse_core.private_files import private_sqlite_file


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
    if path is not None:
        private_sqlite_file(path)
