"""The wire fields of the offline bound stay compatible: stored rosters keep their hash, older peers still parse."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from gatehouse_core.wire.base import MessageError, decode, encode
from gatehouse_core.wire.messages import Decision, EntryMethod, EventRecord
from gatehouse_core.wire.records import (
    CredentialRecord,
    OfflinePolicy,
    PersonRecord,
    SiteRecord,
    fingerprint,
    roster_hash,
)

# Exactly what servers sent, and terminals stored and fingerprinted, before these fields existed.
OLD_SITE = '{"kind":"site","timezone":"Asia/Shanghai","face_enabled":true,"holidays":["2027-01-01"]}'
OLD_PERSON = (
    '{"kind":"person","pseudonym":"p-00000000000000a1","groups":[3],'
    '"credentials":[{"id":7,"kind":"card","hash":"' + "ab" * 32 + '","sealed":null}],"templates":[]}'
)
OLD_PERSON_PRINTED = OLD_PERSON.replace(',"sealed":null', "")  # fingerprints leave sealed parts out


def old_fingerprint(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


def test_records_at_their_defaults_encode_and_fingerprint_as_before() -> None:
    site = SiteRecord(timezone="Asia/Shanghai", face_enabled=True, holidays=(date(2027, 1, 1),))
    person = PersonRecord(
        pseudonym="p-00000000000000a1", groups=(3,), credentials=(CredentialRecord(id=7, kind="card", hash="ab" * 32),)
    )
    assert site.model_dump_json() == OLD_SITE and person.model_dump_json() == OLD_PERSON
    assert fingerprint(site) == old_fingerprint(OLD_SITE) and fingerprint(person) == old_fingerprint(OLD_PERSON_PRINTED)
    stored = [("site", "site", old_fingerprint(OLD_SITE)), ("person", person.key, old_fingerprint(OLD_PERSON_PRINTED))]
    assert roster_hash(stored) == roster_hash(
        [("site", "site", fingerprint(site)), ("person", person.key, fingerprint(person))]
    )


def test_stored_records_without_the_fields_read_with_the_defaults() -> None:
    site = SiteRecord.model_validate_json(OLD_SITE)
    assert (site.max_offline_hours, site.offline_policy) == (72, OfflinePolicy.KEEP_RESIDENTS)
    assert PersonRecord.model_validate_json(OLD_PERSON).person_kind == "resident"


def test_settings_away_from_the_defaults_travel_and_change_the_fingerprint() -> None:
    site = SiteRecord(
        timezone="UTC", face_enabled=False, holidays=(), max_offline_hours=5, offline_policy=OfflinePolicy.FAIL_SECURE
    )
    body = site.model_dump_json()
    assert json.loads(body)["offline_policy"] == "fail_secure" and json.loads(body)["max_offline_hours"] == 5
    assert SiteRecord.model_validate_json(body) == site
    assert fingerprint(site) != fingerprint(SiteRecord(timezone="UTC", face_enabled=False, holidays=()))
    staff = PersonRecord(pseudonym="p-00000000000000b1", groups=(1,), person_kind="staff")
    assert PersonRecord.model_validate_json(staff.model_dump_json()).person_kind == "staff"


@pytest.mark.parametrize("hours", [0, 8761])
def test_the_bound_is_one_hour_to_a_year(hours: int) -> None:
    with pytest.raises(ValidationError):
        SiteRecord(timezone="UTC", face_enabled=False, holidays=(), max_offline_hours=hours)


def test_unknown_policies_and_person_kinds_are_refused() -> None:
    with pytest.raises(ValidationError):
        SiteRecord.model_validate_json(OLD_SITE[:-1] + ',"offline_policy":"open_for_all"}')
    with pytest.raises(ValidationError):
        PersonRecord.model_validate_json(OLD_PERSON[:-1] + ',"person_kind":"landlord"}')


def event(**fields: object) -> EventRecord:
    base: dict[str, object] = {
        "uid": str(uuid.uuid4()),
        "door": 1,
        "method": EntryMethod.CARD,
        "decision": Decision.GRANT,
        "reason": "granted",
        "at": datetime(2026, 12, 1, tzinfo=UTC),
    }
    return EventRecord.model_validate({**base, **fields})


def test_an_event_within_the_bound_encodes_as_before_and_one_past_it_carries_the_flag() -> None:
    within = event()
    assert "past_offline_bound" not in encode(within).decode()
    assert decode(EventRecord, encode(within)) == within
    past = event(past_offline_bound=True, reason="offline_bound", decision=Decision.DENY)
    assert json.loads(encode(past))["past_offline_bound"] is True
    assert decode(EventRecord, encode(past)).past_offline_bound is True
    with pytest.raises(MessageError):
        decode(EventRecord, encode(within)[:-1] + b',"past_offline_bound":"yes"}')
