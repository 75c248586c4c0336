"""Console terminals: the list, one terminal's page, re-sync, opening a door with a reason, live command status."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from gatehouse_core.wire.messages import EntryMethod
from server.extensions import db
from server.models import AuditEntry, CommandOp, CommandStatus, ConsoleRole, TerminalCommand, TerminalStatus, utcnow
from server.services.access import sites
from server.services.terminals import terminals
from tests.conftest import TEST_ACTOR, csrf_token, login
from tests.server.console.test_events import add_events, make_site, make_terminal


@pytest.fixture
def setup(app):
    north = make_site("north", "North Park")
    other = make_site("other", "Other Court")
    gate = sites.save_door(db.session, TEST_ACTOR, north, "Main gate", sites.DoorMethods())
    side = sites.save_door(db.session, TEST_ACTOR, north, "Side door", sites.DoorMethods())
    foreign = sites.save_door(db.session, TEST_ACTOR, other, "Far gate", sites.DoorMethods())
    terminal = make_terminal(north, "Gate terminal", [gate])
    spare = make_terminal(north, "Side terminal", [side])
    db.session.commit()
    terminals.record_status(db.session, "north", terminal.ident, online=True)
    terminal.software_version = "gatehouse-terminal 1.4.2"
    terminal.applied_seq = 1
    terminals.record_status(db.session, "north", spare.ident, online=False)
    db.session.commit()
    return {"site": north, "gate": gate, "side": side, "foreign": foreign, "terminal": terminal, "spare": spare}


def _login(client, make_user, role):
    make_user(f"{role.value}1", role)
    login(client, f"{role.value}1")
    return client


def test_index_lists_status_versions_and_lag(client, make_user, setup):
    _login(client, make_user, ConsoleRole.GUARD)
    page = client.get("/terminals")
    assert page.status_code == 200
    terminal, spare, site = setup["terminal"], setup["spare"], setup["site"]
    row = re.search(rf'<tr class="rowlink" data-terminal="{terminal.id}">(.*?)</tr>', page.text, re.S).group(1)
    assert "Gate terminal" in row and terminal.ident in row and "North Park" in row and "Main gate" in row
    # Status is a badge with words and an icon, not only colour.
    assert re.search(
        r'data-status="online"><span class="badge badge-ok"[^>]*><svg[^>]*>.*?</svg><span>Online</span>', row
    )
    assert "gatehouse-terminal 1.4.2" in row
    assert f'data-lag="{site.journal_seq - 1}"' in row
    spare_row = re.search(rf'<tr class="rowlink" data-terminal="{spare.id}">(.*?)</tr>', page.text, re.S).group(1)
    assert (
        re.search(
            r'data-status="offline"><span class="badge badge-bad"[^>]*><svg[^>]*>.*?</svg><span>Offline</span>',
            spare_row,
        )
        and f'data-lag="{site.journal_seq}"' in spare_row
    )
    assert "<caption" in page.text and 'scope="col"' in page.text


def test_show_page_has_details_events_and_actions(client, make_user, setup):
    terminal, site, gate = setup["terminal"], setup["site"], setup["gate"]
    now = utcnow()
    add_events(
        *({"site": site, "door": gate, "terminal": terminal, "at": now - timedelta(minutes=i)} for i in range(25)),
        {"site": site, "door": setup["side"], "terminal": setup["spare"], "method": EntryMethod.FACE, "at": now},
    )
    _login(client, make_user, ConsoleRole.MANAGER)
    page = client.get(f"/terminals/{terminal.id}")
    assert page.status_code == 200
    assert terminal.ident in page.text and "gatehouse-terminal 1.4.2" in page.text
    # The latest 20 of its own events, not the other terminal's.
    assert len(re.findall(r'data-event="\d+"', page.text)) == 20
    assert "Face" not in re.search(r'<h2 id="recent-events">.*?Recent events</h2>(.*)', page.text, re.S).group(1)
    assert '<label for="door">Door</label>' in page.text and '<label for="reason">Reason</label>' in page.text
    assert "Re-sync this terminal" in page.text
    assert client.get("/terminals/99999").status_code == 404


def test_resync_queues_a_command_and_audits_it(client, make_user, setup):
    terminal = setup["terminal"]
    _login(client, make_user, ConsoleRole.MANAGER)
    page = client.get(f"/terminals/{terminal.id}")
    response = client.post(f"/terminals/{terminal.id}/resync", data={"csrf_token": csrf_token(page.text)})
    assert response.status_code == 302
    command = db.session.scalars(select(TerminalCommand)).one()
    assert command.op is CommandOp.RESYNC and command.terminal_id == terminal.id
    assert command.status is CommandStatus.PENDING
    assert response.headers["Location"].endswith(f"/terminals/{terminal.id}?command={command.id}")
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "terminal.resync")).one()
    assert entry.actor_label == "manager1" and entry.details["command"] == command.ref
    shown = client.get(response.headers["Location"])
    # The page polls the command's status in a live region until it is final.
    assert f'data-poll="/terminals/commands/{command.id}"' in shown.text and 'aria-live="polite"' in shown.text


def test_resync_needs_csrf(client, make_user, setup):
    _login(client, make_user, ConsoleRole.ADMIN)
    response = client.post(f"/terminals/{setup['terminal'].id}/resync")
    assert response.status_code == 400
    assert db.session.scalars(select(TerminalCommand)).all() == []


def test_open_door_records_the_reason(client, make_user, setup):
    terminal, gate = setup["terminal"], setup["gate"]
    _login(client, make_user, ConsoleRole.MANAGER)
    page = client.get(f"/terminals/{terminal.id}")
    response = client.post(
        f"/terminals/{terminal.id}/open",
        data={"csrf_token": csrf_token(page.text), "door": gate.id, "reason": "  Parcel   delivery  "},
    )
    assert response.status_code == 302
    command = db.session.scalars(select(TerminalCommand)).one()
    assert command.op is CommandOp.OPEN_DOOR and command.door_id == gate.id
    # One audit entry: who asked, for which door, through which command, and why.
    entries = db.session.scalars(select(AuditEntry).where(AuditEntry.action.like("terminal.open%"))).all()
    assert [e.action for e in entries] == ["terminal.open_door"]
    assert entries[0].details == {"command": command.ref, "door_id": gate.id, "reason": "Parcel delivery"}
    assert entries[0].actor_label == "manager1" and entries[0].site_id == terminal.site_id
    follow = client.get(response.headers["Location"])
    assert "Asked Gate terminal to open Main gate." in follow.text


@pytest.mark.parametrize("door_key", ["foreign", "side", None])
def test_open_refused_for_a_door_the_terminal_does_not_serve(client, make_user, setup, door_key):
    terminal = setup["terminal"]
    door_id = setup[door_key].id if door_key else 987654
    _login(client, make_user, ConsoleRole.GUARD)
    page = client.get(f"/terminals/{terminal.id}")
    response = client.post(
        f"/terminals/{terminal.id}/open",
        data={"csrf_token": csrf_token(page.text), "door": door_id, "reason": "Let the plumber in"},
    )
    assert response.status_code == 400
    assert "This terminal does not serve that door." in response.text
    assert 'id="door-error" role="alert"' in response.text and 'aria-invalid="true"' in response.text
    # The user's reason is kept, and nothing was queued or audited.
    assert 'value="Let the plumber in"' in response.text
    assert db.session.scalars(select(TerminalCommand)).all() == []
    assert db.session.scalars(select(AuditEntry).where(AuditEntry.action.like("terminal.open%"))).all() == []


def test_open_needs_a_reason(client, make_user, setup):
    terminal = setup["terminal"]
    _login(client, make_user, ConsoleRole.GUARD)
    page = client.get(f"/terminals/{terminal.id}")
    response = client.post(
        f"/terminals/{terminal.id}/open",
        data={"csrf_token": csrf_token(page.text), "door": setup["gate"].id, "reason": "   "},
    )
    assert response.status_code == 400
    assert "Say why the door is being opened." in response.text and 'id="reason-error"' in response.text
    assert db.session.scalars(select(TerminalCommand)).all() == []


@pytest.mark.parametrize(
    ("status", "outcome", "text", "final"),
    [
        (CommandStatus.PENDING, None, "Waiting to be sent", False),
        (CommandStatus.SENT, None, "Sent, waiting for the terminal", False),
        (CommandStatus.DONE, "opened", "the door was opened", True),
        (CommandStatus.FAILED, "no_such_door", "the terminal does not know this door", True),
        (CommandStatus.EXPIRED, "expired", "Expired: the terminal did not answer in time", True),
    ],
)
def test_command_status_fragment(client, make_user, setup, status, outcome, text, final):
    from server.services.audit import Actor
    from server.services.terminals import commands

    terminal, gate = setup["terminal"], setup["gate"]
    command = commands.open_door(db.session, Actor("test"), terminal, gate)
    command.status, command.outcome = status, outcome
    db.session.commit()
    _login(client, make_user, ConsoleRole.GUARD)
    fragment = client.get(f"/terminals/commands/{command.id}")
    assert fragment.status_code == 200
    assert text in fragment.text and "Main gate" in fragment.text
    assert f'data-status="{status.value}"' in fragment.text
    assert ("data-final" in fragment.text) is final
    assert "<html" not in fragment.text
    assert client.get("/terminals/commands/424242").status_code == 404


def test_unanswered_command_past_its_deadline_shows_as_expired(client, make_user, setup):
    from server.services.audit import Actor
    from server.services.terminals import commands

    command = commands.request_resync(db.session, Actor("test"), setup["terminal"], at=utcnow() - timedelta(minutes=5))
    db.session.commit()
    _login(client, make_user, ConsoleRole.GUARD)
    fragment = client.get(f"/terminals/commands/{command.id}")
    assert 'data-status="expired"' in fragment.text and "data-final" in fragment.text
    page = client.get(f"/terminals/{setup['terminal'].id}?command={command.id}")
    # Already final: the page does not poll.
    assert "data-poll=" not in page.text and 'data-status="expired"' in page.text


def test_guard_can_open_but_not_resync(client, make_user, setup):
    terminal = setup["terminal"]
    _login(client, make_user, ConsoleRole.GUARD)
    page = client.get(f"/terminals/{terminal.id}")
    assert "Re-sync this terminal" not in page.text
    token = csrf_token(page.text)
    assert client.post(f"/terminals/{terminal.id}/resync", data={"csrf_token": token}).status_code == 403
    opened = client.post(
        f"/terminals/{terminal.id}/open", data={"csrf_token": token, "door": setup["gate"].id, "reason": "Ambulance"}
    )
    assert opened.status_code == 302
    ops = db.session.scalars(select(TerminalCommand.op)).all()
    assert ops == [CommandOp.OPEN_DOOR]
    assert db.session.get(type(terminal), terminal.id).status is TerminalStatus.ONLINE
