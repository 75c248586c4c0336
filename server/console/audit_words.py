"""The audit log in words: each action and each detail in the user's language, not `user.login` or `phone=True`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from server.services.reports import timefmt

# Every action the services audit (tests/server/console/test_audit_words.py holds new ones to a label).
ACTION_LABELS: dict[str, Any] = {
    "alarm.acknowledge": _l("Alarm acknowledged"),
    "alarm.resolve": _l("Alarm resolved"),
    "api_key.created": _l("Integration API key created"),
    "api_key.revoked": _l("Integration API key revoked"),
    "api_key.used": _l("Integration API key used"),
    "app.refresh_reused": _l("Phone app: a used sign-in token was presented again"),
    "app.sign_in": _l("Phone app: signed in"),
    "app.sign_out": _l("Phone app: signed out"),
    "app.sign_out_all": _l("Phone app: signed out on every device"),
    "app_account.disable": _l("Phone-app account turned off"),
    "app_account.enable": _l("Phone-app account turned on"),
    "app_account.password": _l("Phone-app password set"),
    "app_account.sign_out_everywhere": _l("Phone-app account signed out everywhere"),
    "consent.decline": _l("Face entry declined"),
    "consent.give": _l("Face consent recorded"),
    "consent.withdraw": _l("Face consent withdrawn"),
    "credential.add": _l("Credential added"),
    "credential.capture_requested": _l("Card reading requested at a terminal"),
    "credential.revoke": _l("Credential revoked"),
    "door.create": _l("Door added"),
    "door.emergency_release": _l("Emergency release started"),
    "door.emergency_release.lift": _l("Emergency release lifted"),
    "door.lockdown": _l("Lockdown started"),
    "door.lockdown.lift": _l("Lockdown lifted"),
    "door.rename": _l("Door renamed"),
    "door.unlock_schedule": _l("Door unlock schedule changed"),
    "door.update": _l("Door entry methods changed"),
    "events.export": _l("Events exported"),
    "group.add_member": _l("Person added to an access group"),
    "group.create": _l("Access group created"),
    "group.remove_member": _l("Person removed from an access group"),
    "group.update": _l("Access group changed"),
    "holiday.add": _l("Holiday added"),
    "holiday.remove": _l("Holiday removed"),
    "pass.issue": _l("Visitor pass issued"),
    "pass.revoke": _l("Visitor pass revoked"),
    "people.import": _l("People imported from a file"),
    "person.create": _l("Person added"),
    "person.deactivate": _l("Person deactivated"),
    "person.move_out": _l("Person moved out"),
    "person.subject_access": _l("Subject-access report produced"),
    "person.update": _l("Person's details changed"),
    "privacy.assessment_attach": _l("Impact assessment attached"),
    "privacy.face_disable": _l("Face entry turned off at the site"),
    "privacy.face_enable": _l("Face entry turned on at the site"),
    "privacy.face_model_change": _l("Face model changed"),
    "privacy.notice_publish": _l("Privacy notice published"),
    "privacy.retention_settings": _l("Retention settings changed"),
    "retention.purge": _l("Old data removed by retention"),
    "site.create": _l("Site created"),
    "site.offline_bound": _l("Offline bound changed"),
    "template.add": _l("Face template enrolled"),
    "template.delete": _l("Face templates deleted"),
    "terminal.open_door": _l("Door opened from the console"),
    "terminal.provision": _l("Terminal provisioned"),
    "terminal.resync": _l("Terminal re-sync requested"),
    "terminal.rotate_password": _l("Terminal broker password replaced"),
    "user.create": _l("Console user created"),
    "user.login": _l("Signed in to the console"),
    "user.logout_everywhere": _l("Signed out of the console everywhere"),
    "user.set_password": _l("Console password set"),
    "webhook.deleted": _l("Webhook removed"),
    "webhook.disabled": _l("Webhook turned off"),
    "webhook.enabled": _l("Webhook turned on"),
    "webhook.registered": _l("Webhook registered"),
    "webhook.secret_rotated": _l("Webhook signing secret replaced"),
}

# The part of an action before its dot, for the action filter's groups ("every people action").
AREA_LABELS: dict[str, Any] = {
    "app": _l("Phone app sign-in"),
    "app_account": _l("Phone-app accounts"),
    "consent": _l("Face consent"),
    "credential": _l("Credentials"),
    "door": _l("Doors"),
    "events": _l("Events"),
    "group": _l("Access groups"),
    "holiday": _l("Holidays"),
    "pass": _l("Visitor passes"),
    "people": _l("People imports"),
    "person": _l("People"),
    "privacy": _l("Privacy"),
    "retention": _l("Retention"),
    "site": _l("Sites"),
    "template": _l("Face templates"),
    "terminal": _l("Terminals"),
    "user": _l("Console users"),
}


def area_label(area: str) -> str:
    """An action area in the user's language; an unknown one as recorded."""
    label = AREA_LABELS.get(area)
    return str(label) if label is not None else area


def action_choices(chosen: str | None = None) -> dict[str | None, list[tuple[str, str]]]:
    """The audit log's action filter as option groups: any action, then one group per area (every action in it,
    then each action), all in words and sorted as the user reads them. A value from an older link that is not on
    the list (a code's beginning, say) is kept as its own choice, so the link still shows what it showed."""
    areas: dict[str, list[str]] = {}
    for action in ACTION_LABELS:
        areas.setdefault(action.partition(".")[0], []).append(action)
    top = [("", _("Any action"))]
    groups: dict[str | None, list[tuple[str, str]]] = {None: top}
    for area in sorted(areas, key=area_label):
        every = (f"{area}.", _("%(area)s: every action", area=area_label(area)))
        groups[area_label(area)] = [every, *((a, action_label(a)) for a in sorted(areas[area], key=action_label))]
    known = {value for options in groups.values() for value, _label in options}
    if chosen and chosen not in known:
        top.append((chosen, _("Actions starting with “%(code)s”", code=chosen)))
    return groups


DETAIL_LABELS: dict[str, Any] = {
    "app_code": _l("App code"),
    "app_face_enrollment": _l("Face enrollment in the app"),
    "assessed_on": _l("Assessed on"),
    "assessment": _l("Assessment"),
    "card": _l("Card"),
    "channel": _l("How"),
    "code": _l("Code"),
    "command": _l("Command"),
    "consent": _l("Consent"),
    "consents": _l("Consents"),
    "consents_made_stale": _l("Consents to ask again"),
    "count": _l("Number"),
    "created": _l("Created"),
    "credential": _l("Credential"),
    "csv": _l("CSV file"),
    "cutoff": _l("Older than"),
    "day": _l("Day"),
    "door": _l("Door"),
    "door_id": _l("Door"),
    "doors": _l("Doors"),
    "ended": _l("Sessions ended"),
    "erasure_alarm_hours": _l("Erasure alarm after (hours)"),
    "event_retention_days": _l("Keep events (days)"),
    "face": _l("Face"),
    "fields": _l("Fields"),
    "filters": _l("Filters"),
    "format": _l("Format"),
    "from": _l("From"),
    "from_session": _l("From session"),
    "given_by": _l("Given by"),
    "group": _l("Group"),
    "host": _l("Host"),
    "how": _l("How"),
    "id_document": _l("ID document"),
    "ident": _l("Terminal"),
    "interrupted": _l("Interrupted"),
    "kind": _l("Kind"),
    "model": _l("Model"),
    "name": _l("Name"),
    "open_on_holidays": _l("Open on holidays"),
    "phone": _l("Phone number"),
    "reason": _l("Reason"),
    "review_due": _l("Review due"),
    "role": _l("Role"),
    "row_cap": _l("Row limit"),
    "rows": _l("Rows"),
    "session": _l("Session"),
    "sessions_ended": _l("Sessions ended"),
    "status": _l("Status"),
    "template": _l("Template"),
    "template_unused_days": _l("Erase unused face templates after (days)"),
    "templates_erased": _l("Templates erased"),
    "terminal_id": _l("Terminal"),
    "to": _l("To"),
    "username": _l("User name"),
    "uses": _l("Uses"),
    "version": _l("Version"),
    "visitor_retention_days": _l("Keep visitor passes (days)"),
    "windows": _l("Weekly windows"),
}


def action_label(action: str) -> str:
    """An audit action in the user's language; an action not known here is shown as recorded."""
    label = ACTION_LABELS.get(action)
    return str(label) if label is not None else action


def detail_label(key: str) -> str:
    """A detail's name in the user's language; an unknown key as plain words."""
    label = DETAIL_LABELS.get(key)
    return str(label) if label is not None else key.replace("_", " ")


def audit_details(details: dict[str, Any] | None, timezone: str | None) -> list[tuple[str, str]]:
    """An entry's details as (name, value) in words: yes/no for flags, site times, changes as from → to."""
    if not details:
        return []
    return [(detail_label(str(key)), _value(value, timezone)) for key, value in sorted(details.items())]


def _value(value: Any, timezone: str | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, list | tuple):
        return ", ".join(_value(v, timezone) for v in value) or "—"
    if isinstance(value, dict):
        if set(value) == {"from", "to"}:
            return _("%(old)s → %(new)s", old=_value(value["from"], timezone), new=_value(value["to"], timezone))
        return "; ".join(f"{detail_label(str(k))}: {_value(v, timezone)}" for k, v in sorted(value.items()))
    if isinstance(value, str) and len(value) > 10 and value[4:5] == "-" and "T" in value:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        return timefmt.site_time(moment if moment.tzinfo else moment.replace(tzinfo=UTC), timezone)
    return str(value)
