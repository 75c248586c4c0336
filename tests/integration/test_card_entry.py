"""A key card at a real PC/SC reader opens the door end to end: pcscd with vsmartcard's virtual reader and
card → pyscard reads the UID (GET DATA) → the terminal decides from its synced roster → the relay pulses →
the event reaches the server over a real, secured mosquitto."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gatehouse_core.schedule import ALWAYS
from server.extensions import db
from server.models import AccessEvent, Decision
from server.services.access import access
from server.services.people import credentials
from terminals.relay import SimulatedRelay
from tests.conftest import TEST_ACTOR
from tests.integration.sync_rig import SyncRig, wait_for
from tests.support.pcsc import VIRTUAL_READER, VirtualCard

pytestmark = pytest.mark.integration

RESIDENT_CARD = "04A2B3C4D5E6F7"
STRANGER_CARD = "04FFEEDDCCBBAA"


def events_at(door_id: int) -> list[AccessEvent]:
    db.session.expire_all()
    found = list(db.session.scalars(select(AccessEvent).where(AccessEvent.door_id == door_id).order_by(AccessEvent.id)))
    db.session.rollback()
    return found


def test_card_at_a_real_reader_opens_the_door_and_the_event_reaches_the_server(
    rig: SyncRig, keys, card: VirtualCard, make_site, make_door, make_person
) -> None:
    site = make_site()
    gate = make_door(site, "Main gate")
    group = access.create_group(db.session, TEST_ACTOR, site, "Residents", [gate], ALWAYS.windows)
    db.session.commit()
    resident = make_person(site, "Resident")
    access.add_member(db.session, TEST_ACTOR, group, resident)
    credentials.add_card(db.session, TEST_ACTOR, keys, resident, RESIDENT_CARD)
    db.session.commit()

    terminal = rig.add_terminal(site, [gate], "Gate terminal")
    terminal.document["card_readers"] = [{"door": gate.id, "reader": VIRTUAL_READER}]
    rig.start_worker()
    relay = SimulatedRelay()
    terminal.start(relay=relay)
    wait_for(terminal.in_sync, what="terminal in sync")

    card.present(RESIDENT_CARD)
    wait_for(lambda: any(door == gate.id and unlocked for _, door, unlocked in relay.history), what="door unlocked")
    wait_for(lambda: len(events_at(gate.id)) == 1, what="the event on the server")
    event = events_at(gate.id)[0]
    assert (event.method.value, event.decision, event.reason) == ("card", Decision.GRANT, "granted")
    assert event.person_pseudonym == resident.pseudonym
    # The pulse ends and the door locks again.
    wait_for(lambda: relay.history[-1][1:] == (gate.id, False), timeout=10, what="door locked again")
    card.remove()

    card.present(STRANGER_CARD)
    wait_for(lambda: len(events_at(gate.id)) == 2, what="the refusal on the server")
    refused = events_at(gate.id)[1]
    assert (refused.decision, refused.reason, refused.person_pseudonym) == (Decision.DENY, "unknown", None)
    assert [unlocked for _, door, unlocked in relay.history if door == gate.id] == [True, False]
