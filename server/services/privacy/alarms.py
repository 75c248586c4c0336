"""Alarms a manager must act on: face-template erasures a terminal has not confirmed in time, and terminals
asking for more full snapshots than their budget allows. Both are raised and resolved through the one alarm
service (server/services/operations/alarms.py), which gives them their severity and feed items.

An erasure is overdue when a terminal's confirmation line is still pending `erasure_alarm_hours` (a site
setting) after the server erased its copy. The alarm is raised once per receipt and resolved by the system
when the receipt completes: the terminal confirmed, or it was removed (its pending lines go with it, as the
database deletes a terminal's confirmation lines with the terminal).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import select

from server.models import Alarm, AlarmKind, ErasureConfirmation, ErasureReceipt, Site, Terminal, utcnow
from server.services.operations import alarms as service
from server.services.session import DbSession

log = logging.getLogger(__name__)


def check_erasures(session: DbSession, at: datetime | None = None, *, site: Site | None = None) -> int:
    """Raise an alarm for each overdue erasure (once) and resolve those since completed; returns how many raised.

    Works on every site, or on `site` only. Does not commit.
    """
    at = at or utcnow()
    raised = 0
    sites = [site] if site is not None else list(session.scalars(select(Site).order_by(Site.id)))
    for each in sites:
        raised += _raise_overdue(session, each, at - timedelta(hours=each.erasure_alarm_hours), at)
    _resolve_completed(session, at, site)
    return raised


# The alarms about personal data a manager handles on the privacy page (doors' and terminals' are the guard's).
PRIVACY_KINDS = (AlarmKind.ERASURE_OVERDUE, AlarmKind.FACE_COUNT, AlarmKind.SNAPSHOT_BUDGET)


def open_alarms(session: DbSession, site_id: int | None = None) -> list[Alarm]:
    """Unresolved privacy alarms, newest first: all of them, or one site's together with the server-wide ones."""
    return service.open_alarms(session, None if site_id is None else [site_id], kinds=PRIVACY_KINDS)


def _raise_overdue(session: DbSession, site: Site, deadline: datetime, at: datetime) -> int:
    """Alarms for the site's receipts erased before `deadline` with a line still pending."""
    pending = session.execute(
        select(ErasureReceipt, Terminal)
        .join(ErasureConfirmation, ErasureConfirmation.receipt_id == ErasureReceipt.id)
        .join(Terminal, Terminal.id == ErasureConfirmation.terminal_id)
        .where(
            ErasureReceipt.site_id == site.id,
            ErasureReceipt.erased_on_server_at <= deadline,
            ErasureConfirmation.confirmed_at.is_(None),
        )
        .order_by(ErasureReceipt.id, Terminal.name)
    ).all()
    waiting: dict[ErasureReceipt, list[Terminal]] = defaultdict(list)
    for receipt, terminal in pending:
        waiting[receipt].append(terminal)
    if not waiting:
        return 0
    known = set(
        session.scalars(
            select(Alarm.ref).where(
                Alarm.kind == AlarmKind.ERASURE_OVERDUE, Alarm.ref.in_([str(r.id) for r in waiting])
            )
        )
    )
    raised = 0
    for receipt, holders in waiting.items():
        if str(receipt.id) in known:
            continue
        if service.raise_alarm(
            session,
            AlarmKind.ERASURE_OVERDUE,
            str(receipt.id),
            site_id=site.id,
            message=_message(site, receipt, holders),
            at=at,
        ):
            raised += 1
            log.warning(
                "erasure overdue at site %s: receipt %d not confirmed by terminal(s) %s within %d h",
                site.code,
                receipt.id,
                ", ".join(t.ident for t in holders),
                site.erasure_alarm_hours,
            )
    return raised


def _message(site: Site, receipt: ErasureReceipt, holders: list[Terminal]) -> str:
    """What happened and what to do; names terminals and the person's pseudonym, never the person's name."""
    names = ", ".join(f"{t.name} ({t.ident})" for t in holders)
    one = len(holders) == 1
    return (
        f"Face template {receipt.template_id} of person {receipt.person_pseudonym} was erased on the server at "
        f"{receipt.erased_on_server_at:%Y-%m-%d %H:%M} UTC ({receipt.reason.value}), but terminal{'' if one else 's'} "
        f"{names} {'has' if one else 'have'} not confirmed deleting it within {site.erasure_alarm_hours} h. "
        f"Bring {'it' if one else 'them'} online so {'it syncs' if one else 'they sync'} and confirm"
        f"{'s' if one else ''}; if a terminal is gone for good, decommission it (wipe it and remove it from the "
        "site: removing a terminal drops its pending confirmations). This alarm clears by itself once the "
        "erasure is complete."
    )


def _resolve_completed(session: DbSession, at: datetime, site: Site | None) -> None:
    """Resolve open erasure alarms whose receipt no longer waits for any terminal (or is gone)."""
    open_refs = session.execute(
        select(Alarm.id, Alarm.ref).where(
            Alarm.kind == AlarmKind.ERASURE_OVERDUE,
            Alarm.resolved_at.is_(None),
            *([Alarm.site_id == site.id] if site is not None else []),
        )
    ).all()
    if not open_refs:
        return
    pending_ids = {
        str(rid)
        for rid in session.scalars(
            select(ErasureConfirmation.receipt_id)
            .where(ErasureConfirmation.confirmed_at.is_(None))
            .where(ErasureConfirmation.receipt_id.in_([int(ref) for _, ref in open_refs if ref.isdigit()]))
        )
    }
    done = [alarm_id for alarm_id, ref in open_refs if ref not in pending_ids]
    if done:
        service.resolve_cause(session, AlarmKind.ERASURE_OVERDUE, ids=done, at=at)
        log.info("resolved %d erasure alarm(s): the erasures are complete", len(done))


def raise_snapshot_budget(
    session: DbSession,
    site_id: int,
    terminal_name: str,
    ident: str,
    count: int,
    window_s: float,
    wait_s: float,
    at: datetime | None = None,
) -> bool:
    """Alarm (once per terminal and day) that a terminal asked for more snapshots than its budget; no commit."""
    at = at or utcnow()
    message = (
        f"Terminal {terminal_name} ({ident}) asked for a full copy of its roster more than {count} times within "
        f"{window_s / 60:.0f} minutes. Each copy costs the server seconds of work, so the next one waits "
        f"{wait_s / 60:.0f} minutes; the terminal keeps deciding with what it holds. A terminal that keeps "
        "restarting or whose storage is failing can do this, and so can someone using a stolen terminal's "
        "credentials: check the terminal, and if it is missing, remove it from the site. This alarm clears "
        "by itself a day after the terminal last asked too often."
    )
    raised = service.raise_alarm(
        session, AlarmKind.SNAPSHOT_BUDGET, f"{ident}@{at:%Y-%m-%d}", site_id=site_id, message=message, at=at
    )
    return raised is not None


def resolve_snapshot_budget(
    session: DbSession, still_asking: set[str], quiet: timedelta, at: datetime | None = None
) -> int:
    """Resolve snapshot-budget alarms raised over `quiet` ago whose terminal is not in `still_asking`; no commit."""
    at = at or utcnow()
    open_refs = session.execute(
        select(Alarm.id, Alarm.ref).where(
            Alarm.kind == AlarmKind.SNAPSHOT_BUDGET, Alarm.resolved_at.is_(None), Alarm.raised_at <= at - quiet
        )
    ).all()
    done = [alarm_id for alarm_id, ref in open_refs if ref.split("@", 1)[0] not in still_asking]
    if done:
        service.resolve_cause(session, AlarmKind.SNAPSHOT_BUDGET, ids=done, at=at)
        log.info("resolved %d snapshot budget alarm(s): the terminals stopped asking too often", len(done))
    return len(done)
