"""The bound on deciding offline: what a terminal cut off from the server still lets in, and for how long.

A terminal keeps deciding from its own roster whatever the link does, but a roster it cannot refresh goes
stale: a card revoked at the server keeps opening its doors. Once the terminal has not heard from the server
for its site's `max_offline_hours`, it applies the site's `offline_policy`:

- keep_residents (the default; a compound must not lock its residents out because a cable broke): residents
  and staff keep getting in with credentials the terminal has confirmed; visitor passes and codes, visitors'
  own credentials and unconfirmed credentials are refused.
- fail_secure: only staff's confirmed cards open; everything else is refused.

Hearing from the server is a fresh, signed sign of it: a delta or snapshot applied, an InSync answering this
connection's birth, or a receipt for events the terminal holds (see TerminalRuntime). A terminal that has never
heard from the server has nobody's credentials to be stale about and is never past the bound.

A credential (card, ID document, app code, face template) is *confirmed* when the terminal received it at
least `max_offline_hours` before its last contact: it was held through a whole bound's worth of contact, so a
withdrawal of a credential issued in error or in haste had that long to arrive. One received within that span
of the last contact could not be confirmed before the link went. Credentials held before terminals kept
received times count as confirmed. Everything decided past the bound is marked in its event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from gatehouse_core.wire.messages import EntryMethod
from gatehouse_core.wire.records import OfflinePolicy, PersonRecord, SiteRecord

PASS_METHODS = frozenset({EntryMethod.VISITOR_CODE, EntryMethod.VISITOR_QR})
# How often a connected terminal asks the server for a sign of life when it has heard nothing (a birth, which
# the server answers with an InSync): a quarter of the bound, at most every 6 hours, so a quiet but connected
# terminal never reaches its bound.
MAX_CONTACT_REFRESH = timedelta(hours=6)


@dataclass(frozen=True)
class OfflineState:
    """Whether a terminal is past its offline bound, and what it then lets in."""

    past: bool
    policy: OfflinePolicy = OfflinePolicy.KEEP_RESIDENTS
    last_contact: datetime | None = None
    bound: timedelta = timedelta(hours=72)

    def confirmed(self, received_at: datetime | None) -> bool:
        """Whether a credential received at `received_at` (None: before received times were kept) was confirmed."""
        if received_at is None or self.last_contact is None:
            return True
        return received_at <= self.last_contact - self.bound

    def admits(self, method: EntryMethod, person: PersonRecord | None, received_at: datetime | None) -> bool:
        """Whether a presentation that would be granted within the bound is still granted (always, within it)."""
        if not self.past:
            return True
        if person is None or method in PASS_METHODS or not self.confirmed(received_at):
            return False
        if self.policy is OfflinePolicy.FAIL_SECURE:
            return person.person_kind == "staff" and method is EntryMethod.CARD
        return person.person_kind in ("resident", "staff")


WITHIN = OfflineState(past=False)


def judge(now: datetime, last_contact: datetime | None, site: SiteRecord | None) -> OfflineState:
    """The terminal's offline state at `now`, from its last contact with the server and its site's settings."""
    if site is None or last_contact is None:
        return WITHIN
    bound = timedelta(hours=site.max_offline_hours)
    return OfflineState(
        past=now - last_contact >= bound, policy=site.offline_policy, last_contact=last_contact, bound=bound
    )


def contact_refresh(site: SiteRecord | None) -> timedelta:
    """How long a connected terminal waits without hearing from the server before asking for a sign of life."""
    if site is None:
        return MAX_CONTACT_REFRESH
    return min(MAX_CONTACT_REFRESH, timedelta(hours=site.max_offline_hours) / 4)
