"""Enrollment sync over a real mosquitto with TLS and per-terminal ACLs, including the faults it must survive."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from gatehouse_core.configtypes import MqttConfig
from gatehouse_core.mqtt_client import make_client
from gatehouse_core.sealed import unseal
from gatehouse_core.wire.base import encode
from gatehouse_core.wire.messages import Delta, EntryMethod, EventRecord
from gatehouse_core.wire.records import CredentialRecord, PersonRecord, template_context
from gatehouse_core.wire.signing import sign
from gatehouse_core.wire.topics import Channel, terminal_topic
from server.extensions import db
from server.models import (
    AccessEvent,
    ConfirmedBy,
    ConsentChannel,
    Credential,
    Decision,
    ErasureReason,
    Person,
    Terminal,
)
from server.services.access import access
from server.services.face import templates as face_templates
from server.services.people import credentials
from tests.conftest import TEST_ACTOR
from tests.integration.sync_rig import wait_for
from tests.support.privacy import consent_row

pytestmark = pytest.mark.integration

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def compound(app, make_site, make_door, make_person):
    """A site with a face-enabled main gate and a card-only garage, a group for each, and 10 residents."""
    site = make_site()
    site.face_enabled = True
    gate = make_door(site, "Main gate", face=True)
    garage = make_door(site, "Garage")
    residents = access.create_group(db.session, TEST_ACTOR, site, "Residents", [gate], [])
    parking = access.create_group(db.session, TEST_ACTOR, site, "Parking", [garage], [])
    db.session.commit()
    people = [make_person(site, f"Resident {i}") for i in range(10)]
    for person in people:
        access.add_member(db.session, TEST_ACTOR, residents, person)
    db.session.commit()
    return {"site": site, "gate": gate, "garage": garage, "residents": residents, "parking": parking, "people": people}


def card_hashes(record: PersonRecord | None) -> set[str]:
    return {c.hash for c in record.credentials if c.hash} if record else set()


def add_card(keys, person: Person, uid: str) -> Credential:
    credential = credentials.add_card(db.session, TEST_ACTOR, keys, person, uid)
    db.session.commit()
    return credential


def event(door_id: int, person: str | None = None) -> EventRecord:
    return EventRecord(
        uid=str(uuid.uuid4()),
        door=door_id,
        method=EntryMethod.CARD,
        decision=Decision.GRANT,
        reason="ok",
        person=person,
        at=datetime.now(UTC),
    )


def test_enrolled_card_reaches_only_the_terminals_that_need_it_and_revocation_removes_it(rig, compound, keys):
    gate_terminal = rig.add_terminal(compound["site"], [compound["gate"]])
    garage_terminal = rig.add_terminal(compound["site"], [compound["garage"]])
    rig.start_worker()
    gate_terminal.start()
    garage_terminal.start()
    alice = compound["people"][0]

    card = add_card(keys, alice, "04:A2:19:C3")
    wait_for(lambda: len(card_hashes(gate_terminal.person(alice.pseudonym))) == 1, what="card on the gate terminal")
    assert card_hashes(gate_terminal.person(alice.pseudonym)) == {card.lookup_hash}
    # Minimisation: the garage terminal serves no door Alice may use.
    wait_for(garage_terminal.in_sync, what="garage terminal in sync")
    assert garage_terminal.person(alice.pseudonym) is None

    credentials.revoke(db.session, TEST_ACTOR, card)
    db.session.commit()
    wait_for(lambda: not card_hashes(gate_terminal.person(alice.pseudonym)), what="card revoked on the terminal")

    access.remove_member(db.session, TEST_ACTOR, compound["residents"], alice)
    db.session.commit()
    wait_for(lambda: gate_terminal.person(alice.pseudonym) is None, what="Alice removed from the gate terminal")
    wait_for(gate_terminal.in_sync, what="gate terminal in sync")
    wait_for(lambda: rig.expected(gate_terminal.id)[0] == applied_on_server(gate_terminal.id), what="ack recorded")


def applied_on_server(terminal_id: int) -> int:
    db.session.expire_all()
    terminal = db.session.get(Terminal, terminal_id)
    assert terminal is not None
    return terminal.applied_seq


@sqlite_only
def test_face_template_reaches_face_terminals_only_and_erasure_is_confirmed_per_terminal(rig, compound, keys):
    site, gate, garage = compound["site"], compound["gate"], compound["garage"]
    gate_terminal = rig.add_terminal(site, [gate])
    garage_terminal = rig.add_terminal(site, [garage])
    bob = compound["people"][1]
    access.add_member(db.session, TEST_ACTOR, compound["parking"], bob)
    consent = consent_row(bob, ConsentChannel.CONSOLE)
    vector = bytes(range(256)) * 8
    template = face_templates.store_template(db.session, TEST_ACTOR, keys, bob, consent, "w600k_mbf", vector)
    db.session.commit()
    template_id = template.id
    rig.start_worker()
    gate_terminal.start()
    garage_terminal.start()

    wait_for(lambda: bool((r := gate_terminal.person(bob.pseudonym)) and r.templates), what="template on gate")
    record = gate_terminal.person(bob.pseudonym)
    assert record is not None
    sealed = record.templates[0].sealed
    # Sealed with this terminal's own key: it opens there and nowhere else.
    assert unseal(gate_terminal.seal_key, sealed, template_context(bob.pseudonym, template_id)) == vector
    with pytest.raises(Exception, match="authenticate"):
        unseal(garage_terminal.seal_key, sealed, template_context(bob.pseudonym, template_id))
    wait_for(garage_terminal.in_sync, what="garage terminal in sync")
    garage_record = garage_terminal.person(bob.pseudonym)
    assert garage_record is not None and garage_record.templates == ()  # the garage takes no faces

    db.session.refresh(bob)
    receipt = face_templates.delete_template(
        db.session, TEST_ACTOR, bob, bob.face_templates[0], ErasureReason.CONSENT_WITHDRAWN
    )
    db.session.commit()
    receipt_id = receipt.id
    assert [c.terminal_id for c in receipt.confirmations] == [gate_terminal.id]

    wait_for(lambda: not gate_terminal.person(bob.pseudonym).templates, what="template erased on the terminal")

    def confirmed() -> bool:
        db.session.expire_all()
        line = db.session.get(type(receipt), receipt_id).confirmations[0]
        return line.confirmed_at is not None

    wait_for(confirmed, what="erasure confirmed")
    line = db.session.get(type(receipt), receipt_id).confirmations[0]
    assert line.confirmed_by is ConfirmedBy.ITEM_ACK
    # The terminal purges its erasure acknowledgement once the server's receipt names it.
    wait_for(lambda: not gate_terminal.store().pending_erasures(), what="erasure outbox purged")


@sqlite_only
def test_terminal_offline_during_1000_changes_catches_up_with_equal_roster_hash(rig, compound, keys):
    terminal = rig.add_terminal(compound["site"], [compound["gate"], compound["garage"]])
    rig.start_worker()
    terminal.start()
    wait_for(terminal.in_sync, what="initial sync")
    terminal.stop()

    people = compound["people"]
    cards: list[Credential] = []
    for i in range(1000):
        person = people[i % len(people)]
        if i % 3 == 2 and cards:
            credentials.revoke(db.session, TEST_ACTOR, cards.pop(0))
        elif i % 7 == 6:
            group = compound["parking"]
            if person in group.members:
                access.remove_member(db.session, TEST_ACTOR, group, person)
            else:
                access.add_member(db.session, TEST_ACTOR, group, person)
        else:
            cards.append(credentials.add_card(db.session, TEST_ACTOR, keys, person, f"{i:08X}"))
        if i % 50 == 49:
            db.session.commit()
    db.session.commit()
    head, _ = rig.expected(terminal.id)
    assert head - terminal.applied_seq() >= 1000

    terminal.start()
    wait_for(terminal.in_sync, timeout=60, what="catch-up after 1,000 changes")
    assert terminal.roster_hash() == rig.expected(terminal.id)[1]


@sqlite_only
def test_broker_restart_mid_stream_loses_no_change_and_no_event(rig, compound, keys, secure_broker):
    terminal = rig.add_terminal(compound["site"], [compound["gate"]])
    rig.start_worker()
    runtime = terminal.start()
    people = compound["people"]
    sent: list[EventRecord] = []
    for i in range(300):
        add_card(keys, people[i % len(people)], f"B{i:07X}")
        batch = (event(compound["gate"].id, people[i % len(people)].pseudonym),)
        runtime.submit_events(batch)
        sent += batch
        if i == 120:
            secure_broker.restart()
        if i == 200:
            secure_broker.kill()
            secure_broker.start()
    wait_for(terminal.in_sync, timeout=60, what="terminal in sync after broker restarts")
    assert_events_stored_once(sent)
    wait_for(lambda: runtime.store.event_count() == 0, what="event outbox empty")


def assert_events_stored_once(sent: list[EventRecord], timeout: float = 60) -> None:
    uids = [e.uid for e in sent]

    def stored() -> int:
        db.session.expire_all()
        return db.session.scalar(select(func.count()).select_from(AccessEvent).where(AccessEvent.event_uid.in_(uids)))

    wait_for(lambda: stored() == len(uids), timeout=timeout, what=f"{len(uids)} events stored")
    total = db.session.scalar(select(func.count()).select_from(AccessEvent))
    assert total == len(uids)  # nothing stored twice, nothing extra


@sqlite_only
def test_worker_killed_mid_publish_and_restarted_terminal_converges(rig, compound, keys):
    terminal = rig.add_terminal(compound["site"], [compound["gate"]])
    runtime = terminal.start()
    rig.spawn_worker()
    wait_for(terminal.in_sync, what="initial sync")
    people = compound["people"]
    sent: list[EventRecord] = []
    for i in range(400):
        credentials.add_card(db.session, TEST_ACTOR, keys, people[i % len(people)], f"E{i:07X}")
        db.session.commit()
        batch = (event(compound["gate"].id),)
        runtime.submit_events(batch)
        sent += batch
        if i in (150, 300):
            rig.kill_worker()
            rig.spawn_worker()
    wait_for(terminal.in_sync, timeout=60, what="terminal in sync after worker kills")
    assert_events_stored_once(sent)


@sqlite_only
def test_terminal_killed_mid_apply_restarts_consistent(rig, compound, keys, app):
    site = compound["site"]
    terminal = rig.add_terminal(site, [compound["gate"]])
    consent_people = []
    for i in range(600):
        person = Person(site=site, pseudonym=f"p-{i:016x}", full_name=f"Bulk {i}")
        db.session.add(person)
        compound["residents"].members.append(person)
        consent_people.append((person, consent_row(person)))
    for person, consent in consent_people:
        face_templates.store_template(db.session, TEST_ACTOR, keys, person, consent, "w600k_mbf", bytes(2048))
    db.session.commit()
    rig.start_worker()
    for delay in (0.3, 0.8):
        proc = terminal.spawn()
        wait_for(lambda: (terminal.dir / "data" / "terminal.db").exists(), what="terminal store created")
        time.sleep(delay)
        proc.kill()
        proc.wait(10)
        store = terminal.store()
        try:
            # Whatever the moment of the kill, the store holds a whole roster: none, or the complete snapshot.
            assert store.count("person") in (0, 610)
        finally:
            store.close()
    terminal.spawn()
    wait_for(terminal.in_sync, timeout=60, what="terminal in sync after kills")


@sqlite_only
def test_forged_replayed_and_out_of_order_messages_are_ignored(rig, compound, keys, secure_broker):
    terminal = rig.add_terminal(compound["site"], [compound["gate"]])
    rig.start_worker()
    runtime = terminal.start()
    alice = compound["people"][0]
    topic = terminal_topic(compound["site"].code, terminal.ident, Channel.SYNC)

    # Listen as the server account to capture what the worker sends the terminal.
    captured: list[bytes] = []
    spy = make_client("spy", MqttConfig(**secure_broker.server_mqtt()))
    spy.on_message = lambda c, u, m: captured.append(bytes(m.payload))
    spy.connect(secure_broker.server_mqtt()["host"], secure_broker.port)
    spy.subscribe(topic, qos=1)
    spy.loop_start()
    try:
        wait_for(terminal.in_sync, what="initial sync")
        card = add_card(keys, alice, "11223344")
        wait_for(lambda: card_hashes(terminal.person(alice.pseudonym)) == {card.lookup_hash}, what="card applied")
        grant_message = captured[-1]
        credentials.revoke(db.session, TEST_ACTOR, card)
        db.session.commit()
        wait_for(lambda: not card_hashes(terminal.person(alice.pseudonym)), what="card revoked")
        applied = terminal.applied_seq()
        before = terminal.roster_hash()

        person_with_card = terminal_person_with_card(alice.pseudonym, "f" * 64)
        forged = Delta(
            site=compound["site"].code,
            terminal=terminal.ident,
            base_seq=applied,
            seq=applied + 1,
            part=1,
            parts=1,
            records=(person_with_card,),
        )
        ahead = forged.model_copy(update={"base_seq": applied + 5, "seq": applied + 6})
        attempts = [
            encode(forged),  # unsigned
            sign(Ed25519PrivateKey.generate(), topic, encode(forged)),  # signed by another key
            sign(keys.signing_key, topic + "x", encode(forged)),  # signed for another topic
            grant_message,  # replay of a genuine, older message that granted the card
            sign(keys.signing_key, topic, encode(ahead)),  # genuine signature, out of order
        ]
        for payload in attempts:
            spy.publish(topic, payload, qos=1).wait_for_publish(5)
        # A genuine change afterwards still applies, so the attempts above were seen and dropped.
        bob = compound["people"][1]
        card_b = add_card(keys, bob, "55667788")
        wait_for(lambda: card_hashes(terminal.person(bob.pseudonym)) == {card_b.lookup_hash}, what="later change")
        assert not card_hashes(terminal.person(alice.pseudonym))
        assert "f" * 64 not in card_hashes(terminal.person(alice.pseudonym))
        assert terminal.applied_seq() > applied
        wait_for(terminal.in_sync, what="in sync after the attempts")
        assert before != terminal.roster_hash()
        assert runtime.state.value == "online"
    finally:
        spy.loop_stop()
        spy.disconnect()


def terminal_person_with_card(pseudonym: str, digest: str) -> PersonRecord:
    return PersonRecord(
        pseudonym=pseudonym, groups=(1,), credentials=(CredentialRecord(id=999, kind="card", hash=digest),)
    )


@sqlite_only
def test_events_for_doors_the_terminal_does_not_serve_are_refused_and_purged(rig, compound):
    terminal = rig.add_terminal(compound["site"], [compound["gate"]])
    rig.start_worker()
    runtime = terminal.start()
    good, bad = event(compound["gate"].id), event(compound["garage"].id)
    runtime.submit_events((good, bad))
    assert_events_stored_once([good])
    wait_for(lambda: runtime.store.event_count() == 0, what="both events settled")
    stored = db.session.scalar(select(AccessEvent).where(AccessEvent.event_uid == good.uid))
    assert stored is not None and stored.terminal_id == terminal.id
