"""What a terminal holds: its roster records, as sent by the server and stored by the terminal.

A terminal holds only what its own doors need (minimisation): its doors' policies, the access groups
that cover them, the people allowed through them with their credential hashes, face templates of
people with active consent (only if one of its doors takes face), and visitor passes for its doors.
Secrets (face templates, app-code seeds) travel and rest sealed with the terminal's own key.

Both sides compute the roster hash from the same records with `roster_hash`, so the server can tell
whether a terminal holds exactly what it should.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable
from datetime import date
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AwareDatetime, Field, SerializerFunctionWrapHandler, model_serializer

from gatehouse_core.wire.base import WireModel

# Database ids and sequence numbers are 32-bit on the server (PostgreSQL INTEGER).
MAX_INT = 2**31 - 1
Ident = Annotated[int, Field(ge=1, le=MAX_INT)]
Pseudonym = Annotated[str, Field(pattern=r"^p-[0-9a-f]{16}$")]
Sealed = Annotated[bytes, Field(min_length=28, max_length=8192)]
Hash = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


Minute = Annotated[int, Field(ge=0, le=1440)]
Weekday = Annotated[int, Field(ge=0, le=6)]


class GroupRecord(WireModel):
    """An access group, cut down to this terminal's doors, with its weekly windows [start, end)."""

    kind: Literal["group"] = "group"
    id: Ident
    doors: tuple[Ident, ...]
    windows: tuple[tuple[Weekday, Minute, Minute], ...]
    open_on_holidays: bool

    @property
    def key(self) -> str:
        """Identity of the record within its kind."""
        return str(self.id)


class OfflinePolicy(enum.StrEnum):
    """What a terminal does once it has not heard from the server for the site's max_offline_hours."""

    # Residents and staff keep getting in; visitor passes and credentials added since the last contact are refused.
    KEEP_RESIDENTS = "keep_residents"
    # Only staff (guards') cards open; everything else is refused until the server is heard again.
    FAIL_SECURE = "fail_secure"


class GrownRecord(WireModel):
    """A record that gained fields after terminals first stored it.

    The fields named in `later_fields` are left out of the JSON while they hold their default, so such a
    record encodes, and fingerprints, exactly as before they existed: stored rosters keep their hash and
    terminals that do not know the fields yet still accept it.
    """

    later_fields: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _omit_later_defaults(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        fields = type(self).model_fields
        for name in self.later_fields:
            if name in data and getattr(self, name) == fields[name].default:
                del data[name]
        return data


class DoorMode(enum.StrEnum):
    """A door's mode, set by the server until lifted (an override) and persisted with the roster."""

    NORMAL = "normal"
    LOCKDOWN = "lockdown"  # only designated staff credentials open; face, codes and passes refused
    EMERGENCY_RELEASE = "emergency_release"  # held unlocked for everyone (a fire)


class DoorRecord(GrownRecord):
    """A door this terminal serves, the entry methods it takes, its mode and its unlock schedule.

    The unlock schedule holds the door unlocked for everyone in its weekly windows [start, end) in the site's
    time zone; with `first_person_in` only once someone has been granted entry in that window.
    """

    later_fields = ("mode", "unlock_windows", "first_person_in", "unlock_on_holidays")

    kind: Literal["door"] = "door"
    id: Ident
    face: bool
    card: bool
    id_document: bool
    app_code: bool
    mode: DoorMode = DoorMode.NORMAL
    unlock_windows: Annotated[tuple[tuple[Weekday, Minute, Minute], ...], Field(max_length=64)] = ()
    first_person_in: bool = False
    unlock_on_holidays: bool = False

    @property
    def key(self) -> str:
        """Identity of the record within its kind."""
        return str(self.id)


DEFAULT_MAX_OFFLINE_HOURS = 72
MAX_OFFLINE_HOURS = 8760  # a year


class SiteRecord(GrownRecord):
    """Site-wide settings a terminal needs to decide: time zone, holidays, whether face is on, its offline bound."""

    later_fields = ("max_offline_hours", "offline_policy")

    kind: Literal["site"] = "site"
    timezone: Annotated[str, Field(min_length=1, max_length=64)]
    face_enabled: bool
    holidays: tuple[date, ...]
    # Hours without hearing from the server after which a terminal applies offline_policy (terminals/offline_bound.py).
    max_offline_hours: Annotated[int, Field(ge=1, le=MAX_OFFLINE_HOURS)] = DEFAULT_MAX_OFFLINE_HOURS
    offline_policy: OfflinePolicy = OfflinePolicy.KEEP_RESIDENTS

    @property
    def key(self) -> str:
        """There is one site record."""
        return "site"


class CredentialRecord(WireModel):
    """A card or ID document (keyed hash) or an app-code seed (sealed)."""

    id: Ident
    kind: Literal["card", "id_document", "app_code"]
    hash: Hash | None = None
    sealed: Sealed | None = None


class TemplateRecord(WireModel):
    """A face template, sealed with the terminal's key; its id never changes meaning."""

    id: Ident
    model: Annotated[str, Field(min_length=1, max_length=64)]
    sealed: Sealed


class PersonRecord(GrownRecord):
    """A person allowed through at least one of this terminal's doors; no name, no photo.

    `person_kind` is who they are to the site (server PersonKind): past the offline bound it decides who
    still gets in (staff's cards under either policy, residents too under keep_residents).
    """

    later_fields = ("person_kind",)

    kind: Literal["person"] = "person"
    pseudonym: Pseudonym
    groups: tuple[Ident, ...]
    credentials: tuple[CredentialRecord, ...] = ()
    templates: tuple[TemplateRecord, ...] = ()
    person_kind: Literal["resident", "staff", "visitor"] = "resident"

    @property
    def key(self) -> str:
        """Identity of the record within its kind."""
        return self.pseudonym


EventUid = Annotated[str, Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
MAX_PASS_USES = 100


class PassRecord(WireModel):
    """A visitor pass valid at some of this terminal's doors, kept (revoked or used up) until it ends.

    A revoked or used-up pass stays in the roster until the server expires it, so that a terminal can
    refuse its signed QR token, which it would otherwise accept offline. `used` names the granted
    events the server has counted, so a terminal adds its own not-yet-counted uses without counting
    any twice.
    """

    kind: Literal["pass"] = "pass"
    id: Ident
    doors: tuple[Ident, ...]
    valid_from: AwareDatetime
    valid_until: AwareDatetime
    uses_allowed: Annotated[int, Field(ge=1, le=MAX_PASS_USES)]
    uses_count: Annotated[int, Field(ge=0, le=MAX_INT)]
    used: Annotated[tuple[EventUid, ...], Field(max_length=MAX_PASS_USES * 2)] = ()
    revoked: bool = False
    code_hash: Hash

    @property
    def key(self) -> str:
        """Identity of the record within its kind."""
        return str(self.id)


Record = Annotated[DoorRecord | GroupRecord | SiteRecord | PersonRecord | PassRecord, Field(discriminator="kind")]
RecordKind = Literal["door", "group", "site", "person", "pass"]


class Removal(WireModel):
    """A record the terminal must drop (and erase, for people and their templates)."""

    kind: RecordKind
    key: Annotated[str, Field(min_length=1, max_length=64)]


_UNSEALED = {"credentials": {"__all__": {"sealed"}}, "templates": {"__all__": {"sealed"}}}


def fingerprint(record: DoorRecord | GroupRecord | SiteRecord | PersonRecord | PassRecord) -> str:
    """SHA-256 of a record's JSON without its sealed parts (their ciphertexts differ per seal).

    Field order is the declaration order of this shared module, so server and terminal agree.
    """
    return hashlib.sha256(record.model_dump_json(exclude=_UNSEALED).encode()).hexdigest()


def roster_hash(entries: Iterable[tuple[str, str, str]]) -> str:
    """Hash of a whole roster from (kind, key, fingerprint) triples, in any order."""
    digest = hashlib.sha256()
    for kind, key, print_ in sorted(entries):
        digest.update(f"{kind}\0{key}\0{print_}\n".encode())
    return digest.hexdigest()


EMPTY_ROSTER_HASH = roster_hash(())


def template_context(pseudonym: str, template_id: int) -> str:
    """Associated data binding a template sealed for a terminal to its owner."""
    return f"terminal-template:{pseudonym}:{template_id}"


def seed_context(pseudonym: str, credential_id: int) -> str:
    """Associated data binding an app-code seed sealed for a terminal to its owner."""
    return f"terminal-app-code:{pseudonym}:{credential_id}"
