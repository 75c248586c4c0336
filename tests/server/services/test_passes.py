"""Visitor passes: issuing, refusing, revoking, counting uses from terminal events and expiring (both databases)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, select

from gatehouse_core.credential_hash import hash_pass_code, site_hashing_key
from gatehouse_core.keyring import ServerKeys
from gatehouse_core.pass_token import PassClaims, PassTokenError, verify_pass
from gatehouse_core.schedule import ALWAYS
from gatehouse_core.wire.messages import Decision, EntryMethod, EventRecord
from gatehouse_core.wire.records import PassRecord
from server.extensions import db
from server.link import event_ingest as events
from server.link import roster
from server.models import (
    AccessEvent,
    AuditEntry,
    Door,
    JournalEntry,
    JournalKind,
    PassStatus,
    Person,
    PersonStatus,
    Site,
    Terminal,
    VisitorPass,
    utcnow,
)
from server.services import journal
from server.services.access import access
from server.services.errors import Conflict, DomainError, RuleViolation
from server.services.people import people
from server.services.terminals import terminals
from server.services.visitors import passes
from tests.conftest import TEST_ACTOR

# ---- a site whose host may use doors A and B (not C), and a second site with door X ----------------------------------


@dataclass
class Estate:
    site: Site
    other: Site
    doors: dict[str, Door]
    host: Person
    other_host: Person
    terminals: dict[str, Terminal]


@pytest.fixture
def estate(
    make_site: Callable[..., Site], make_door: Callable[..., Door], make_person: Callable[..., Person]
) -> Estate:
    site, other = make_site(), make_site()
    doors = {
        "A": make_door(site, "A"),
        "B": make_door(site, "B"),
        "C": make_door(site, "C"),
        "X": make_door(other, "X"),
    }
    group = access.create_group(db.session, TEST_ACTOR, site, "GAB", [doors["A"], doors["B"]], ALWAYS.windows)
    group_c = access.create_group(db.session, TEST_ACTOR, site, "GC", [doors["C"]], ALWAYS.windows)
    group_x = access.create_group(db.session, TEST_ACTOR, other, "GX", [doors["X"]], ALWAYS.windows)
    serving = {"TA": (site, "A"), "TB": (site, "B"), "TC": (site, "C"), "TX": (other, "X")}
    terms = {
        name: terminals.provision_terminal(db.session, TEST_ACTOR, s, name, [doors[d]]).terminal
        for name, (s, d) in serving.items()
    }
    db.session.commit()
    host = make_person(site, "Alice Host")
    neighbour = make_person(site, "Carol Neighbour")
    other_host = make_person(other, "Xavier Host")
    access.add_member(db.session, TEST_ACTOR, group, host)
    access.add_member(db.session, TEST_ACTOR, group_c, neighbour)
    access.add_member(db.session, TEST_ACTOR, group_x, other_host)
    db.session.commit()
    return Estate(site, other, doors, host, other_host, terms)


def issue(e: Estate, keys: ServerKeys, doors: str = "AB", host: Person | None = None, **kw: Any) -> passes.IssuedPass:
    now = utcnow()
    fields: dict[str, Any] = {
        "visitor_name": "Wang Fang",
        "valid_from": now - timedelta(minutes=5),
        "valid_until": now + timedelta(hours=4),
    }
    fields.update(kw)
    issued = passes.issue_pass(
        db.session, TEST_ACTOR, keys, host or e.host, doors=[e.doors[d] for d in doors], **fields
    )
    db.session.commit()
    return issued


def seq_of(site: Site) -> int:
    return db.session.scalar(select(Site.journal_seq).where(Site.id == site.id)) or 0


def entries_since(site: Site, seq: int) -> list[tuple[JournalKind, dict[str, Any]]]:
    return [(entry.kind, entry.payload) for entry in journal.entries_after(db.session, site.id, seq)]


def counts() -> tuple[int, int, int]:
    """Visitor passes, journal entries and audit entries in the database."""
    return (
        db.session.scalar(select(func.count()).select_from(VisitorPass)) or 0,
        db.session.scalar(select(func.count()).select_from(JournalEntry)) or 0,
        db.session.scalar(select(func.count()).select_from(AuditEntry)) or 0,
    )


def held_passes(e: Estate, terminal: str) -> dict[int, PassRecord]:
    scope = roster.scope_of(db.session, e.terminals[terminal])
    site = e.other if terminal == "TX" else e.site
    records = roster.full_roster(db.session, site, scope, roster.HashOnlySealer())
    return {r.id: r for r in records if isinstance(r, PassRecord)}


def reload(visitor_pass: VisitorPass) -> VisitorPass:
    db.session.expire_all()
    fresh = db.session.get(VisitorPass, visitor_pass.id)
    assert fresh is not None
    return fresh


def randbelow_returning(monkeypatch: pytest.MonkeyPatch, values: Callable[[], Iterator[int]]) -> list[int]:
    """Make the passes module's secrets.randbelow return the given values; returns the list of bounds asked."""
    asked: list[int] = []
    source = values()

    def fake(bound: int) -> int:
        asked.append(bound)
        return next(source)

    monkeypatch.setattr(passes.secrets, "randbelow", fake)
    return asked


# ---- issuing ---------------------------------------------------------------------------------------------------------


def test_issue_stores_only_the_code_hash_and_signs_a_token_for_the_site(estate: Estate, keys: ServerKeys) -> None:
    e = estate
    start = datetime(2030, 5, 1, 9, 30, 15, 123_456, tzinfo=timezone(timedelta(hours=8)))
    end = start + timedelta(hours=6, microseconds=654_321)
    seq = seq_of(e.site)
    issued = issue(e, keys, "BA", valid_from=start, valid_until=end, uses_allowed=3, visitor_name="  Wang   Fang ")
    vp = reload(issued.visitor_pass)

    assert len(issued.code) == 6 and issued.code.isdigit() and issued.code.isascii()
    assert vp.code_hash == hash_pass_code(site_hashing_key(keys.credential_secret, e.site.code), issued.code)
    assert vp.status is PassStatus.ACTIVE and vp.uses_count == 0 and vp.uses_allowed == 3
    assert vp.visitor_name == "Wang Fang"
    assert vp.site_id == e.site.id and vp.host_id == e.host.id
    assert sorted(d.id for d in vp.doors) == sorted([e.doors["A"].id, e.doors["B"].id])
    assert vp.valid_from == start.replace(microsecond=0)
    assert vp.valid_until == end.replace(microsecond=0)

    claims = verify_pass(keys.public_key, e.site.code, issued.token)
    assert claims == PassClaims(
        pass_id=vp.id,
        doors=tuple(sorted([e.doors["A"].id, e.doors["B"].id])),
        valid_from=start.replace(microsecond=0),
        valid_until=end.replace(microsecond=0),
        uses_allowed=3,
    )
    # The token holds nothing secret and can be shown again: the same bytes from the stored pass.
    assert passes.token_for(keys, vp) == issued.token
    with pytest.raises(PassTokenError):
        verify_pass(keys.public_key, e.other.code, issued.token)

    assert entries_since(e.site, seq) == [(JournalKind.PASS_ISSUE, {"pass": vp.id})]
    audit = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "pass.issue")).one()
    assert audit.target_id == str(vp.id) and audit.site_id == e.site.id
    assert audit.details == {"host": e.host.id, "doors": sorted([e.doors["A"].id, e.doors["B"].id]), "uses": 3}


def test_the_code_itself_is_stored_nowhere(estate: Estate, keys: ServerKeys) -> None:
    e = estate
    issued = issue(e, keys)
    code = issued.code
    vp = reload(issued.visitor_pass)
    row = {c.key: getattr(vp, c.key) for c in VisitorPass.__table__.columns}
    for name, value in row.items():
        if isinstance(value, datetime):
            continue  # microseconds of a timestamp could be any six digits
        assert code not in str(value), name
    for entry in db.session.scalars(select(AuditEntry)):
        assert code not in json.dumps(entry.details)
    for change in db.session.scalars(select(JournalEntry)):
        assert code not in json.dumps(change.payload)


def test_code_keeps_leading_zeros(estate: Estate, keys: ServerKeys, monkeypatch: pytest.MonkeyPatch) -> None:
    asked = randbelow_returning(monkeypatch, lambda: iter([42]))
    issued = issue(estate, keys)
    assert issued.code == "000042"
    assert asked == [10**6]
    site_key = site_hashing_key(keys.credential_secret, estate.site.code)
    assert reload(issued.visitor_pass).code_hash == hash_pass_code(site_key, "000042")


def test_duplicate_doors_are_named_once(estate: Estate, keys: ServerKeys) -> None:
    issued = issue(estate, keys, "AAB")
    assert sorted(d.id for d in reload(issued.visitor_pass).doors) == sorted(
        [estate.doors["A"].id, estate.doors["B"].id]
    )
    assert verify_pass(keys.public_key, estate.site.code, issued.token).doors == tuple(
        sorted([estate.doors["A"].id, estate.doors["B"].id])
    )


@pytest.mark.parametrize("uses", [1, 100])
def test_uses_at_the_limits_are_accepted(estate: Estate, keys: ServerKeys, uses: int) -> None:
    issued = issue(estate, keys, uses_allowed=uses)
    assert verify_pass(keys.public_key, estate.site.code, issued.token).uses_allowed == uses


def test_a_window_of_exactly_31_days_is_accepted(estate: Estate, keys: ServerKeys) -> None:
    start = utcnow().replace(microsecond=0)
    issued = issue(estate, keys, valid_from=start, valid_until=start + timedelta(days=31))
    assert reload(issued.visitor_pass).valid_until - reload(issued.visitor_pass).valid_from == timedelta(days=31)


def _refusal(case: str) -> tuple[dict[str, Any], str]:
    """Keyword arguments of issue() for one refused case, and the expected error code."""
    now = utcnow()
    naive = now.replace(tzinfo=None)
    cases: dict[str, tuple[dict[str, Any], str]] = {
        "door_host_may_not_use": ({"doors": "AC"}, "foreign_door"),
        "only_door_host_may_not_use": ({"doors": "C"}, "foreign_door"),
        "door_of_another_site": ({"doors": "AX"}, "foreign_door"),
        "no_doors": ({"doors": ""}, "bad_doors"),
        "end_before_start": (
            {"valid_from": now + timedelta(hours=2), "valid_until": now + timedelta(hours=1)},
            "bad_window",
        ),
        "end_equals_start": (
            {"valid_from": now + timedelta(hours=1), "valid_until": now + timedelta(hours=1)},
            "bad_window",
        ),
        "same_whole_second": (
            {
                "valid_from": (now + timedelta(hours=1)).replace(microsecond=100),
                "valid_until": (now + timedelta(hours=1)).replace(microsecond=900_000),
            },
            "bad_window",
        ),
        "already_ended": (
            {"valid_from": now - timedelta(hours=3), "valid_until": now - timedelta(hours=1)},
            "bad_window",
        ),
        "ends_now": ({"valid_from": now - timedelta(hours=3), "valid_until": now, "now": now}, "bad_window"),
        "longer_than_31_days": (
            {"valid_from": now, "valid_until": now + timedelta(days=31, seconds=1)},
            "bad_window",
        ),
        "uses_0": ({"uses_allowed": 0}, "bad_uses"),
        "uses_101": ({"uses_allowed": 101}, "bad_uses"),
        "uses_negative": ({"uses_allowed": -1}, "bad_uses"),
        "empty_visitor_name": ({"visitor_name": ""}, "bad_visitor_name"),
        "blank_visitor_name": ({"visitor_name": " \t\n "}, "bad_visitor_name"),
        "visitor_name_too_long": ({"visitor_name": "x" * 201}, "bad_visitor_name"),
        "naive_start": ({"valid_from": naive}, "naive_time"),
        "naive_end": ({"valid_until": naive + timedelta(hours=1)}, "naive_time"),
        "naive_both": ({"valid_from": naive, "valid_until": naive + timedelta(hours=1)}, "naive_time"),
    }
    return cases[case]


REFUSALS = [
    "door_host_may_not_use",
    "only_door_host_may_not_use",
    "door_of_another_site",
    "no_doors",
    "end_before_start",
    "end_equals_start",
    "same_whole_second",
    "already_ended",
    "ends_now",
    "longer_than_31_days",
    "uses_0",
    "uses_101",
    "uses_negative",
    "empty_visitor_name",
    "blank_visitor_name",
    "visitor_name_too_long",
    "naive_start",
    "naive_end",
    "naive_both",
]


@pytest.mark.parametrize("case", REFUSALS)
def test_refused_passes_write_nothing(estate: Estate, keys: ServerKeys, case: str) -> None:
    kwargs, code = _refusal(case)
    before = counts()
    seq = seq_of(estate.site)
    with pytest.raises(DomainError) as info:
        issue(estate, keys, **kwargs)
    assert isinstance(info.value, RuleViolation)
    assert info.value.code == code
    # Queried in the same transaction (autoflush would reveal anything added before the refusal).
    assert counts() == before
    assert seq_of(estate.site) == seq
    db.session.rollback()
    assert counts() == before


def test_more_than_16_doors_are_refused(estate: Estate, keys: ServerKeys, make_door: Callable[..., Door]) -> None:
    e = estate
    many = [make_door(e.site, f"D{i}") for i in range(17)]
    group = access.create_group(db.session, TEST_ACTOR, e.site, "G17", many, ALWAYS.windows)
    access.add_member(db.session, TEST_ACTOR, group, e.host)
    db.session.commit()
    before = counts()
    now = utcnow()
    with pytest.raises(RuleViolation) as info:
        passes.issue_pass(db.session, TEST_ACTOR, keys, e.host, "V", now, now + timedelta(hours=1), many)
    assert info.value.code == "bad_doors"
    assert counts() == before
    db.session.rollback()
    issued = passes.issue_pass(db.session, TEST_ACTOR, keys, e.host, "V", now, now + timedelta(hours=1), many[:16])
    db.session.commit()
    assert len(verify_pass(keys.public_key, e.site.code, issued.token).doors) == 16


@pytest.mark.parametrize("how", ["suspended", "moved_out"])
def test_inactive_host_cannot_invite(estate: Estate, keys: ServerKeys, how: str) -> None:
    e = estate
    if how == "suspended":
        e.host.status = PersonStatus.SUSPENDED
    else:
        people.move_out(db.session, TEST_ACTOR, e.host)
    db.session.commit()
    before = counts()
    with pytest.raises(RuleViolation) as info:
        issue(e, keys)
    assert info.value.code == "inactive"
    assert counts() == before
    db.session.rollback()


def test_host_of_another_site_cannot_name_this_sites_doors(estate: Estate, keys: ServerKeys) -> None:
    with pytest.raises(RuleViolation) as info:
        issue(estate, keys, "A", host=estate.other_host)
    assert info.value.code == "foreign_door"
    db.session.rollback()
    issued = issue(estate, keys, "X", host=estate.other_host)
    assert verify_pass(keys.public_key, estate.other.code, issued.token).doors == (estate.doors["X"].id,)


# ---- code uniqueness ---------------------------------------------------------------------------------------------


def test_a_taken_code_is_skipped(estate: Estate, keys: ServerKeys, monkeypatch: pytest.MonkeyPatch) -> None:
    randbelow_returning(monkeypatch, lambda: iter([123_456]))
    first = issue(estate, keys)
    assert first.code == "123456"
    asked = randbelow_returning(monkeypatch, lambda: iter([123_456, 654_321]))
    second = issue(estate, keys)
    assert second.code == "654321"
    assert asked == [10**6, 10**6]
    site_key = site_hashing_key(keys.credential_secret, estate.site.code)
    assert reload(second.visitor_pass).code_hash == hash_pass_code(site_key, "654321")


def test_codes_of_revoked_and_used_up_passes_stay_taken_until_they_expire(
    estate: Estate, keys: ServerKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    randbelow_returning(monkeypatch, lambda: iter([111_111]))
    first = issue(estate, keys, valid_until=utcnow() + timedelta(hours=1))
    passes.revoke_pass(db.session, TEST_ACTOR, first.visitor_pass)
    db.session.commit()
    randbelow_returning(monkeypatch, lambda: iter([111_111, 222_222]))
    assert issue(estate, keys).code == "222222"
    # Once expired, the first code is free again.
    assert passes.expire_passes(db.session, now=utcnow() + timedelta(hours=2)) == 1
    db.session.commit()
    randbelow_returning(monkeypatch, lambda: iter([111_111]))
    assert issue(estate, keys, valid_until=utcnow() + timedelta(hours=5)).code == "111111"


def test_codes_are_unique_per_site_only(estate: Estate, keys: ServerKeys, monkeypatch: pytest.MonkeyPatch) -> None:
    randbelow_returning(monkeypatch, lambda: iter([123_456, 123_456]))
    assert issue(estate, keys).code == "123456"
    assert issue(estate, keys, "X", host=estate.other_host).code == "123456"


def test_always_taken_codes_are_a_conflict(estate: Estate, keys: ServerKeys, monkeypatch: pytest.MonkeyPatch) -> None:
    randbelow_returning(monkeypatch, lambda: iter([123_456]))
    issue(estate, keys)
    asked = randbelow_returning(monkeypatch, lambda: iter(lambda: 123_456, None))
    before = counts()
    seq = seq_of(estate.site)
    with pytest.raises(Conflict) as info:
        issue(estate, keys)
    assert info.value.code == "codes_exhausted"
    assert len(asked) == 20
    assert counts() == before
    assert seq_of(estate.site) == seq
    db.session.rollback()


# ---- revoking ------------------------------------------------------------------------------------------------------


def test_revoke_is_journalled_once_and_the_pass_stays_held_flagged(estate: Estate, keys: ServerKeys) -> None:
    e = estate
    issued = issue(e, keys, "A")
    vp = issued.visitor_pass
    assert not held_passes(e, "TA")[vp.id].revoked
    seq = seq_of(e.site)
    passes.revoke_pass(db.session, TEST_ACTOR, vp)
    db.session.commit()
    assert reload(vp).status is PassStatus.REVOKED
    assert entries_since(e.site, seq) == [(JournalKind.PASS_REVOKE, {"pass": vp.id})]
    audits = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "pass.revoke")).all()
    assert [(a.target_id, a.site_id) for a in audits] == [(str(vp.id), e.site.id)]

    before, seq = counts(), seq_of(e.site)
    passes.revoke_pass(db.session, TEST_ACTOR, reload(vp))
    db.session.commit()
    assert counts() == before and seq_of(e.site) == seq
    assert reload(vp).status is PassStatus.REVOKED

    record = held_passes(e, "TA")[vp.id]
    assert record.revoked and record.code_hash == reload(vp).code_hash
    assert vp.id not in held_passes(e, "TC")


def test_revoking_an_expired_pass_does_nothing(estate: Estate, keys: ServerKeys) -> None:
    issued = issue(estate, keys, valid_until=utcnow() + timedelta(hours=1))
    passes.expire_passes(db.session, now=utcnow() + timedelta(hours=2))
    db.session.commit()
    before, seq = counts(), seq_of(estate.site)
    passes.revoke_pass(db.session, TEST_ACTOR, reload(issued.visitor_pass))
    db.session.commit()
    assert reload(issued.visitor_pass).status is PassStatus.EXPIRED
    assert counts() == before and seq_of(estate.site) == seq


# ---- counting uses from terminal events -----------------------------------------------------------------------------


def pass_event(
    door: Door, pass_id: int, decision: Decision = Decision.GRANT, uid: str | None = None, reason: str = "ok"
) -> EventRecord:
    return EventRecord(
        uid=uid or str(uuid.uuid4()),
        door=door.id,
        method=EntryMethod.VISITOR_CODE,
        decision=decision,
        reason=reason,
        pass_id=pass_id,
        at=utcnow(),
    )


def deliver(e: Estate, terminal: str, *evs: EventRecord) -> events.IngestResult:
    sender = events.sender_of(db.session, e.terminals[terminal])
    result = events.ingest(db.session, [(sender, list(evs))])
    db.session.commit()
    return result


def stored(uid: str) -> AccessEvent:
    return db.session.scalars(select(AccessEvent).where(AccessEvent.event_uid == uid)).one()


def test_a_granted_use_counts_once_and_redelivery_changes_nothing(estate: Estate, keys: ServerKeys) -> None:
    e = estate
    vp = issue(e, keys).visitor_pass
    seq = seq_of(e.site)
    use = pass_event(e.doors["A"], vp.id)
    result = deliver(e, "TA", use)
    assert result.settled == [use.uid] and result.rejected == []

    fresh = reload(vp)
    assert fresh.uses_count == 1
    assert fresh.status is PassStatus.USED_UP
    assert stored(use.uid).pass_id == vp.id
    assert entries_since(e.site, seq) == [(JournalKind.PASS_CONSUME, {"pass": vp.id})]
    for terminal in ("TA", "TB"):
        record = held_passes(e, terminal)[vp.id]
        assert record.used == (use.uid,) and record.uses_count == 1 and not record.revoked

    before, seq = counts(), seq_of(e.site)
    again = deliver(e, "TA", use)
    assert again.settled == [use.uid]
    assert reload(vp).uses_count == 1 and reload(vp).status is PassStatus.USED_UP
    assert counts() == before and seq_of(e.site) == seq
    assert db.session.scalar(select(func.count()).select_from(AccessEvent)) == 1
    assert held_passes(e, "TA")[vp.id].used == (use.uid,)


def test_the_same_event_twice_in_one_delivery_counts_once(estate: Estate, keys: ServerKeys) -> None:
    e = estate
    vp = issue(e, keys, uses_allowed=5).visitor_pass
    seq = seq_of(e.site)
    use = pass_event(e.doors["A"], vp.id)
    deliver(e, "TA", use, use)
    assert reload(vp).uses_count == 1
    assert entries_since(e.site, seq) == [(JournalKind.PASS_CONSUME, {"pass": vp.id})]


def test_a_denied_event_naming_the_pass_does_not_count(estate: Estate, keys: ServerKeys) -> None:
    e = estate
    vp = issue(e, keys).visitor_pass
    seq = seq_of(e.site)
    denied = pass_event(e.doors["A"], vp.id, Decision.DENY, reason="outside_window")
    assert deliver(e, "TA", denied).settled == [denied.uid]
    fresh = reload(vp)
    assert fresh.uses_count == 0 and fresh.status is PassStatus.ACTIVE
    assert stored(denied.uid).pass_id == vp.id
    assert entries_since(e.site, seq) == []
    assert held_passes(e, "TA")[vp.id].used == ()


def test_a_two_use_pass_stays_active_after_one_use(estate: Estate, keys: ServerKeys) -> None:
    e = estate
    vp = issue(e, keys, uses_allowed=2).visitor_pass
    first, second = pass_event(e.doors["A"], vp.id), pass_event(e.doors["B"], vp.id)
    deliver(e, "TA", first)
    assert (reload(vp).uses_count, reload(vp).status) == (1, PassStatus.ACTIVE)
    assert held_passes(e, "TB")[vp.id].used == (first.uid,)
    deliver(e, "TB", second)
    assert (reload(vp).uses_count, reload(vp).status) == (2, PassStatus.USED_UP)
    assert held_passes(e, "TA")[vp.id].used == tuple(sorted([first.uid, second.uid]))


def test_uses_from_two_terminals_in_one_ingest_are_both_counted(estate: Estate, keys: ServerKeys) -> None:
    e = estate
    vp = issue(e, keys, uses_allowed=3).visitor_pass
    seq = seq_of(e.site)
    a, b = pass_event(e.doors["A"], vp.id), pass_event(e.doors["B"], vp.id)
    batches = [
        (events.sender_of(db.session, e.terminals["TA"]), [a]),
        (events.sender_of(db.session, e.terminals["TB"]), [b]),
    ]
    events.ingest(db.session, batches)
    db.session.commit()
    assert (reload(vp).uses_count, reload(vp).status) == (2, PassStatus.ACTIVE)
    assert entries_since(e.site, seq) == [(JournalKind.PASS_CONSUME, {"pass": vp.id})]


def test_an_event_for_a_door_the_terminal_does_not_serve_is_refused_and_not_counted(
    estate: Estate, keys: ServerKeys
) -> None:
    e = estate
    vp = issue(e, keys).visitor_pass
    seq = seq_of(e.site)
    use = pass_event(e.doors["B"], vp.id)
    result = deliver(e, "TA", use)
    assert result.rejected == [use.uid] and result.settled == []
    assert reload(vp).uses_count == 0
    assert entries_since(e.site, seq) == []


def test_an_event_naming_an_unknown_pass_is_stored_without_the_link(estate: Estate, keys: ServerKeys) -> None:
    e = estate
    vp = issue(e, keys).visitor_pass
    before, seq = counts(), seq_of(e.site)
    ghost = pass_event(e.doors["A"], vp.id + 1000)
    assert deliver(e, "TA", ghost).settled == [ghost.uid]
    assert stored(ghost.uid).pass_id is None
    assert counts() == before and seq_of(e.site) == seq
    assert reload(vp).uses_count == 0


def test_an_event_naming_a_pass_of_another_site_does_not_count(estate: Estate, keys: ServerKeys) -> None:
    e = estate
    vp = issue(e, keys).visitor_pass
    seq = seq_of(e.site)
    foreign = pass_event(e.doors["X"], vp.id)
    assert deliver(e, "TX", foreign).settled == [foreign.uid]
    fresh = reload(vp)
    observed = (fresh.uses_count, fresh.status, stored(foreign.uid).pass_id, entries_since(e.site, seq))
    assert observed == (0, PassStatus.ACTIVE, None, [])


def test_uses_are_counted_against_a_revoked_pass_without_unrevoking_it(estate: Estate, keys: ServerKeys) -> None:
    # A terminal that had not yet heard of the revocation may have admitted the visitor; the use is real.
    e = estate
    vp = issue(e, keys).visitor_pass
    passes.revoke_pass(db.session, TEST_ACTOR, vp)
    db.session.commit()
    use = pass_event(e.doors["A"], vp.id)
    deliver(e, "TA", use)
    assert (reload(vp).uses_count, reload(vp).status) == (1, PassStatus.REVOKED)
    record = held_passes(e, "TA")[vp.id]
    assert record.revoked and record.used == (use.uid,)


# ---- expiry --------------------------------------------------------------------------------------------------------


def test_expire_passes_expires_only_ended_passes(estate: Estate, keys: ServerKeys) -> None:
    e = estate
    now = utcnow().replace(microsecond=0)
    ended = issue(e, keys, valid_from=now - timedelta(hours=1), valid_until=now + timedelta(hours=1)).visitor_pass
    ends_at_cutoff = issue(e, keys, valid_from=now, valid_until=now + timedelta(hours=2)).visitor_pass
    running = issue(e, keys, valid_from=now, valid_until=now + timedelta(hours=2, seconds=1)).visitor_pass
    revoked_ended = issue(e, keys, "B", valid_until=now + timedelta(minutes=30)).visitor_pass
    passes.revoke_pass(db.session, TEST_ACTOR, revoked_ended)
    used_up = issue(e, keys, valid_until=now + timedelta(minutes=30)).visitor_pass
    other_site = issue(e, keys, "X", host=e.other_host, valid_until=now + timedelta(minutes=30)).visitor_pass
    db.session.commit()
    deliver(e, "TA", pass_event(e.doors["A"], used_up.id))
    assert reload(used_up).status is PassStatus.USED_UP

    seq, other_seq = seq_of(e.site), seq_of(e.other)
    cutoff = now + timedelta(hours=2)
    assert passes.expire_passes(db.session, now=cutoff) == 5
    db.session.commit()

    expired = [ended, ends_at_cutoff, revoked_ended, used_up]
    for vp in expired:
        assert reload(vp).status is PassStatus.EXPIRED
    assert reload(running).status is PassStatus.ACTIVE
    assert reload(other_site).status is PassStatus.EXPIRED
    entries = entries_since(e.site, seq)
    assert all(kind is JournalKind.PASS_REVOKE for kind, _ in entries)
    assert sorted(p["pass"] for _, p in entries) == sorted(vp.id for vp in expired)
    assert all(p["ended"] is True for _, p in entries)
    assert entries_since(e.other, other_seq) == [(JournalKind.PASS_REVOKE, {"pass": other_site.id, "ended": True})]

    assert set(held_passes(e, "TA")) == {running.id}
    assert set(held_passes(e, "TB")) == {running.id}
    assert held_passes(e, "TX") == {}

    assert passes.expire_passes(db.session, now=cutoff + timedelta(days=1)) == 1  # only `running` is left
    db.session.commit()
    assert reload(running).status is PassStatus.EXPIRED
    before, seq = counts(), seq_of(e.site)
    assert passes.expire_passes(db.session, now=cutoff + timedelta(days=2)) == 0
    db.session.commit()
    assert counts() == before and seq_of(e.site) == seq


def test_expire_passes_by_the_clock_leaves_running_passes(estate: Estate, keys: ServerKeys) -> None:
    vp = issue(estate, keys).visitor_pass
    seq = seq_of(estate.site)
    assert passes.expire_passes(db.session) == 0
    db.session.commit()
    assert reload(vp).status is PassStatus.ACTIVE
    assert entries_since(estate.site, seq) == []
    assert vp.id in held_passes(estate, "TA")


def test_moving_out_revokes_the_hosts_passes(estate: Estate, keys: ServerKeys) -> None:
    from server.services.people import people

    e = estate
    vp = issue(e, keys).visitor_pass
    people.move_out(db.session, TEST_ACTOR, vp.host)
    db.session.commit()
    assert reload(vp).status is PassStatus.REVOKED
