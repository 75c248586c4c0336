"""A real terminal process cut off from the server past its site's bound applies the site's policy, marks every
decision in its event, and stops the moment the server is heard again (real mosquitto, real worker)."""

from __future__ import annotations

import sqlite3
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gatehouse_core.schedule import ALWAYS
from gatehouse_core.wire.records import OfflinePolicy
from server.extensions import db
from server.models import AccessEvent, PersonKind, utcnow
from server.services.access import access
from server.services.people import credentials
from server.services.visitors import passes
from terminals import control
from tests.conftest import TEST_ACTOR
from tests.integration.sync_rig import SyncRig, TerminalHandle, wait_for

pytestmark = pytest.mark.integration

RESIDENT_CARD = "04A2B3C4D5E6F7"
GUARD_CARD = "04A2B3C4D5E6F8"
BOUND_HOURS = 72


def status(socket_path: Path) -> dict[str, Any]:
    """The terminal's status, or {} while its process is not answering yet (a killed one leaves its socket file)."""
    try:
        return control.send(socket_path, {"op": "status"})
    except OSError:
        return {}


def server_events() -> list[AccessEvent]:
    db.session.expire_all()
    found = list(db.session.scalars(select(AccessEvent).order_by(AccessEvent.id)))
    db.session.rollback()
    return found


def cut_off_for(handle: TerminalHandle, silent: timedelta) -> None:
    """While the terminal is stopped: its last word from the server was `silent` ago, and every credential it holds
    had arrived long before (as if it had run for weeks); only the clock is moved, nothing else in its store."""
    store = sqlite3.connect(Path(handle.document["data_dir"]) / "terminal.db")
    with store:
        store.execute(
            "INSERT OR REPLACE INTO meta VALUES ('last_contact', ?)", (repr(time.time() - silent.total_seconds()),)
        )
        store.execute("UPDATE received SET at = 1")
    store.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("policy", "resident_admitted"), [(OfflinePolicy.KEEP_RESIDENTS, True), (OfflinePolicy.FAIL_SECURE, False)]
)
def test_a_terminal_cut_off_past_the_bound_applies_the_policy_and_marks_its_events(
    rig: SyncRig, keys, make_site, make_door, make_person, policy: OfflinePolicy, resident_admitted: bool
) -> None:
    site = make_site()
    site.offline_policy, site.max_offline_hours = policy, BOUND_HOURS
    gate = make_door(site, "Gate")
    group = access.create_group(db.session, TEST_ACTOR, site, "Everyone", [gate], ALWAYS.windows)
    db.session.commit()
    resident = make_person(site, "Resident")
    guard = make_person(site, "Guard", kind=PersonKind.STAFF)
    for person, card in ((resident, RESIDENT_CARD), (guard, GUARD_CARD)):
        access.add_member(db.session, TEST_ACTOR, group, person)
        credentials.add_card(db.session, TEST_ACTOR, keys, person, card)
    now = utcnow()
    issued = passes.issue_pass(
        db.session,
        TEST_ACTOR,
        keys,
        resident,
        "Visitor",
        now - timedelta(minutes=1),
        now + timedelta(hours=2),
        [gate],
        5,
    )
    db.session.commit()

    handle = rig.add_terminal(site, [gate], "Gate terminal")
    rig.start_worker()
    handle.spawn()  # the real `gatehouse terminal run`, driven through its control socket
    socket_path = Path(handle.document["control_socket"])
    wait_for(lambda: socket_path.exists() and handle.in_sync(), what="terminal process up and in sync")
    wait_for(lambda: status(socket_path)["offline_bound"]["last_contact"] is not None, what="a first contact")
    assert status(socket_path)["offline_bound"]["past"] is False

    # The server goes silent (the broker stays up), and the terminal's clock runs past the bound.
    rig.stop_workers()
    handle.kill()
    cut_off_for(handle, timedelta(hours=BOUND_HOURS, minutes=5))
    handle.spawn()
    wait_for(lambda: socket_path.exists() and "offline_bound" in status(socket_path), what="terminal process back")
    assert status(socket_path)["offline_bound"] | {"last_contact": None} == {
        "past": True,
        "policy": policy.value,
        "last_contact": None,
    }

    def present(op: str, **fields: Any) -> bool:
        answer = control.send(socket_path, {"op": op, "door": gate.id, **fields})
        assert "error" not in answer, answer
        return bool(answer["granted"])

    assert present("card", uid=RESIDENT_CARD) is resident_admitted
    assert present("card", uid=GUARD_CARD)  # staff cards open under either policy
    assert not present("code", digits=issued.code)  # visitor passes never do past the bound
    assert server_events() == []  # nobody to deliver them to yet

    # The server is back: the policy stops at once, and what was decided past the bound arrives marked.
    rig.start_worker()
    wait_for(lambda: status(socket_path)["offline_bound"]["past"] is False, what="contact with the server again")
    assert present("card", uid=RESIDENT_CARD)
    wait_for(lambda: len(server_events()) == 4, what="the four events on the server")
    events = server_events()
    marked = [(e.person_pseudonym, e.pass_id, e.reason, e.past_offline_bound) for e in events]
    assert marked == [
        (resident.pseudonym, None, "granted" if resident_admitted else "offline_bound", True),
        (guard.pseudonym, None, "granted", True),
        (None, issued.visitor_pass.id, "offline_bound", True),
        (resident.pseudonym, None, "granted", False),
    ]
