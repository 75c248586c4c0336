"""Bulk seeding for the console benchmark: sites, doors, terminals, groups, people and a season of events.

Rows go straight through the DB-API (executemany on SQLite, COPY on PostgreSQL) in large batches: the ORM
and the services would take an hour for a million events. Values are written in each backend's native
form, exactly as SQLAlchemy stores them (naive UTC datetimes; on SQLite the text form with microseconds),
so the console's queries compare and sort them as they would real data. Every table is created by the
Alembic migrations, so the benchmark measures the indexes a real install has. The daily event counts are then
filled by the same recount the migration that added them runs.
"""

from __future__ import annotations

import json
import random
import secrets
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from server.models import Person
from server.services.reports import day_counts

BATCH = 50_000
DAYS = 90
MODEL_ID = "bench-face-v1"


def _words(text: str) -> list[str]:
    """Space-separated names (column lists, name parts) as a list."""
    return text.split()


_FAMILY = _words(
    "Wang Li Zhang Liu Chen Yang Zhao Huang Zhou Wu Xu Sun Hu Zhu Gao Lin He Guo Ma Luo Liang Song Zheng Xie Han Tang "
    "Feng Yu Dong Xiao Cheng Cao Yuan Deng Xu Fu Shen Zeng Peng Lu Su Jiang Cai Jia Ding Wei Xue Ye Yan Pan Du Dai "
    "Xia Zhong Tian Ren Fan Fang Shi Yao Tan Liao Zou Xiong Jin Hao Kong Bai Cui Kang Mao Qiu Qin Gu Hou Shao Meng "
    "Long Wan Duan Lei Qian Tang Yin Li Yi Chang Wu Qiao He Lai Gong Wen Smith Brown Garcia Muller Rossi Kim Nguyen"
)
_GIVEN = _words(
    "Wei Fang Min Jun Lei Hui Ying Tao Jing Hao Yan Qiang Xiu Ping Gang Yong Jie Juan Tao Ming Chao Xia Hong Hua "
    "Yu Dan Lan Bo Ning Kai Rui Xin Yi Chen Hao Yue Zihan Haoran Yuxuan Zimo Xinyi Yutong Shuang Tingting Jiahui "
    "Meiling Guoqiang Jianguo Lihua Xiaoming Xiaoyan Junjie Wenjing Anna David Maria James Sofia Daniel Emma"
)
_AUDIT_ACTIONS = (
    "person.update",
    "credential.add_card",
    "credential.revoke",
    "access.add_member",
    "access.remove_member",
    "pass.issue",
    "door.save",
    "user.login",
    "consent.record",
    "consent.withdraw",
)
# Methods, decisions and reasons in proportions a busy residential site sees.
_METHODS = ("card",) * 12 + ("face",) * 3 + ("app_code",) * 3 + ("id_document",) + ("visitor_code",)
# The terminals' own reason codes (terminals/decision.py Reason): a refusal's, a grant's and a keypad lockout's.
_DENY_REASONS = ("unknown", "outside_schedule", "wrong_door", "revoked", "expired")
_GRANTED = "granted"
_ALARM = "brute_force"


@dataclass
class SeedCounts:
    """What the seeder wrote."""

    rows: dict[str, int] = field(default_factory=dict)

    def add(self, table: str, n: int) -> None:
        self.rows[table] = self.rows.get(table, 0) + n


class Writer:
    """Writes tuples into a table in batches, by executemany (SQLite) or COPY (PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self.postgres = engine.dialect.name == "postgresql"
        self.raw = engine.raw_connection()
        self.cursor: Any = self.raw.cursor()
        self._pragmas: list[tuple[str, Any]] = []
        if not self.postgres:
            for name in ("synchronous", "cache_size"):
                self._pragmas.append((name, self.cursor.execute(f"PRAGMA {name}").fetchone()[0]))
            # Seeding only (restored in finish): a crash mid-seed just means seeding again.
            self.cursor.execute("PRAGMA synchronous=OFF")
            self.cursor.execute("PRAGMA cache_size=-200000")
        self.counts = SeedCounts()

    def when(self, value: datetime | None) -> Any:
        """A UTC datetime as the UTCDateTime column stores it."""
        if value is None:
            return None
        naive = value.astimezone(UTC).replace(tzinfo=None)
        return naive if self.postgres else naive.strftime("%Y-%m-%d %H:%M:%S.%f")

    def day(self, value: date | None) -> Any:
        """A date as the Date column stores it."""
        if value is None or self.postgres:
            return value
        return value.isoformat()

    def write(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        """Insert every row; returns how many."""
        names = ", ".join(columns)
        total = 0
        for batch in _batches(rows, BATCH):
            if self.postgres:
                with self.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                    for row in batch:
                        copy.write_row(row)
            else:
                marks = ", ".join("?" for _ in columns)
                self.cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", batch)  # noqa: S608
            self.raw.commit()
            total += len(batch)
        self.counts.add(table, total)
        return total

    def finish(self) -> None:
        """Move PostgreSQL's id sequences past the explicit ids, refresh statistics, release the connection."""
        if self.postgres:
            self.cursor.execute(
                "SELECT table_name FROM information_schema.columns "
                "WHERE column_name = 'id' AND column_default LIKE 'nextval%%' AND table_schema = 'public'"
            )
            for (table,) in self.cursor.fetchall():
                self.cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                    f"GREATEST((SELECT max(id) FROM {table}), 1))"
                )
            self.raw.commit()
            # What autovacuum would do soon after a bulk load; the console then runs on real statistics.
            self.raw.driver_connection.autocommit = True  # type: ignore[union-attr]
            self.cursor.execute("VACUUM ANALYZE")
            self.raw.driver_connection.autocommit = False  # type: ignore[union-attr]
        for name, value in self._pragmas:
            self.cursor.execute(f"PRAGMA {name}={int(value)}")
        self.cursor.close()
        self.raw.close()


def _batches(rows: Iterable[Sequence[Any]], size: int) -> Iterator[list[Sequence[Any]]]:
    batch: list[Sequence[Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _hex(rng: random.Random, nbytes: int) -> str:
    return rng.getrandbits(nbytes * 8).to_bytes(nbytes, "big").hex()


def seeded_people(engine: Engine) -> int:
    """How many people the database holds (0: not seeded yet)."""
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(Person)) or 0)


def seed(engine: Engine, n_people: int, n_events: int, *, sites: int = 4, doors_per_site: int = 8) -> SeedCounts:
    """Fill an empty, migrated database; the admin user must not exist yet (ids start at 1)."""
    rng = random.Random(20261122)
    w = Writer(engine)
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(days=DAYS)
    try:
        site_ids = list(range(1, sites + 1))
        face_sites = set(site_ids[: max(1, sites // 2)])
        w.write(
            "sites",
            _words(
                "id code name timezone minor_age face_enabled no_face_for_minors app_face_enrollment face_model_id "
                "event_retention_days visitor_retention_days template_unused_days erasure_alarm_hours journal_seq "
                "published_seq created_at"
            ),
            [
                (
                    s,
                    f"bench-{s}",
                    f"Bench Court {s}",
                    "Asia/Shanghai",
                    14,
                    s in face_sites,
                    True,
                    False,
                    MODEL_ID if s in face_sites else None,
                    90,
                    30,
                    365,
                    24,
                    1000,
                    1000,
                    w.when(start),
                )
                for s in site_ids
            ],
        )
        # Doors and terminals: one terminal per door; face doors take every other method too.
        doors: dict[int, list[int]] = {s: [] for s in site_ids}
        door_rows: list[tuple[Any, ...]] = []
        terminal_rows: list[tuple[Any, ...]] = []
        link_rows: list[tuple[int, int]] = []
        for s in site_ids:
            for d in range(doors_per_site):
                door_id = len(door_rows) + 1
                face = s in face_sites and d < 2
                door_rows.append((door_id, s, f"Door {d + 1}", face, True, True, True, w.when(start)))
                status = "online" if rng.random() < 0.9 else "offline"
                terminal_rows.append(
                    (
                        door_id,
                        s,
                        f"bench-{s}-t{d + 1}",
                        f"Terminal {d + 1}",
                        "$7$bench",
                        status,
                        w.when(now - timedelta(seconds=rng.randrange(600))),
                        1000,
                        "1.0.0",
                        w.when(now),
                        w.when(start),
                    )
                )
                link_rows.append((door_id, door_id))
                doors[s].append(door_id)
        w.write(
            "doors",
            _words("id site_id name accepts_face accepts_card accepts_id_document accepts_app_code created_at"),
            door_rows,
        )
        w.write(
            "terminals",
            _words(
                "id site_id ident name mqtt_password_hash status last_seen_at applied_seq software_version "
                "last_ack_at created_at"
            ),
            terminal_rows,
        )
        w.write("terminal_doors", ("terminal_id", "door_id"), link_rows)
        groups: dict[int, list[int]] = {}
        group_rows: list[tuple[Any, ...]] = []
        group_door_rows: list[tuple[int, int]] = []
        window_rows: list[tuple[Any, ...]] = []
        for s in site_ids:
            groups[s] = []
            for g, name in enumerate(("Residents", "Staff", "Garage")):
                gid = len(group_rows) + 1
                group_rows.append((gid, s, name, True, g == 0, w.when(start)))  # Residents: the usual group
                groups[s].append(gid)
                for door_id in doors[s][: doors_per_site if g == 0 else 3]:
                    group_door_rows.append((gid, door_id))
                for weekday in range(7):
                    window_rows.append(
                        (len(window_rows) + 1, gid, weekday, 0 if g == 0 else 420, 1440 if g == 0 else 1140)
                    )
        w.write("access_groups", _words("id site_id name open_on_holidays usual created_at"), group_rows)
        w.write("access_group_doors", ("group_id", "door_id"), group_door_rows)
        w.write("weekly_windows", _words("id group_id weekday start_minute end_minute"), window_rows)
        notices = {s: s for s in face_sites}
        sha = "0" * 64
        w.write(
            "privacy_notices",
            _words(
                "id site_id version controller contact purpose method storage retention rights withdrawal text sha256 "
                "published_at published_by"
            ),
            [
                (
                    notices[s],
                    s,
                    1,
                    "Bench Property Ltd",
                    "privacy@example.com",
                    "Entry",
                    "Face match",
                    "Encrypted",
                    "Until withdrawn",
                    "Access, erasure",
                    "Any time",
                    "Bench notice",
                    sha,
                    w.when(start),
                    "bench",
                )
                for s in sorted(face_sites)
            ],
        )
        people = _seed_people(w, rng, n_people, site_ids, face_sites, groups, notices, start, now)
        _seed_events(w, rng, n_events, people, doors, start, now)
        # The daily counts the server keeps as it stores each event, counted the way the migration fills them.
        with engine.begin() as conn:
            day_counts.recount(conn)
        _seed_receipts(w, rng, people, face_sites, doors, now)
        _seed_audit(w, rng, people, start, now)
        w.finish()
    except BaseException:
        w.raw.close()
        raise
    return w.counts


@dataclass
class _People:
    """What the event seeder needs to know about the people it made."""

    by_site: dict[int, list[str]]  # pseudonyms of active people per site
    site_of: list[int]  # index = person id
    pseudonym_of: list[str]
    created_at: list[datetime]
    withdrawn: list[tuple[int, int]]  # (person id, template id) of face templates since erased
    next_template: int


def _seed_people(
    w: Writer,
    rng: random.Random,
    n: int,
    site_ids: list[int],
    face_sites: set[int],
    groups: dict[int, list[int]],
    notices: dict[int, int],
    start: datetime,
    now: datetime,
) -> _People:
    weights = [4, 3, 2, 1, 1, 1, 1, 1][: len(site_ids)] + [1] * max(0, len(site_ids) - 8)
    people: list[tuple[Any, ...]] = []
    members: list[tuple[int, int]] = []
    creds: list[tuple[Any, ...]] = []
    consents: list[tuple[Any, ...]] = []
    templates: list[tuple[Any, ...]] = []
    info = _People({s: [] for s in site_ids}, [0], [""], [start], [], 1)
    span = (now - start).total_seconds()
    for pid in range(1, n + 1):
        site = rng.choices(site_ids, weights)[0]
        kind = "resident" if rng.random() < 0.9 else ("staff" if rng.random() < 0.7 else "visitor")
        roll = rng.random()
        status = "active" if roll < 0.92 else ("moved_out" if roll < 0.98 else "suspended")
        # Most people were registered before the window; the rest trickle in.
        created = (
            start - timedelta(days=rng.randrange(1, 900))
            if rng.random() < 0.85
            else (start + timedelta(seconds=rng.random() * span))
        )
        pseudonym = "p-" + _hex(rng, 8)
        name = f"{rng.choice(_FAMILY)} {rng.choice(_GIVEN)}"
        unit = (
            f"{rng.randrange(1, 40)}-{rng.randrange(1, 33):02d}{rng.randrange(1, 9):02d}"
            if kind == "resident"
            else None
        )
        dob = (
            date(1940 + rng.randrange(80), 1 + rng.randrange(12), 1 + rng.randrange(28)) if rng.random() < 0.7 else None
        )
        phone = f"13{rng.randrange(10**9):09d}" if rng.random() < 0.6 else None
        moved = created + timedelta(days=30) if status == "moved_out" else None
        people.append(
            (pid, site, pseudonym, name, kind, unit, w.day(dob), phone, status, None, w.when(created), w.when(moved))
        )
        info.site_of.append(site)
        info.pseudonym_of.append(pseudonym)
        info.created_at.append(created)
        if status == "active":
            info.by_site[site].append(pseudonym)
        members.append((groups[site][0 if kind != "staff" else 1], pid))
        if rng.random() < 0.1:
            members.append((groups[site][2], pid))
        # Credentials: most have a card, some an app code or ID document; a few revoked cards.
        if rng.random() < 0.8:
            revoked = rng.random() < 0.05
            creds.append(
                (
                    len(creds) + 1,
                    site,
                    pid,
                    "card",
                    _hex(rng, 32),
                    None,
                    "revoked" if revoked else "active",
                    w.when(created),
                    w.when(now) if revoked else None,
                )
            )
        if rng.random() < 0.2:
            creds.append(
                (len(creds) + 1, site, pid, "app_code", None, rng.randbytes(60), "active", w.when(created), None)
            )
        if rng.random() < 0.1:
            creds.append(
                (len(creds) + 1, site, pid, "id_document", _hex(rng, 32), None, "active", w.when(created), None)
            )
        # Face: only at face sites, only after consent; some consents were withdrawn (their template erased).
        if site in face_sites and kind == "resident" and status == "active" and rng.random() < 0.12:
            consent_id = len(consents) + 1
            given = max(created, start) + timedelta(days=rng.randrange(1, 30))
            withdrawn = given + timedelta(days=rng.randrange(1, 30)) if rng.random() < 0.08 else None
            consents.append(
                (
                    consent_id,
                    pid,
                    site,
                    "face_entry",
                    notices[site],
                    "0" * 64,
                    "console",
                    "self",
                    w.when(min(given, now)),
                    w.when(min(withdrawn, now)) if withdrawn else None,
                    "app" if withdrawn else None,
                )
            )
            if withdrawn is None:
                templates.append(
                    (
                        info.next_template,
                        pid,
                        consent_id,
                        MODEL_ID,
                        rng.randbytes(556),
                        w.when(min(given, now)),
                        w.when(now - timedelta(hours=rng.randrange(1, 500))),
                    )
                )
            else:
                info.withdrawn.append((pid, info.next_template))
            info.next_template += 1
    w.write(
        "people",
        _words(
            "id site_id pseudonym full_name kind unit date_of_birth phone status face_declined_at created_at "
            "moved_out_at"
        ),
        people,
    )
    w.write("access_group_members", ("group_id", "person_id"), members)
    w.write(
        "credentials", _words("id site_id person_id kind lookup_hash sealed_secret status created_at revoked_at"), creds
    )
    w.write(
        "consent_records",
        _words(
            "id person_id site_id purpose notice_id notice_sha256 channel given_by given_at withdrawn_at "
            "withdrawal_channel"
        ),
        consents,
    )
    w.write(
        "face_templates",
        _words("id person_id consent_id model_id sealed_vector created_at last_matched_at"),
        templates,
    )
    return info


def _seed_events(
    w: Writer,
    rng: random.Random,
    n: int,
    people: _People,
    doors: dict[int, list[int]],
    start: datetime,
    now: datetime,
) -> None:
    site_ids = sorted(doors)
    weights = [max(1, len(people.by_site[s])) for s in site_ids]
    step = (now - start).total_seconds() / max(n, 1)
    received = w.when(now)

    def rows() -> Iterator[tuple[Any, ...]]:
        for i in range(n):
            site = rng.choices(site_ids, weights)[0]
            door = rng.choice(doors[site])  # terminal id == door id (one terminal per door)
            method = rng.choice(_METHODS)
            roll = rng.random()
            decision = "grant" if roll < 0.9 else ("deny" if roll < 0.997 else "alarm")
            if decision == "grant" and method != "visitor_code" and people.by_site[site]:
                person, reason = rng.choice(people.by_site[site]), _GRANTED
            elif decision == "grant":
                person, reason = None, _GRANTED
            else:
                person, reason = None, _ALARM if decision == "alarm" else rng.choice(_DENY_REASONS)
            at = start + timedelta(seconds=step * i + rng.random() * step)
            yield (
                str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                site,
                door,
                door,
                person,
                None,
                method,
                decision,
                reason,
                w.when(at),
                received,
            )

    w.write(
        "access_events",
        _words(
            "event_uid site_id terminal_id door_id person_pseudonym pass_id method decision reason occurred_at "
            "received_at"
        ),
        rows(),
    )


def _seed_receipts(
    w: Writer, rng: random.Random, people: _People, face_sites: set[int], doors: dict[int, list[int]], now: datetime
) -> None:
    """Erasure receipts for the withdrawn templates; the recent ones still wait on some terminals."""
    receipts, confirmations = [], []
    overdue: list[tuple[int, int, datetime]] = []
    for rid, (pid, template_id) in enumerate(people.withdrawn, start=1):
        site = people.site_of[pid]
        erased = now - timedelta(hours=rng.randrange(1, 24 * 60))
        receipts.append(
            (rid, site, pid, people.pseudonym_of[pid], template_id, MODEL_ID, "consent_withdrawn", 900, w.when(erased))
        )
        pending = erased > now - timedelta(hours=48) or rng.random() < 0.1
        waiting = False
        for terminal in doors[site][:2]:  # the face doors' terminals held it
            done = not pending or rng.random() < 0.5
            waiting = waiting or not done
            confirmations.append(
                (rid, terminal, w.when(erased + timedelta(minutes=5)) if done else None, "sequence" if done else None)
            )
        if waiting and erased < now - timedelta(hours=24):
            overdue.append((rid, site, erased + timedelta(hours=24)))
    w.write(
        "erasure_receipts",
        _words("id site_id person_id person_pseudonym template_id model_id reason journal_seq erased_on_server_at"),
        receipts,
    )
    w.write("erasure_confirmations", _words("receipt_id terminal_id confirmed_at confirmed_by"), confirmations)
    w.write(
        "alarms",
        _words("id site_id kind ref message raised_at resolved_at"),
        [
            (i, site, "erasure_overdue", str(rid), "A terminal has not confirmed an erasure.", w.when(raised), None)
            for i, (rid, site, raised) in enumerate(overdue, start=1)
        ],
    )


def _seed_audit(w: Writer, rng: random.Random, people: _People, start: datetime, now: datetime) -> None:
    """A person.create entry per person, and a season of other administrative actions."""
    span = (now - start).total_seconds()
    n_people = len(people.site_of) - 1

    entries: list[tuple[datetime, str, int]] = [
        (people.created_at[p], "person.create", p) for p in range(1, n_people + 1)
    ]
    for _ in range(max(1000, n_people // 2)):
        pid = rng.randrange(1, n_people + 1) if n_people else 0
        entries.append((start + timedelta(seconds=rng.random() * span), rng.choice(_AUDIT_ACTIONS), pid))
    entries.sort()  # ids follow time, as appends do
    details = json.dumps({})

    def rows() -> Iterator[tuple[Any, ...]]:
        for at, action, pid in entries:
            actor = "import" if action == "person.create" else "manager1"
            yield (w.when(at), None, actor, action, "person", str(pid), people.site_of[pid] if pid else None, details)

    w.write("audit_entries", _words("at actor_id actor_label action target_type target_id site_id details"), rows())


def random_token() -> str:
    """A throwaway password for the benchmark's admin."""
    return secrets.token_urlsafe(18)
