"""Key cards, ID documents and app-code secrets; stored only as keyed hashes or sealed secrets."""

from __future__ import annotations

import secrets

from sqlalchemy import select

from gatehouse_core.credential_hash import (
    CredentialFormatError,
    CredentialKind,
    hash_card,
    hash_id_document,
    site_hashing_key,
)
from gatehouse_core.keyring import ServerKeys
from gatehouse_core.sealed import seal
from server.models import Credential, CredentialStatus, JournalKind, Person, PersonStatus, Site, utcnow
from server.services import audit, journal
from server.services.audit import Actor
from server.services.errors import Conflict, RuleViolation
from server.services.session import DbSession

APP_CODE_SEED_BYTES = 20  # RFC 4226 recommends 160-bit shared secrets
# The shared credential format checks speak in fragments; staff read a sentence saying what to enter.
_FORMAT_HELP = {
    CredentialKind.CARD: (
        "Enter the card number as printed on the card or shown by a desk reader: 8, 14 or 20 hexadecimal digits "
        "(0-9, A-F)."
    ),
    CredentialKind.ID_DOCUMENT: "Enter the ID document number as 5 to 32 letters and digits.",
}


def _check_person(person: Person) -> None:
    if person.status is not PersonStatus.ACTIVE:
        raise RuleViolation("Credentials can only be added for people who are active at the site.", code="inactive")


def _free_digest(session: DbSession, keys: ServerKeys, site: Site, kind: CredentialKind, value: str) -> str:
    """The keyed hash of a card UID or ID number, refused if malformed or active for someone at the site."""
    site_key = site_hashing_key(keys.credential_secret, site.code)
    try:
        digest = hash_card(site_key, value) if kind is CredentialKind.CARD else hash_id_document(site_key, value)
    except CredentialFormatError:
        raise RuleViolation(_FORMAT_HELP[kind], code=f"bad_{kind.value}") from None
    taken = session.scalar(
        select(Credential).where(
            Credential.site_id == site.id,
            Credential.kind == kind,
            Credential.lookup_hash == digest,
            Credential.status == CredentialStatus.ACTIVE,
        )
    )
    if taken is not None:
        label = "card" if kind is CredentialKind.CARD else "ID document"
        raise Conflict(
            f"This {label} is already registered to someone at this site; revoke it there first.",
            code="credential_taken",
        )
    return digest


def check_new_card(session: DbSession, keys: ServerKeys, site: Site, uid: str) -> None:
    """Refuse a card UID that is malformed or already active at `site`, before anything is created for it."""
    _free_digest(session, keys, site, CredentialKind.CARD, uid)


def _add_hashed(
    session: DbSession, actor: Actor, keys: ServerKeys, person: Person, kind: CredentialKind, value: str
) -> Credential:
    _check_person(person)
    digest = _free_digest(session, keys, person.site, kind, value)
    credential = Credential(site_id=person.site_id, person=person, kind=kind, lookup_hash=digest)
    session.add(credential)
    session.flush()
    _journal_added(session, actor, person, credential, {"hash": digest})
    return credential


def _journal_added(
    session: DbSession, actor: Actor, person: Person, credential: Credential, extra: dict[str, str]
) -> None:
    """Tell terminals about a new credential (outbox) and audit it, without its value."""
    kind = credential.kind.value
    journal.append(
        session,
        person.site_id,
        JournalKind.CREDENTIAL_ADD,
        {"person": person.pseudonym, "credential": credential.id, "kind": kind, **extra},
    )
    audit.record(
        session,
        actor,
        "credential.add",
        "person",
        person.id,
        site_id=person.site_id,
        details={"credential": credential.id, "kind": kind},
    )


def add_card(session: DbSession, actor: Actor, keys: ServerKeys, person: Person, uid: str) -> Credential:
    """Register a key card by its UID (typed, or read at a desk or door reader)."""
    return _add_hashed(session, actor, keys, person, CredentialKind.CARD, uid)


def add_id_document(session: DbSession, actor: Actor, keys: ServerKeys, person: Person, number: str) -> Credential:
    """Register an ID document by its number."""
    return _add_hashed(session, actor, keys, person, CredentialKind.ID_DOCUMENT, number)


def issue_app_code_secret(
    session: DbSession, actor: Actor, keys: ServerKeys, person: Person
) -> tuple[Credential, bytes]:
    """Create a fresh app-code seed; it is returned once for provisioning and kept only sealed."""
    _check_person(person)
    for old in person.credentials:
        if old.kind is CredentialKind.APP_CODE and old.status is CredentialStatus.ACTIVE:
            revoke(session, actor, old)
    seed = secrets.token_bytes(APP_CODE_SEED_BYTES)
    credential = Credential(
        site_id=person.site_id,
        person=person,
        kind=CredentialKind.APP_CODE,
        sealed_secret=seal(keys.template_key, seed, app_code_context(person.id)),
    )
    session.add(credential)
    session.flush()
    _journal_added(session, actor, person, credential, {})
    return credential, seed


def app_code_context(person_id: int) -> str:
    """Associated data that binds a sealed app-code seed to its owner."""
    return f"app_code:person={person_id}"


def revoke(session: DbSession, actor: Actor, credential: Credential) -> None:
    """Revoke a credential; terminals learn it before any later grant."""
    if credential.status is CredentialStatus.REVOKED:
        return
    credential.status = CredentialStatus.REVOKED
    credential.revoked_at = utcnow()
    journal.append(
        session,
        credential.site_id,
        JournalKind.CREDENTIAL_REVOKE,
        {"person": credential.person.pseudonym, "credential": credential.id},
    )
    audit.record(
        session,
        actor,
        "credential.revoke",
        "person",
        credential.person_id,
        site_id=credential.site_id,
        details={"credential": credential.id, "kind": credential.kind.value},
    )
