"""The door's decision: credential → person or pass → door permission → grant or deny, with a reason.

Everything is decided from the terminal's own store, so a door keeps working without the server. The
same permission check answers for every method: a person's access comes from their access groups,
never from how they identify, so face, card, ID document and app code are equal alternatives.
The person at the door sees only a generic message; the event records the precise reason.
"""

from __future__ import annotations

import enum
import logging
import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gatehouse_core import app_code
from gatehouse_core.credential_hash import (
    CredentialFormatError,
    CredentialKind,
    hash_card,
    hash_id_document,
    hash_pass_code,
)
from gatehouse_core.pass_token import PassClaims, PassTokenError, looks_like_token, verify_pass
from gatehouse_core.schedule import WeeklySchedule, Window
from gatehouse_core.sealed import SealError, unseal
from gatehouse_core.wire.messages import Decision, EntryMethod, EventRecord
from gatehouse_core.wire.records import DoorMode, DoorRecord, PassRecord, PersonRecord, SiteRecord, seed_context
from terminals.app_codes import AppCodeIndex
from terminals.inputs import CardPresented, CodeEntered, FaceAttempt, IdEntered, Presentation, QrScanned
from terminals.lockout import Lockout
from terminals.offline_bound import OfflineState, judge
from terminals.store import TerminalStore

log = logging.getLogger(__name__)


class Reason(enum.StrEnum):
    """Why a presentation was granted or denied (recorded in the event, never shown at the door)."""

    GRANTED = "granted"
    UNKNOWN = "unknown"
    MALFORMED = "malformed"
    OUTSIDE_SCHEDULE = "outside_schedule"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    REVOKED = "revoked"
    USED_UP = "used_up"
    WRONG_DOOR = "wrong_door"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    REPLAYED = "replayed"
    AMBIGUOUS = "ambiguous"
    LOCKED_OUT = "locked_out"
    BRUTE_FORCE = "brute_force"  # the alarm raised when a lockout starts
    FACE_SYNC_PENDING = "face_sync_pending"  # a face while matching waits for sync after a (re)connect
    OFFLINE_BOUND = "offline_bound"  # past the site's max_offline_hours, the site's offline policy refuses it
    LOCKDOWN = "lockdown"  # the door is locked down: only staff cards and ID documents open it


GRANTED_MESSAGE = "Welcome"
DENIED_MESSAGE = "Not admitted. Try another way in, or ask the guard."


@dataclass(frozen=True)
class Verdict:
    """One decision, and what must be remembered with it."""

    method: EntryMethod
    door: int
    reason: Reason
    person: str | None = None
    pass_id: int | None = None
    code_use: tuple[int, int] | None = None  # (credential, step) of a granted app code
    guess: bool = False  # a wrong typed code or number: counts towards the keypad lockout
    past_bound: bool = False  # decided past the site's offline bound (offline_bound.py); marked in the event

    @property
    def granted(self) -> bool:
        """Whether the door opens."""
        return self.reason is Reason.GRANTED

    @property
    def message(self) -> str:
        """What the person at the door is shown."""
        return GRANTED_MESSAGE if self.granted else DENIED_MESSAGE

    def event(self, at: datetime) -> EventRecord:
        """The access event for the outbox: who (pseudonym or pass), how, where, outcome, reason."""
        return EventRecord(
            uid=str(uuid.uuid4()),
            door=self.door,
            method=self.method,
            decision=Decision.GRANT if self.granted else Decision.DENY,
            reason=self.reason.value,
            person=self.person,
            pass_id=self.pass_id,
            at=at,
            past_offline_bound=self.past_bound,
        )


@dataclass(frozen=True)
class _Group:
    doors: frozenset[int]
    schedule: WeeklySchedule


class Policy:
    """The small, hot part of the roster: site settings, doors and groups, reloaded after each sync."""

    def __init__(self, store: TerminalStore) -> None:
        self.doors: dict[int, DoorRecord] = {}
        self.groups: dict[int, _Group] = {}
        self.site: SiteRecord | None = None
        self.tz: ZoneInfo = ZoneInfo("UTC")
        self.holidays: frozenset[date] = frozenset()
        self.reload(store)

    def reload(self, store: TerminalStore) -> None:
        """Read doors, groups and the site record again."""
        self.doors = {r.id: r for r in store.records("door") if isinstance(r, DoorRecord)}
        groups = {}
        for record in store.records("group"):
            if record.kind == "group":
                windows = tuple(Window(*w) for w in record.windows)
                groups[record.id] = _Group(frozenset(record.doors), WeeklySchedule(windows, record.open_on_holidays))
        self.groups = groups
        site = store.record("site", "site")
        self.site = site if isinstance(site, SiteRecord) else None
        if self.site is not None:
            try:
                self.tz = ZoneInfo(self.site.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                log.error("unknown time zone %r from the server; judging schedules in UTC", self.site.timezone)
                self.tz = ZoneInfo("UTC")
            self.holidays = frozenset(self.site.holidays)


_METHOD_FLAG = {
    EntryMethod.FACE: "face",
    EntryMethod.CARD: "card",
    EntryMethod.ID_DOCUMENT: "id_document",
    EntryMethod.APP_CODE: "app_code",
    EntryMethod.VISITOR_CODE: "app_code",
    EntryMethod.VISITOR_QR: "app_code",
}
# What the keypad lockout refuses: typed entries, which do not say whose they are, so a wrong one is a guess
# against everyone who types here. QRs are not on this list: a visitor's is signed and cannot be guessed, and a
# resident's names its credential, so guesses at it are counted against that credential alone (see lockout.py).
TYPED = (IdEntered, CodeEntered)
# What opens a locked-down door, and only for staff: a credential bound to a known person, nothing anyone can pass on.
LOCKDOWN_METHODS = (EntryMethod.CARD, EntryMethod.ID_DOCUMENT)


class DecisionEngine:
    """Decides presentations from the store; owned by the terminal's loop thread."""

    def __init__(
        self,
        store: TerminalStore,
        *,
        site: str,
        credential_key: bytes,
        seal_key: bytes,
        server_key: Ed25519PublicKey,
        lockout: Lockout,
    ) -> None:
        self.store = store
        self.site_code = site
        self.credential_key = credential_key
        self.seal_key = seal_key
        self.server_key = server_key
        self.lockout = lockout
        self.policy = Policy(store)
        self.codes = AppCodeIndex()
        self.reload_codes()

    # ---- keeping up with sync ------------------------------------------------------------------------------

    def reload_codes(self) -> None:
        """Unseal every held app-code seed into memory again (start-up, after a snapshot)."""
        self.codes.clear()
        for key in self.store.record_keys_with("app_code"):
            self.person_changed(key.split(":", 1)[1])

    def person_changed(self, pseudonym: str) -> None:
        """A person record was added, replaced or removed by sync."""
        person = self.store.person(pseudonym)
        seeds: dict[int, bytes] = {}
        if person is not None:
            for credential in person.credentials:
                if credential.kind == "app_code" and credential.sealed is not None:
                    try:
                        seeds[credential.id] = unseal(
                            self.seal_key, credential.sealed, seed_context(pseudonym, credential.id)
                        )
                    except SealError:
                        log.error("an app-code seed did not open with this terminal's seal key; ignoring it")
        self.codes.set_person(pseudonym, seeds)

    def synced(self, people: frozenset[str], full: bool) -> None:
        """Take in what a sync message changed."""
        self.policy.reload(self.store)
        if full:
            self.reload_codes()
        else:
            for pseudonym in people:
                self.person_changed(pseudonym)

    # ---- deciding ------------------------------------------------------------------------------------------

    def decide(self, presentation: Presentation, now: datetime) -> Verdict | None:
        """Decide one presentation; None for a QR that is not a Gatehouse code (ignored, not a guess)."""
        verdict = self._decide_at_door(presentation, now)
        return None if verdict is None else self.bounded(verdict, presentation, now)

    # ---- the offline bound ---------------------------------------------------------------------------------

    def offline_state(self, now: datetime) -> OfflineState:
        """Whether this terminal is past its site's offline bound now."""
        return judge(now, self.store.last_contact(), self.policy.site)

    def bounded(self, verdict: Verdict, presentation: Presentation, now: datetime) -> Verdict:
        """Past the offline bound: mark the verdict, and refuse a grant the site's offline policy does not allow."""
        state = self.offline_state(now)
        if not state.past:
            return verdict
        if verdict.granted:
            person = None if verdict.person is None else self.store.person(verdict.person)
            if not state.admits(verdict.method, person, self._received_at(verdict, presentation, person)):
                return Verdict(
                    verdict.method, verdict.door, Reason.OFFLINE_BOUND, verdict.person, verdict.pass_id, past_bound=True
                )
        return replace(verdict, past_bound=True)

    def _received_at(self, verdict: Verdict, p: Presentation, person: PersonRecord | None) -> datetime | None:
        """When the terminal received the credential that decided `verdict` (None: held from before times were kept)."""
        try:
            if isinstance(p, CardPresented):
                return self.store.received_at("card", hash_card(self.credential_key, p.uid))
            if isinstance(p, IdEntered):
                return self.store.received_at("id_document", hash_id_document(self.credential_key, p.number))
        except CredentialFormatError:  # not granted then; only defensive
            return None
        if verdict.code_use is not None:
            return self.store.received_at("app_code", str(verdict.code_use[0]))
        if isinstance(p, FaceAttempt) and person is not None:
            ids = [p.template] if p.template is not None else [t.id for t in person.templates]
            times = [self.store.received_at("template", str(t)) for t in ids]
            # A match without a named template counts as its person's earliest-held template (None: the oldest).
            return None if not times or None in times else min(t for t in times if t is not None)
        return None

    def _decide_at_door(self, presentation: Presentation, now: datetime) -> Verdict | None:
        if isinstance(presentation, QrScanned) and not _is_ours(presentation.text):
            return None
        method = _method_of(presentation)
        if isinstance(presentation, TYPED) and self.lockout.locked(now.timestamp()):
            return Verdict(method, presentation.door, Reason.LOCKED_OUT)
        # The door's own policy first: nothing is hashed or looked up for a door or method it does not take.
        door = self.policy.doors.get(presentation.door)
        if door is None:
            return Verdict(method, presentation.door, Reason.WRONG_DOOR)
        if not getattr(door, _METHOD_FLAG[method]):
            return Verdict(method, presentation.door, Reason.METHOD_NOT_ALLOWED)
        if door.mode is DoorMode.LOCKDOWN:
            return self._lockdown(presentation, method, now)
        return self._decide(presentation, now)

    def _lockdown(self, presentation: Presentation, method: EntryMethod, now: datetime) -> Verdict:
        """Under lockdown only a staff member's card or ID document opens; face, codes and passes are refused."""
        if method not in LOCKDOWN_METHODS:
            return Verdict(method, presentation.door, Reason.LOCKDOWN)
        verdict = self._decide(presentation, now)
        if not verdict.granted:
            return verdict
        person = self.store.person(verdict.person) if verdict.person is not None else None
        if person is None or person.person_kind != "staff":
            return Verdict(method, presentation.door, Reason.LOCKDOWN, person=verdict.person)
        return verdict

    def _decide(self, p: Presentation, now: datetime) -> Verdict:
        if isinstance(p, CardPresented):
            return self._hashed(p.door, EntryMethod.CARD, CredentialKind.CARD, p.uid, now)
        if isinstance(p, IdEntered):
            return self._hashed(p.door, EntryMethod.ID_DOCUMENT, CredentialKind.ID_DOCUMENT, p.number, now)
        if isinstance(p, CodeEntered):
            digits = "".join(p.digits.split())
            if app_code.is_code(digits):
                return self._keyed_app_code(p.door, digits, now)
            return self._pass_code(p.door, digits, now)
        if isinstance(p, QrScanned):
            text = p.text.strip()
            if looks_like_token(text):
                return self._pass_token(p.door, text, now)
            return self._app_code_qr(p.door, text, now)
        return self._face(p, now)

    def _hashed(self, door: int, method: EntryMethod, kind: CredentialKind, value: str, now: datetime) -> Verdict:
        try:
            digest = (hash_card if kind is CredentialKind.CARD else hash_id_document)(self.credential_key, value)
        except CredentialFormatError:
            return Verdict(method, door, Reason.MALFORMED, guess=True)
        owners = self.store.find(kind.value, digest)
        if not owners:
            if self.store.was_withdrawn(kind.value, digest):
                return Verdict(method, door, Reason.REVOKED)
            return Verdict(method, door, Reason.UNKNOWN, guess=True)
        pseudonym = owners[0].split(":", 1)[1]
        return self._person(method, door, pseudonym, now)

    def _person(
        self,
        method: EntryMethod,
        door: int,
        pseudonym: str,
        now: datetime,
        code_use: tuple[int, int] | None = None,
    ) -> Verdict:
        """The one permission check, whatever the method."""
        person = self.store.person(pseudonym)
        if person is None:
            return Verdict(method, door, Reason.REVOKED, person=pseudonym)
        return Verdict(method, door, self._may_enter(person, door, now), person=pseudonym, code_use=code_use)

    def _may_enter(self, person: PersonRecord, door: int, now: datetime) -> Reason:
        covered = False
        for gid in person.groups:
            group = self.policy.groups.get(gid)
            if group is None or door not in group.doors:
                continue
            covered = True
            if group.schedule.is_open(now, self.policy.tz, self.policy.holidays):
                return Reason.GRANTED
        return Reason.OUTSIDE_SCHEDULE if covered else Reason.WRONG_DOOR

    def _keyed_app_code(self, door: int, code: str, now: datetime) -> Verdict:
        method = EntryMethod.APP_CODE
        found = self.codes.lookup(code, now.timestamp())
        if not found:
            return Verdict(method, door, Reason.UNKNOWN, guess=True)
        if len({owner for _, owner, _ in found}) > 1:
            # Two residents' codes coincide this minute (rare); neither is let in on it.
            return Verdict(method, door, Reason.AMBIGUOUS)
        credential, owner, step = found[0]
        return self._app_code_use(door, credential, owner, step, now)

    def _app_code_qr(self, door: int, text: str, now: datetime) -> Verdict:
        method = EntryMethod.APP_CODE
        # A QR that does not parse, or names a credential not held here, cannot match anyone: not a guess.
        try:
            qr = app_code.parse_qr(text)
        except app_code.AppCodeFormatError:
            return Verdict(method, door, Reason.MALFORMED)
        seed = self.codes.seed(qr.credential)
        if seed is None:
            if self.store.was_withdrawn("app_code", str(qr.credential)):
                return Verdict(method, door, Reason.REVOKED)
            return Verdict(method, door, Reason.UNKNOWN)
        owner, generator = seed
        if self.lockout.credential_locked(qr.credential, now.timestamp()):
            return Verdict(method, door, Reason.LOCKED_OUT, person=owner)
        step = app_code.matching_step(generator, qr.code, now.timestamp())
        if step is None:
            self._credential_guess(door, qr.credential, now)
            return Verdict(method, door, Reason.UNKNOWN, person=owner)
        return self._app_code_use(door, qr.credential, owner, step, now)

    def _credential_guess(self, door: int, credential: int, now: datetime) -> None:
        """A wrong code in a QR naming `credential`: counted against it alone, kept, and alarmed on a lockout."""
        length = self.lockout.credential_failure(credential, now.timestamp())
        if length is not None:
            log.warning(
                "app-code QRs of credential %d locked for %.0f s after repeated wrong codes", credential, length
            )
            alarm = EventRecord(
                uid=str(uuid.uuid4()),
                door=door,
                method=EntryMethod.APP_CODE,
                decision=Decision.ALARM,
                reason=Reason.BRUTE_FORCE.value,
                at=now,
            )
            self.store.record_decision(alarm)
        self.store.set_state("lockout", self.lockout.dumps())

    def _app_code_use(self, door: int, credential: int, owner: str, step: int, now: datetime) -> Verdict:
        if self.store.code_used(credential, step):
            return Verdict(EntryMethod.APP_CODE, door, Reason.REPLAYED, person=owner)
        return self._person(EntryMethod.APP_CODE, door, owner, now, code_use=(credential, step))

    def _pass_code(self, door: int, digits: str, now: datetime) -> Verdict:
        method = EntryMethod.VISITOR_CODE
        try:
            digest = hash_pass_code(self.credential_key, digits)
        except CredentialFormatError:
            return Verdict(method, door, Reason.MALFORMED, guess=True)
        held = self.store.find("pass_code", digest)
        if not held:
            if self.store.was_withdrawn("pass_code", digest):
                return Verdict(method, door, Reason.EXPIRED)
            return Verdict(method, door, Reason.UNKNOWN, guess=True)
        pass_id = int(held[0].split(":", 1)[1])
        record = self.store.visitor_pass(pass_id)
        if record is None:  # lookups and records change in one transaction; this is only defensive
            return Verdict(method, door, Reason.UNKNOWN)
        return self._pass(method, door, _claims_of(record), record, now)

    def _pass_token(self, door: int, text: str, now: datetime) -> Verdict:
        method = EntryMethod.VISITOR_QR
        try:
            claims = verify_pass(self.server_key, self.site_code, text)
        except PassTokenError:
            # A token whose signature fails was forged or damaged, never a lucky guess: no lockout counts it.
            return Verdict(method, door, Reason.MALFORMED)
        record = self.store.visitor_pass(claims.pass_id)
        if record is None and self.store.was_withdrawn("pass_id", str(claims.pass_id)):
            return Verdict(method, door, Reason.EXPIRED, pass_id=claims.pass_id)
        # A pass this terminal has not heard of yet (issued while it was offline) is judged by its token.
        return self._pass(method, door, claims if record is None else _claims_of(record), record, now)

    def _pass(
        self, method: EntryMethod, door: int, claims: PassClaims, record: PassRecord | None, now: datetime
    ) -> Verdict:
        pass_id = claims.pass_id
        if record is not None and record.revoked:
            return Verdict(method, door, Reason.REVOKED, pass_id=pass_id)
        if now < claims.valid_from:
            return Verdict(method, door, Reason.NOT_YET_VALID, pass_id=pass_id)
        if now >= claims.valid_until:
            return Verdict(method, door, Reason.EXPIRED, pass_id=pass_id)
        if door not in claims.doors:
            return Verdict(method, door, Reason.WRONG_DOOR, pass_id=pass_id)
        counted = set(record.used) if record is not None else set()
        uses = max(record.uses_count if record is not None else 0, len(counted | self.store.local_pass_uses(pass_id)))
        if uses >= claims.uses_allowed:
            return Verdict(method, door, Reason.USED_UP, pass_id=pass_id)
        return Verdict(method, door, Reason.GRANTED, pass_id=pass_id)

    def _face(self, attempt: FaceAttempt, now: datetime) -> Verdict:
        method = EntryMethod.FACE
        site = self.policy.site
        if site is None or not site.face_enabled:
            return Verdict(method, attempt.door, Reason.METHOD_NOT_ALLOWED)
        if attempt.person is None:
            return Verdict(method, attempt.door, Reason.AMBIGUOUS if attempt.ambiguous else Reason.UNKNOWN)
        person = self.store.person(attempt.person)
        if person is None or not any(attempt.template is None or t.id == attempt.template for t in person.templates):
            # The template is no longer held (consent withdrawn, erased, replaced): a lingering match is never
            # honoured, whatever the gallery still had.
            return Verdict(method, attempt.door, Reason.UNKNOWN)
        return Verdict(method, attempt.door, self._may_enter(person, attempt.door, now), person=attempt.person)


def _claims_of(record: PassRecord) -> PassClaims:
    # The server only sends passes that satisfy these limits (it issues them through the same checks).
    return PassClaims(
        pass_id=record.id,
        doors=record.doors,
        valid_from=record.valid_from,
        valid_until=record.valid_until,
        uses_allowed=record.uses_allowed,
    )


def _is_ours(text: str) -> bool:
    text = text.strip()
    return looks_like_token(text) or text.startswith(app_code.QR_PREFIX + ":")


def _method_of(p: Presentation) -> EntryMethod:
    if isinstance(p, IdEntered):
        return EntryMethod.ID_DOCUMENT
    if isinstance(p, QrScanned):
        return EntryMethod.VISITOR_QR if looks_like_token(p.text.strip()) else EntryMethod.APP_CODE
    if isinstance(p, CodeEntered):
        return EntryMethod.APP_CODE if app_code.is_code("".join(p.digits.split())) else EntryMethod.VISITOR_CODE
    if isinstance(p, FaceAttempt):
        return EntryMethod.FACE
    return EntryMethod.CARD
