"""Erasure alarms: raised once when a terminal has not confirmed a deletion in time, resolved when it does."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from gatehouse_core.keyring import ServerKeys
from server.extensions import db
from server.models import (
    Alarm,
    AlarmKind,
    Door,
    ErasureReason,
    ErasureReceipt,
    Person,
    Site,
    Terminal,
    utcnow,
)
from server.services.face import templates as face_templates
from server.services.privacy import alarms, erasure
from server.services.terminals import terminals
from tests.conftest import TEST_ACTOR
from tests.support.privacy import consent_row, enable_face

MODEL = "test-model-000000000000"
VECTOR = bytes(range(256)) * 2


@dataclass
class Erased:
    """Alice's template was sent to terminals North and South, then erased on the server: both lines pending."""

    site: Site
    person: Person
    north: Terminal
    south: Terminal
    receipt: ErasureReceipt

    @property
    def erased_at(self) -> datetime:
        return self.receipt.erased_on_server_at


def erase_one(site: Site, person: Person, holders: list[Terminal], keys: ServerKeys) -> ErasureReceipt:
    template = face_templates.store_template(db.session, TEST_ACTOR, keys, person, consent_row(person), MODEL, VECTOR)
    db.session.flush()
    for terminal in holders:
        erasure.record_holdings(db.session, terminal.id, [template.id])
    receipt = face_templates.delete_template(db.session, TEST_ACTOR, person, template, ErasureReason.CONSENT_WITHDRAWN)
    db.session.commit()
    return receipt


@pytest.fixture
def erased(
    make_site: Callable[..., Site],
    make_door: Callable[..., Door],
    make_person: Callable[..., Person],
    keys: ServerKeys,
) -> Erased:
    site = enable_face(make_site("oak"), MODEL)
    door = make_door(site, "Gate", face=True)
    north, south = (
        terminals.provision_terminal(db.session, TEST_ACTOR, site, name, [door]).terminal for name in ("North", "South")
    )
    db.session.commit()
    alice = make_person(site, "Alice Liddell")
    return Erased(site, alice, north, south, erase_one(site, alice, [north, south], keys))


def all_alarms() -> list[Alarm]:
    db.session.expire_all()
    return list(db.session.scalars(select(Alarm).order_by(Alarm.id)))


def check(at: datetime) -> int:
    raised = alarms.check_erasures(db.session, at)
    db.session.commit()
    return raised


def test_no_alarm_before_the_deadline(erased: Erased) -> None:
    assert check(erased.erased_at + timedelta(hours=24) - timedelta(seconds=1)) == 0
    assert all_alarms() == []


def test_one_alarm_after_the_deadline_however_often_checked(erased: Erased) -> None:
    late = erased.erased_at + timedelta(hours=24)
    assert check(late) == 1
    assert check(late + timedelta(hours=1)) == 0
    assert check(late + timedelta(days=3)) == 0
    (alarm,) = all_alarms()
    assert (alarm.kind, alarm.ref, alarm.site_id, alarm.resolved_at) == (
        AlarmKind.ERASURE_OVERDUE,
        str(erased.receipt.id),
        erased.site.id,
        None,
    )
    assert alarm.raised_at == late


def test_the_message_names_terminals_and_pseudonym_and_says_what_to_do(erased: Erased) -> None:
    check(erased.erased_at + timedelta(hours=25))
    (alarm,) = all_alarms()
    for terminal in (erased.north, erased.south):
        assert f"{terminal.name} ({terminal.ident})" in alarm.message
    assert erased.person.pseudonym in alarm.message
    assert "Alice" not in alarm.message and "Liddell" not in alarm.message
    assert "online" in alarm.message and "decommission" in alarm.message
    assert "removing a terminal drops its pending confirmations" in alarm.message


def test_the_sites_deadline_is_honoured(erased: Erased) -> None:
    erased.site.erasure_alarm_hours = 2
    db.session.commit()
    assert check(erased.erased_at + timedelta(hours=1)) == 0
    assert check(erased.erased_at + timedelta(hours=2, seconds=1)) == 1
    assert "within 2 h" in all_alarms()[0].message


def test_the_alarm_is_resolved_when_every_terminal_has_confirmed(erased: Erased) -> None:
    late = erased.erased_at + timedelta(hours=30)
    check(late)
    erasure.confirm_items(db.session, erased.north, [erased.receipt.template_id])
    db.session.commit()
    check(late + timedelta(minutes=1))
    assert all_alarms()[0].resolved_at is None
    assert len(alarms.open_alarms(db.session)) == 1
    db.session.refresh(erased.receipt)
    erasure.confirm_through(db.session, erased.south, erased.receipt.journal_seq or 0)
    db.session.commit()
    assert check(late + timedelta(minutes=2)) == 0
    (alarm,) = all_alarms()
    assert alarm.resolved_at == late + timedelta(minutes=2)
    assert alarms.open_alarms(db.session) == []
    # Resolved for good: a later check neither reopens nor raises it again.
    assert check(late + timedelta(days=1)) == 0
    assert len(all_alarms()) == 1


def test_an_erasure_confirmed_in_time_raises_nothing(erased: Erased) -> None:
    for terminal in (erased.north, erased.south):
        erasure.confirm_items(db.session, terminal, [erased.receipt.template_id])
    db.session.commit()
    assert check(erased.erased_at + timedelta(days=10)) == 0
    assert all_alarms() == []


def test_removing_the_silent_terminals_drops_their_lines_and_resolves_the_alarm(erased: Erased) -> None:
    late = erased.erased_at + timedelta(hours=30)
    check(late)
    erasure.confirm_items(db.session, erased.north, [erased.receipt.template_id])
    db.session.delete(erased.south)
    db.session.commit()
    check(late)
    assert all_alarms()[0].resolved_at == late


def test_one_alarm_per_receipt_and_only_for_overdue_ones(erased: Erased, keys: ServerKeys) -> None:
    first = erased.erased_at
    later = erase_one(erased.site, erased.person, [erased.north], keys)
    later.erased_on_server_at = first + timedelta(hours=10)
    db.session.commit()
    assert check(first + timedelta(hours=25)) == 1
    assert check(first + timedelta(hours=35)) == 1
    assert sorted(a.ref for a in all_alarms()) == sorted([str(erased.receipt.id), str(later.id)])


def test_a_warning_is_logged_without_the_persons_name(erased: Erased, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="server.services.privacy.alarms"):
        check(erased.erased_at + timedelta(hours=25))
    (record,) = [r for r in caplog.records if r.name == "server.services.privacy.alarms"]
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert erased.north.ident in message and str(erased.receipt.id) in message
    assert "Alice" not in message and erased.person.pseudonym not in message


def test_one_site_only(erased: Erased, make_site: Callable[..., Site]) -> None:
    other = make_site("elm")
    assert alarms.check_erasures(db.session, erased.erased_at + timedelta(days=2), site=other) == 0
    assert alarms.check_erasures(db.session, erased.erased_at + timedelta(days=2), site=erased.site) == 1


def test_open_alarms_of_a_site_include_server_wide_ones(erased: Erased, make_site: Callable[..., Site]) -> None:
    other = make_site("elm")
    check(erased.erased_at + timedelta(hours=25))
    db.session.add(Alarm(kind=AlarmKind.FACE_COUNT, ref="80%", message="nearing the filing threshold"))
    db.session.add(
        Alarm(kind=AlarmKind.FACE_COUNT, ref="90%", message="resolved", resolved_at=utcnow(), site_id=other.id)
    )
    db.session.commit()
    assert {a.ref for a in alarms.open_alarms(db.session)} == {str(erased.receipt.id), "80%"}
    assert {a.ref for a in alarms.open_alarms(db.session, erased.site.id)} == {str(erased.receipt.id), "80%"}
    assert {a.ref for a in alarms.open_alarms(db.session, other.id)} == {"80%"}
    assert db.session.scalar(select(func.count()).select_from(Alarm)) == 3


def test_the_privacy_list_leaves_doors_and_terminals_to_the_guard(erased: Erased) -> None:
    check(erased.erased_at + timedelta(hours=25))
    db.session.add(Alarm(kind=AlarmKind.DOOR_FORCED, ref="e-1", message="forced", site_id=erased.site.id))
    db.session.commit()
    assert [a.kind for a in alarms.open_alarms(db.session, erased.site.id)] == [AlarmKind.ERASURE_OVERDUE]
