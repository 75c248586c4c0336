"""Lockdown and emergency release end to end: the service journals the door's mode, the worker publishes it signed
over a real, secured mosquitto, and a real terminal process decides by it. Lockdown refuses a resident's card and
admits a guard's, survives the terminal being killed and started again while the server is silent, and lifts;
emergency release holds the door unlocked until lifted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import tomli_w

from gatehouse_core.schedule import ALWAYS
from server.extensions import db
from server.models import PersonKind
from server.services.access import access, door_modes
from server.services.people import credentials
from terminals import control
from tests.conftest import TEST_ACTOR
from tests.integration.sync_rig import SyncRig, TerminalHandle, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)]

RESIDENT_CARD = "04A2B3C4D5E6F7"
GUARD_CARD = "04A2B3C4D5E6F8"


@pytest.fixture
def estate(app, keys, make_site, make_door, make_person) -> dict[str, Any]:
    """A site with a gate, one group over it, a resident and a guard (staff), each with a card."""
    site = make_site()
    gate = make_door(site, "Gate")
    group = access.create_group(db.session, TEST_ACTOR, site, "Everyone", [gate], ALWAYS.windows)
    resident = make_person(site, "Li Wei")
    guard = make_person(site, "Wang Fang", kind=PersonKind.STAFF)
    for person, card in ((resident, RESIDENT_CARD), (guard, GUARD_CARD)):
        access.add_member(db.session, TEST_ACTOR, group, person)
        credentials.add_card(db.session, TEST_ACTOR, keys, person, card)
    db.session.commit()
    return {"site": site, "gate": gate}


def spawn(handle: TerminalHandle) -> Path:
    handle.spawn()
    socket_path = Path(handle.document["control_socket"])
    wait_for(lambda: _status(socket_path) is not None, what="the terminal's control socket")
    return socket_path


def _status(socket_path: Path) -> dict[str, Any] | None:
    try:
        return control.send(socket_path, {"op": "status"})
    except (OSError, ValueError):
        return None


def mode(socket_path: Path, door: int) -> str | None:
    status = _status(socket_path)
    return None if status is None else status.get("door_modes", {}).get(str(door))


def opens(socket_path: Path, card: str) -> bool:
    return bool(control.send(socket_path, {"op": "card", "uid": card})["granted"])


@pytest.fixture
def terminal(rig: SyncRig, estate: dict[str, Any]):
    handle = rig.add_terminal(estate["site"], [estate["gate"]], "Gate terminal")
    handle.document["relay"] = {"driver": "simulated", "pulse_ms": 500}
    handle.config_path.write_text(tomli_w.dumps(handle.document))
    rig.start_worker()
    socket_path = spawn(handle)
    wait_for(handle.in_sync, what="terminal in sync")
    yield handle, socket_path
    handle.kill()


def test_lockdown_admits_only_staff_survives_a_restart_and_lifts(rig: SyncRig, estate, terminal) -> None:
    handle, socket_path = terminal
    gate = estate["gate"].id
    assert opens(socket_path, RESIDENT_CARD)

    batch = door_modes.start_lockdown(db.session, TEST_ACTOR, site_id=estate["site"].id, reason="Intruder")
    db.session.commit()
    wait_for(lambda: mode(socket_path, gate) == "lockdown", what="lockdown at the terminal")
    assert not opens(socket_path, RESIDENT_CARD)
    assert opens(socket_path, GUARD_CARD)

    # A power cut while the server is silent: the terminal comes back locked down from its own store.
    rig.stop_workers()
    handle.kill()
    socket_path = spawn(handle)
    assert mode(socket_path, gate) == "lockdown"
    assert not opens(socket_path, RESIDENT_CARD)
    assert opens(socket_path, GUARD_CARD)

    rig.start_worker()
    door_modes.lift(db.session, TEST_ACTOR, batch, "Police left")
    db.session.commit()
    wait_for(lambda: mode(socket_path, gate) == "normal", what="lockdown lifted at the terminal")
    assert opens(socket_path, RESIDENT_CARD)
    wait_for(handle.in_sync, what="terminal in sync after the lift")


def test_emergency_release_holds_the_door_unlocked_until_lifted(estate, terminal) -> None:
    _handle, socket_path = terminal
    gate = estate["gate"].id
    batch = door_modes.start_emergency_release(db.session, TEST_ACTOR, site_id=estate["site"].id, reason="Fire")
    db.session.commit()
    wait_for(lambda: mode(socket_path, gate) == "emergency_release", what="release at the terminal")
    # Held, not pulsed: still unlocked long after a pulse would have ended.
    wait_for(lambda: (_status(socket_path) or {})["door_states"].get(str(gate)) == "unlocked", what="door unlocked")
    assert opens(socket_path, RESIDENT_CARD)  # decisions are still made and logged
    door_modes.lift(db.session, TEST_ACTOR, batch, "Fire out")
    db.session.commit()
    wait_for(lambda: mode(socket_path, gate) == "normal", what="release lifted")
    wait_for(lambda: (_status(socket_path) or {})["door_states"].get(str(gate)) == "locked", what="door locked again")
