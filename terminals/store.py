"""The terminal's local SQLite store: roster, applied sequence, event outbox and erasure outbox.

Every change is one SQLite transaction (WAL, synchronous=FULL), so a terminal killed at any moment
restarts with either all or none of a message applied. A snapshot is written into a staging table
beside the live roster and swapped in with one rename, so there is no moment without a roster.
Face templates and app-code seeds stay sealed with the terminal's key inside the stored records. The
database and its WAL/SHM files are 0600 in a data folder created 0700: no other local user reads them.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from pydantic import TypeAdapter

from gatehouse_core.private_files import private_sqlite_file
from gatehouse_core.wire.base import decode, encode
from gatehouse_core.wire.messages import Erased, EventRecord
from gatehouse_core.wire.records import PassRecord, PersonRecord, Record, Removal, fingerprint, roster_hash

_RECORDS = """
CREATE TABLE IF NOT EXISTS {name} (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    body TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    templates TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (kind, key)
) WITHOUT ROWID;
"""
# What a presented credential is looked up by: (card | id_document, keyed hash), (pass_code, keyed
# hash) or (app_code, credential id), pointing at the person or pass record that holds it.
_LOOKUPS = """
CREATE TABLE IF NOT EXISTS {name} (
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    record_key TEXT NOT NULL,
    PRIMARY KEY (kind, value, record_key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS {name}_by_record ON {name} (record_key);
"""
_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS event_outbox (uid TEXT PRIMARY KEY, body TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS erasure_outbox (kind TEXT NOT NULL, ref TEXT NOT NULL, PRIMARY KEY (kind, ref));
-- Credentials that were held and are no longer (revoked, moved out, pass ended): refused as such.
CREATE TABLE IF NOT EXISTS withdrawn (kind TEXT NOT NULL, value TEXT NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (kind, value)) WITHOUT ROWID;
-- Replay cache: entries this terminal granted on visitor passes, until the server has counted them.
CREATE TABLE IF NOT EXISTS pass_uses (event_uid TEXT PRIMARY KEY, pass_id INTEGER NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS pass_uses_by_pass ON pass_uses (pass_id);
-- Replay cache: app codes (credential, time step) already used here.
CREATE TABLE IF NOT EXISTS code_uses (credential INTEGER NOT NULL, step INTEGER NOT NULL,
    PRIMARY KEY (credential, step)) WITHOUT ROWID;
-- When each held credential (a lookup key, or ('template', id)) arrived; 0 = held before times were kept.
-- Past the offline bound only credentials received long enough before the last contact open (offline_bound.py).
CREATE TABLE IF NOT EXISTS received (kind TEXT NOT NULL, value TEXT NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (kind, value)) WITHOUT ROWID;
"""
    + _RECORDS.format(name="records")
    + _RECORDS.format(name="staging")
    + _LOOKUPS.format(name="lookups")
    + _LOOKUPS.format(name="staging_lookups")
)
_LOOKUP_TABLE = {"records": "lookups", "staging": "staging_lookups"}
STORE_VERSION = "2"
WITHDRAWN_KEEP_SECONDS = 400 * 86400  # a credential withdrawn over a year ago is simply unknown
# The last contact is written at most this often (each write is an fsync); a restart may lose that much of it,
# which only brings the offline bound nearer.
CONTACT_WRITE_INTERVAL = 60.0


_RECORD: TypeAdapter[Record] = TypeAdapter(Record)


def _template_ids(record: Record) -> str:
    return " ".join(str(t.id) for t in record.templates) if isinstance(record, PersonRecord) else ""


def lookup_keys(record: Record) -> set[tuple[str, str]]:
    """What a record can be found by when a credential is presented."""
    if isinstance(record, PersonRecord):
        keys = set()
        for credential in record.credentials:
            if credential.kind == "app_code":
                keys.add(("app_code", str(credential.id)))
            elif credential.hash is not None:
                keys.add((credential.kind, credential.hash))
        return keys
    if isinstance(record, PassRecord):
        return {("pass_code", record.code_hash), ("pass_id", str(record.id))}
    return set()


class TerminalStore:
    """Durable terminal state; used from the terminal's one loop thread only."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        if read_only:
            # For inspection beside a running terminal (tools, tests): never writes, never resets staging.
            self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
            self._read_contact()
            return
        private_sqlite_file(path)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        # A snapshot interrupted by a restart is started again from its first part.
        self._db.execute("DELETE FROM staging")
        self._db.execute("DELETE FROM staging_lookups")
        if self._meta("store_version") != STORE_VERSION:
            self._upgrade()
        if self._meta("received_kept") is None:
            self._keep_received()
        self._read_contact()

    def _read_contact(self) -> None:
        contact = self._meta("last_contact")
        self._last_contact = None if contact is None else float(contact)
        self._contact_written = self._last_contact or 0.0

    def _upgrade(self) -> None:
        """Index a roster written before credentials were looked up through the lookups table."""
        with self._transaction() as db:
            db.execute("DELETE FROM lookups")
            for kind, key, body in db.execute("SELECT kind, key, body FROM records").fetchall():
                self._index(db, "lookups", kind, key, lookup_keys(_RECORD.validate_json(body)))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('store_version', ?)", (STORE_VERSION,))

    def _keep_received(self) -> None:
        """Start keeping received times: what is held already counts as held from before (time 0)."""
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO received SELECT kind, value, 0 FROM lookups")
            db.executemany(
                "INSERT OR IGNORE INTO received VALUES ('template', ?, 0)",
                [(t,) for t in self._templates(db, "records")],
            )
            db.execute("INSERT OR REPLACE INTO meta VALUES ('received_kept', '1')")

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # ---- sequence and hash -------------------------------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def applied_seq(self) -> int:
        """Highest journal sequence number applied."""
        return int(self._meta("applied_seq") or 0)

    def last_snapshot(self) -> str | None:
        """Id of the last snapshot swapped in (a replay of it is ignored)."""
        return self._meta("snapshot_id")

    def roster_hash(self, table: str = "records") -> str:
        """Hash over the held roster, computed the same way as on the server."""
        return roster_hash(self._db.execute(f"SELECT kind, key, fingerprint FROM {table}"))  # noqa: S608 - fixed names  # nosec B608

    # ---- applying deltas ---------------------------------------------------------------------------------

    def apply(self, removals: Sequence[Removal], records: Sequence[Record], applied_seq: int | None) -> list[Erased]:
        """Apply one delta part (removals first) in one transaction; returns what was erased."""
        with self._transaction() as db:
            erased = self._apply_into(db, "records", removals, records)
            self._queue_erasures(db, erased)
            if applied_seq is not None:
                db.execute("INSERT OR REPLACE INTO meta VALUES ('applied_seq', ?)", (str(applied_seq),))
        return erased

    @staticmethod
    def _index(db: sqlite3.Connection, table: str, kind: str, key: str, keys: Iterable[tuple[str, str]]) -> None:
        db.executemany(
            f"INSERT OR REPLACE INTO {table} VALUES (?, ?, ?)",  # noqa: S608 - fixed names
            [(k, v, f"{kind}:{key}") for k, v in keys],
        )

    @staticmethod
    def _unindex(db: sqlite3.Connection, table: str, kind: str, key: str) -> set[tuple[str, str]]:
        rows = db.execute(
            f"DELETE FROM {table} WHERE record_key = ? RETURNING kind, value",  # noqa: S608 - fixed names  # nosec B608
            (f"{kind}:{key}",),
        )
        return {(k, v) for k, v in rows}

    @classmethod
    def _reindex(cls, db: sqlite3.Connection, table: str, kind: str, key: str, keys: set[tuple[str, str]]) -> None:
        """Point the record's lookups at `keys`; in the live roster, remember what stopped being held."""
        lookups = _LOOKUP_TABLE[table]
        old = cls._unindex(db, lookups, kind, key)
        cls._index(db, lookups, kind, key, keys)
        if table != "records":
            return
        now = time.time()
        db.executemany("INSERT OR REPLACE INTO withdrawn VALUES (?, ?, ?)", [(k, v, now) for k, v in old - keys])
        db.executemany("DELETE FROM withdrawn WHERE kind = ? AND value = ?", list(keys - old))
        cls._received(db, keys - old, old - keys, now)

    @staticmethod
    def _received(
        db: sqlite3.Connection, added: Iterable[tuple[str, str]], dropped: Iterable[tuple[str, str]], now: float
    ) -> None:
        """Note when credentials arrived in the live roster; forget those no longer held."""
        db.executemany("INSERT OR IGNORE INTO received VALUES (?, ?, ?)", [(k, v, now) for k, v in added])
        db.executemany("DELETE FROM received WHERE kind = ? AND value = ?", list(dropped))

    @classmethod
    def _apply_into(
        cls, db: sqlite3.Connection, table: str, removals: Iterable[Removal], records: Iterable[Record]
    ) -> list[Erased]:
        erased: list[Erased] = []
        for removal in removals:
            row = db.execute(
                f"DELETE FROM {table} WHERE kind = ? AND key = ? RETURNING templates",  # noqa: S608 - fixed names  # nosec B608
                (removal.kind, removal.key),
            ).fetchone()
            cls._reindex(db, table, removal.kind, removal.key, set())
            if removal.kind == "pass" and table == "records":
                db.execute("DELETE FROM pass_uses WHERE pass_id = ?", (int(removal.key),))
            if row is not None and removal.kind == "person":
                erased.append(Erased(kind="person", ref=removal.key))
                erased += [Erased(kind="template", ref=t) for t in row[0].split()]
                if table == "records":
                    cls._received(db, (), [("template", t) for t in row[0].split()], time.time())
        for record in records:
            new_templates = _template_ids(record)
            if isinstance(record, PersonRecord):
                row = db.execute(
                    f"SELECT templates FROM {table} WHERE kind = 'person' AND key = ?",  # noqa: S608 - fixed names  # nosec B608
                    (record.key,),
                ).fetchone()
                if row is not None:
                    gone = set(row[0].split()) - set(new_templates.split())
                    erased += [Erased(kind="template", ref=t) for t in sorted(gone, key=int)]
                if table == "records":
                    held = set() if row is None else set(row[0].split())
                    new = set(new_templates.split())
                    cls._received(
                        db, [("template", t) for t in new - held], [("template", t) for t in held - new], time.time()
                    )
            db.execute(
                f"INSERT OR REPLACE INTO {table} VALUES (?, ?, ?, ?, ?)",  # noqa: S608
                (record.kind, record.key, record.model_dump_json(), fingerprint(record), new_templates),
            )
            cls._reindex(db, table, record.kind, record.key, lookup_keys(record))
        return erased

    @staticmethod
    def _queue_erasures(db: sqlite3.Connection, erased: Sequence[Erased]) -> None:
        db.executemany("INSERT OR IGNORE INTO erasure_outbox VALUES (?, ?)", [(e.kind, e.ref) for e in erased])

    # ---- snapshots ---------------------------------------------------------------------------------------

    def stage_reset(self) -> None:
        """Start a new snapshot: empty the staging tables."""
        with self._transaction() as db:
            db.execute("DELETE FROM staging")
            db.execute("DELETE FROM staging_lookups")

    def stage(self, records: Sequence[Record]) -> None:
        """Add one snapshot part to the staging table."""
        with self._transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO staging VALUES (?, ?, ?, ?, ?)",
                [(r.kind, r.key, r.model_dump_json(), fingerprint(r), _template_ids(r)) for r in records],
            )
            db.executemany(
                "INSERT OR REPLACE INTO staging_lookups VALUES (?, ?, ?)",
                [(k, v, f"{r.kind}:{r.key}") for r in records for k, v in lookup_keys(r)],
            )

    def swap_in(self, snapshot_id: str, seq: int, expected_hash: str) -> list[Erased] | None:
        """Make the staged roster live if it hashes as the server said; returns erasures, or None on mismatch."""
        if self.roster_hash("staging") != expected_hash:
            self.stage_reset()
            return None
        with self._transaction() as db:
            erased = [
                Erased(kind="person", ref=key)
                for (key,) in db.execute(
                    "SELECT key FROM records WHERE kind = 'person' EXCEPT SELECT key FROM staging WHERE kind = 'person'"
                )
            ]
            held = {
                t for (ts,) in db.execute("SELECT templates FROM records WHERE templates != ''") for t in ts.split()
            }
            kept = {
                t for (ts,) in db.execute("SELECT templates FROM staging WHERE templates != ''") for t in ts.split()
            }
            erased += [Erased(kind="template", ref=t) for t in sorted(held - kept, key=int)]
            now = time.time()
            db.execute(
                "INSERT OR REPLACE INTO withdrawn SELECT kind, value, ? FROM"
                " (SELECT kind, value FROM lookups EXCEPT SELECT kind, value FROM staging_lookups)",
                (now,),
            )
            db.execute("DELETE FROM withdrawn WHERE (kind, value) IN (SELECT kind, value FROM staging_lookups)")
            # Credentials the snapshot still holds keep their received time; new ones arrive now.
            db.execute("INSERT OR IGNORE INTO received SELECT kind, value, ? FROM staging_lookups", (now,))
            db.execute(
                "DELETE FROM received WHERE kind != 'template'"
                " AND (kind, value) NOT IN (SELECT kind, value FROM staging_lookups)"
            )
            self._received(db, [("template", t) for t in kept - held], [("template", t) for t in held - kept], now)
            for live, staged in (("records", "staging"), ("lookups", "staging_lookups")):
                db.execute(f"ALTER TABLE {live} RENAME TO retired")
                db.execute(f"ALTER TABLE {staged} RENAME TO {live}")
                db.execute(f"ALTER TABLE retired RENAME TO {staged}")
                db.execute(f"DELETE FROM {staged}")  # noqa: S608 - fixed names  # nosec B608
            self._queue_erasures(db, erased)
            db.executemany(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)", [("applied_seq", str(seq)), ("snapshot_id", snapshot_id)]
            )
        return erased

    @staticmethod
    def _templates(db: sqlite3.Connection, table: str) -> set[str]:
        rows = db.execute(f"SELECT templates FROM {table} WHERE templates != ''")  # noqa: S608 - fixed names  # nosec B608
        return {t for (ids,) in rows for t in ids.split()}

    # ---- reading the roster ------------------------------------------------------------------------------

    def records(self, kind: str) -> list[Record]:
        """All held records of one kind."""
        return list(self.iter_records(kind))

    def iter_records(self, kind: str) -> Iterator[Record]:
        """The held records of one kind, parsed one at a time (a whole roster never sits in memory)."""
        for (body,) in self._db.execute("SELECT body FROM records WHERE kind = ? ORDER BY key", (kind,)):
            yield _RECORD.validate_json(body)

    def record(self, kind: str, key: str) -> Record | None:
        """One held record."""
        row = self._db.execute("SELECT body FROM records WHERE kind = ? AND key = ?", (kind, key)).fetchone()
        return None if row is None else _RECORD.validate_json(row[0])

    def count(self, kind: str) -> int:
        """Number of held records of one kind."""
        return int(self._db.execute("SELECT count(*) FROM records WHERE kind = ?", (kind,)).fetchone()[0])

    # ---- deciding ----------------------------------------------------------------------------------------

    def find(self, kind: str, value: str) -> list[str]:
        """Keys ("person:p-…", "pass:12") of held records that a presented credential points at."""
        return [
            k for (k,) in self._db.execute("SELECT record_key FROM lookups WHERE kind = ? AND value = ?", (kind, value))
        ]

    def record_keys_with(self, kind: str) -> list[str]:
        """Keys of held records that hold a credential of `kind`."""
        rows = self._db.execute("SELECT DISTINCT record_key FROM lookups WHERE kind = ?", (kind,))
        return [k for (k,) in rows]

    def was_withdrawn(self, kind: str, value: str) -> bool:
        """Whether this credential was held and has since been withdrawn (revoked, moved out, pass ended)."""
        row = self._db.execute("SELECT at FROM withdrawn WHERE kind = ? AND value = ?", (kind, value)).fetchone()
        return row is not None and time.time() - row[0] < WITHDRAWN_KEEP_SECONDS

    def person(self, pseudonym: str) -> PersonRecord | None:
        """A held person."""
        record = self.record("person", pseudonym)
        return record if isinstance(record, PersonRecord) else None

    def visitor_pass(self, pass_id: int) -> PassRecord | None:
        """A held visitor pass."""
        record = self.record("pass", str(pass_id))
        return record if isinstance(record, PassRecord) else None

    def local_pass_uses(self, pass_id: int) -> set[str]:
        """Event uids of entries this terminal granted on a pass (its replay cache)."""
        return {u for (u,) in self._db.execute("SELECT event_uid FROM pass_uses WHERE pass_id = ?", (pass_id,))}

    def code_used(self, credential: int, step: int) -> bool:
        """Whether an app code (credential, time step) was already used here."""
        row = self._db.execute("SELECT 1 FROM code_uses WHERE credential = ? AND step = ?", (credential, step))
        return row.fetchone() is not None

    def record_decision(
        self, event: EventRecord, *, pass_use: int | None = None, code_use: tuple[int, int] | None = None
    ) -> None:
        """Keep a decision's event for the server and, for a granted pass or app code, its use, atomically."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO event_outbox VALUES (?, ?, ?)", (event.uid, encode(event).decode(), time.time())
            )
            if pass_use is not None:
                db.execute("INSERT OR IGNORE INTO pass_uses VALUES (?, ?, ?)", (event.uid, pass_use, time.time()))
            if code_use is not None:
                credential, step = code_use
                db.execute("INSERT OR IGNORE INTO code_uses VALUES (?, ?)", (credential, step))
                db.execute("DELETE FROM code_uses WHERE step < ?", (step - 10,))

    def state(self, key: str) -> str | None:
        """A small piece of the terminal's own state (e.g. the keypad lockout), kept across restarts."""
        return self._meta(f"state:{key}")

    def set_state(self, key: str, value: str) -> None:
        """Keep a piece of the terminal's own state."""
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (f"state:{key}", value))

    # ---- the offline bound -------------------------------------------------------------------------------

    def last_contact(self) -> datetime | None:
        """When the terminal last heard from the server (None: never), kept across restarts."""
        return None if self._last_contact is None else datetime.fromtimestamp(self._last_contact, UTC)

    def heard_from_server(self, at: float | None = None) -> None:
        """Note a fresh, signed message from the server (written at most every CONTACT_WRITE_INTERVAL)."""
        at = time.time() if at is None else at
        self._last_contact = max(at, self._last_contact or 0.0)
        if self._last_contact - self._contact_written >= CONTACT_WRITE_INTERVAL or self._contact_written == 0.0:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('last_contact', ?)", (repr(self._last_contact),))
            self._contact_written = self._last_contact

    def received_at(self, kind: str, value: str) -> datetime | None:
        """When a held credential arrived (None if unknown or held from before received times were kept)."""
        row = self._db.execute("SELECT at FROM received WHERE kind = ? AND value = ?", (kind, value)).fetchone()
        return None if row is None or row[0] <= 0 else datetime.fromtimestamp(row[0], UTC)

    def holds_events(self, uids: Iterable[str]) -> bool:
        """Whether any of these events is still in the outbox (a receipt naming one is fresh)."""
        return any(
            self._db.execute("SELECT 1 FROM event_outbox WHERE uid = ?", (uid,)).fetchone() is not None for uid in uids
        )

    # ---- outboxes ----------------------------------------------------------------------------------------

    def add_events(self, events: Sequence[EventRecord]) -> None:
        """Keep events until the server's receipt names them."""
        with self._transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO event_outbox VALUES (?, ?, ?)",
                [(e.uid, encode(e).decode(), time.time()) for e in events],
            )

    def pending_events(self, limit: int, exclude: Iterable[str] = ()) -> list[EventRecord]:
        """Oldest undelivered events, skipping those already in flight."""
        skip = set(exclude)
        out: list[EventRecord] = []
        for (body,) in self._db.execute("SELECT body FROM event_outbox ORDER BY created, uid"):
            event = decode(EventRecord, body.encode())
            if event.uid not in skip:
                out.append(event)
                if len(out) >= limit:
                    break
        return out

    def event_count(self) -> int:
        """Events not yet receipted."""
        return int(self._db.execute("SELECT count(*) FROM event_outbox").fetchone()[0])

    def purge_events(self, uids: Iterable[str]) -> None:
        """Drop events the server has receipted."""
        with self._transaction() as db:
            db.executemany("DELETE FROM event_outbox WHERE uid = ?", [(u,) for u in uids])

    def pending_erasures(self) -> list[Erased]:
        """Erasures not yet confirmed by the server."""
        return [Erased(kind=k, ref=r) for k, r in self._db.execute("SELECT kind, ref FROM erasure_outbox")]

    def purge_erasures(self, erased: Iterable[Erased]) -> None:
        """Drop erasure acknowledgements the server has recorded."""
        with self._transaction() as db:
            db.executemany("DELETE FROM erasure_outbox WHERE kind = ? AND ref = ?", [(e.kind, e.ref) for e in erased])
