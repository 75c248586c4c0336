"""The terminal's local SQLite store: what it has applied, so it survives restarts and works offline."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS roster (
    pseudonym TEXT PRIMARY KEY,
    payload TEXT NOT NULL
);
"""


class TerminalStore:
    """Durable terminal state; every write is one SQLite transaction."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def applied_seq(self) -> int:
        """Highest journal sequence number applied."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'applied_seq'").fetchone()
        return int(row[0]) if row else 0

    def roster_hash(self) -> str:
        """SHA-256 over the roster in a canonical order; equal on server and terminal when in sync."""
        digest = hashlib.sha256()
        for pseudonym, payload in self._db.execute("SELECT pseudonym, payload FROM roster ORDER BY pseudonym"):
            digest.update(pseudonym.encode())
            digest.update(b"\0")
            digest.update(payload.encode())
            digest.update(b"\n")
        return digest.hexdigest()
