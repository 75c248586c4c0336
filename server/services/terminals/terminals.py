"""Door terminals: provisioning, and availability as reported over MQTT."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from gatehouse_core.wire.messages import Ack, Birth, Erased
from server.models import Door, Site, Terminal, TerminalStatus, utcnow
from server.services import audit
from server.services.audit import Actor
from server.services.errors import Conflict, NotFound, RuleViolation
from server.services.privacy import erasure
from server.services.session import DbSession
from server.services.terminals.broker_credentials import generate_password, mosquitto_hash

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProvisionedTerminal:
    """A new terminal and its broker password, which is shown only this once."""

    terminal: Terminal
    mqtt_password: str


def provision_terminal(
    session: DbSession, actor: Actor, site: Site, name: str, doors: Iterable[Door]
) -> ProvisionedTerminal:
    """Register a terminal serving some of the site's doors, with fresh broker credentials."""
    doors = list(doors)
    if not doors:
        raise RuleViolation("A terminal must serve at least one door.", code="no_doors")
    if any(d.site_id != site.id for d in doors):
        raise RuleViolation("A terminal can only serve doors of its own site.", code="foreign_door")
    if session.scalar(select(Terminal.id).where(Terminal.site_id == site.id, Terminal.name == name)):
        raise Conflict(
            f"Site {site.code} already has a terminal named {name!r}; choose another name.", code="duplicate_terminal"
        )
    password = generate_password()
    terminal = Terminal(
        site=site,
        ident=f"t-{secrets.token_hex(6)}",
        name=name.strip(),
        mqtt_password_hash=mosquitto_hash(password),
        doors=doors,
    )
    session.add(terminal)
    session.flush()
    audit.record(
        session,
        actor,
        "terminal.provision",
        "terminal",
        terminal.id,
        site_id=site.id,
        details={"ident": terminal.ident, "doors": [d.id for d in doors]},
    )
    return ProvisionedTerminal(terminal, password)


def find_terminal(session: DbSession, site_code: str, ident: str) -> Terminal:
    """A terminal by the identifiers in its MQTT topic."""
    terminal = session.scalar(select(Terminal).join(Site).where(Terminal.ident == ident, Site.code == site_code))
    if terminal is None:
        raise NotFound(f"There is no terminal {ident!r} at site {site_code!r}.")
    return terminal


def record_status(session: DbSession, site_code: str, ident: str, online: bool, at: datetime | None = None) -> Terminal:
    """Apply an online/offline availability message."""
    terminal = find_terminal(session, site_code, ident)
    terminal.status = TerminalStatus.ONLINE if online else TerminalStatus.OFFLINE
    terminal.last_seen_at = at or utcnow()
    return terminal


def record_birth(session: DbSession, site_code: str, birth: Birth, at: datetime | None = None) -> Terminal:
    """Apply a terminal's birth message: it is online and reports what it has applied."""
    terminal = find_terminal(session, site_code, birth.terminal)
    terminal.status = TerminalStatus.ONLINE
    terminal.last_seen_at = at or utcnow()
    terminal.applied_seq = birth.applied_seq
    terminal.software_version = birth.software
    return terminal


def list_terminals(session: DbSession) -> list[Terminal]:
    """All terminals, by site and name."""
    return list(session.scalars(select(Terminal).join(Site).order_by(Site.code, Terminal.name)))


def rotate_broker_password(session: DbSession, actor: Actor, terminal: Terminal) -> str:
    """Give a terminal a new broker password (the old one stops working); returns it once."""
    password = generate_password()
    terminal.mqtt_password_hash = mosquitto_hash(password)
    audit.record(session, actor, "terminal.rotate_password", "terminal", terminal.id, site_id=terminal.site_id)
    return password


def record_ack(session: DbSession, terminal: Terminal, ack: Ack, at: datetime | None = None) -> list[Erased]:
    """Apply a terminal's acknowledgement; returns the erasures now recorded (to confirm back to it)."""
    at = at or utcnow()
    # Status comes only from status and birth messages: an ack handled after a later "offline" must not undo it.
    terminal.last_seen_at = terminal.last_ack_at = at
    # Acks can arrive out of order after a reconnect; the applied sequence never moves back.
    terminal.applied_seq = max(terminal.applied_seq, ack.applied_seq)
    templates = [int(e.ref) for e in ack.erased if e.kind == "template" and e.ref.isdigit()]
    erasure.confirm_items(session, terminal, templates, at)
    erasure.confirm_through(session, terminal, terminal.applied_seq, at)
    return list(ack.erased)
