"""`gatehouse privacy` and `gatehouse consent`: notices, impact assessments, face on/off, consent at the desk."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from pydantic import Field

from gatehouse_core.configfile import ConfigError, StrictModel, load_config
from server.cli.common import app_context, config_option, fail, load_or_exit, server_app

site_option = click.option("--site", "site_code", required=True, help="Site code.")
person_option = click.option("--person", "person_id", type=int, required=True, help="Id of the person.")
channel_option = click.option(
    "--channel",
    type=click.Choice(["desk", "console", "app"]),
    default="desk",
    show_default=True,
    help="Where the person (or guardian) told you.",
)


class NoticeFile(StrictModel):
    """A privacy notice file (TOML): every part the notice must have, nothing else."""

    controller: str = Field(min_length=1, max_length=200, description="Who is responsible for the face data.")
    contact: str = Field(min_length=1, max_length=200, description="How to reach them about it.")
    purpose: str = Field(min_length=1, max_length=4000, description="Why faces are processed.")
    method: str = Field(min_length=1, max_length=4000, description="How: template, not photo; matched where.")
    storage: str = Field(min_length=1, max_length=4000, description="Where templates are kept and how protected.")
    retention: str = Field(min_length=1, max_length=4000, description="How long templates are kept.")
    rights: str = Field(min_length=1, max_length=4000, description="The person's rights.")
    withdrawal: str = Field(min_length=1, max_length=4000, description="How to withdraw consent.")


class NoticeSectionText(StrictModel):
    """One section of a two-language notice file: its text in English and in Chinese."""

    en: str = Field(min_length=1, max_length=4000, description="The section in English.")
    zh: str = Field(min_length=1, max_length=4000, description="The section in Chinese.")


class BilingualNoticeFile(StrictModel):
    """A privacy notice file in both languages (TOML), as `gatehouse privacy notice-template` writes it: the
    controller and contact (one line each), then every section under [sections.<key>] with `en` and `zh`."""

    controller: str = Field(min_length=1, max_length=200, description="Who is responsible for the face data.")
    contact: str = Field(min_length=1, max_length=200, description="How to reach them about it.")
    sections: dict[str, NoticeSectionText] = Field(description="Each section of the notice, by its key.")


def _notice_from_file(path: Path) -> Any:
    """The notice a file holds: two languages when it has [sections], else the older English-only file."""
    import tomllib

    from server.services.privacy import notice_text
    from server.services.privacy import privacy as service

    try:
        with path.open("rb") as f:
            raw = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        click.echo(f"{path}: cannot read this notice file: {exc}", err=True)
        sys.exit(2)
    try:
        if "sections" not in raw:
            return service.NoticeFields(**load_config(NoticeFile, path).model_dump())
        parsed = load_config(BilingualNoticeFile, path)
    except ConfigError as exc:
        click.echo(exc.report(), err=True)
        sys.exit(2)
    for name in ("controller", "contact"):
        if notice_text.has_mark(getattr(parsed, name)):
            click.echo(f"{path}: {name} is still marked to complete: write the site's own {name} there.", err=True)
            sys.exit(2)
    unknown = sorted(set(parsed.sections) - set(notice_text.SECTION_KEYS))
    missing = [key for key in notice_text.SECTION_KEYS if key not in parsed.sections]
    if unknown or missing:
        problems = [f"sections.{key}: not a notice section" for key in unknown]
        problems += [f"sections.{key}: missing (every section needs en and zh)" for key in missing]
        click.echo(f"{path}:\n  " + "\n  ".join(problems), err=True)
        click.echo(f"  the sections are: {', '.join(notice_text.SECTION_KEYS)}", err=True)
        sys.exit(2)
    return notice_text.NoticeDraft(
        controller=parsed.controller,
        contact=parsed.contact,
        sections={key: {"en": text.en, "zh": text.zh} for key, text in parsed.sections.items()},
    )


def _run(config_path: Path, work: Any) -> Any:
    """Run `work(session, actor)` in one transaction; domain errors become a clear message and exit 2."""
    from server.extensions import db
    from server.services.audit import Actor
    from server.services.errors import DomainError

    with app_context(config_path):
        try:
            result = work(db.session, Actor("cli"))
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            fail(f"{exc.message} ({exc.code})")
        return result


def _site(session: Any, code: str) -> Any:
    from server.services.access.sites import get_site

    return get_site(session, code)


def _person(session: Any, person_id: int) -> Any:
    from server.models import Person
    from server.services.errors import NotFound

    person = session.get(Person, person_id)
    if person is None:
        raise NotFound(f"no person with id {person_id}")
    return person


@click.group()
def privacy() -> None:
    """A site's privacy notice, impact assessment, face entry on or off, and its privacy figures."""


@privacy.command("publish-notice")
@config_option
@site_option
@click.option(
    "--file",
    "notice_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="TOML in both languages, as `privacy notice-template` writes it (or the older English-only file).",
)
def publish_notice(config_path: Path, site_code: str, notice_path: Path) -> None:
    """Publish a new notice version. Existing consents become stale: those people must renew to use face."""
    from server.services.privacy import privacy as service

    fields = _notice_from_file(notice_path)

    def work(session: Any, actor: Any) -> tuple[int, str]:
        notice = service.publish_notice(session, actor, _site(session, site_code), fields)
        return notice.version, notice.sha256

    version, digest = _run(config_path, work)
    click.echo(f"notice version {version} published for {site_code} (sha256 {digest})")


@privacy.command("notice-template")
@config_option
@site_option
def notice_template(config_path: Path, site_code: str) -> None:
    """Print a two-language notice file to complete: every section's starter text in English and Chinese,
    with the site's retention periods filled in and each part only the site can supply marked to complete."""
    import tomli_w

    from server.services.privacy import notice_text
    from server.services.privacy import privacy as service

    def work(session: Any, actor: Any) -> Any:
        return service.next_draft(session, _site(session, site_code))

    draft = _run(config_path, work)
    body = {
        "controller": draft.controller or "[to complete: the property company's full name]",
        "contact": draft.contact or "[to complete: a telephone number or address for privacy questions]",
        "sections": {key: dict(draft.sections[key]) for key in notice_text.SECTION_KEYS},
    }
    click.echo("# Complete every part marked [to complete: ...] / 【待填写：...】, then publish with")  # noqa: RUF001
    click.echo(f"#   gatehouse privacy publish-notice --site {site_code} --file THIS_FILE")
    click.echo(tomli_w.dumps(body, multiline_strings=True), nl=False)


@privacy.command("show-notice")
@config_option
@site_option
@click.option("--version", "version", type=int, help="Version to show; default the current one.")
def show_notice(config_path: Path, site_code: str, version: int | None) -> None:
    """Print a notice version exactly as people are shown it."""
    from server.services.privacy import privacy as service

    def work(session: Any, actor: Any) -> tuple[str, int, str]:
        notice = service.get_notice(session, _site(session, site_code), version)
        return notice.text, notice.version, notice.sha256

    text, number, digest = _run(config_path, work)
    click.echo(text, nl=False)
    click.echo(f"-- version {number}, sha256 {digest}")


@privacy.command("attach-assessment")
@config_option
@site_option
@click.option("--assessed-on", type=click.DateTime(["%Y-%m-%d"]), required=True, help="Date of the assessment.")
@click.option("--author", required=True, help="Who made it.")
@click.option("--review-due", type=click.DateTime(["%Y-%m-%d"]), required=True, help="When it must be reviewed.")
@click.option(
    "--summary-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Text file with the summary of its findings.",
)
def attach_assessment(
    config_path: Path, site_code: str, assessed_on: datetime, author: str, review_due: datetime, summary_file: Path
) -> None:
    """Attach a privacy impact assessment to a site (needed before face entry can be switched on)."""
    from server.services.privacy import privacy as service

    summary = summary_file.read_text(encoding="utf-8")
    _run(
        config_path,
        lambda session, actor: service.attach_assessment(
            session,
            actor,
            _site(session, site_code),
            assessed_on=assessed_on.date(),
            author=author,
            review_due=review_due.date(),
            summary=summary,
        ),
    )
    click.echo(f"impact assessment attached to {site_code}; review due {review_due.date().isoformat()}")


def _configured_model_id(config_path: Path) -> str:
    from server.config import load_server_config
    from server.services.face.enrollment import EnrollmentEngine, FaceUnavailable

    config = load_or_exit(load_server_config, config_path)
    try:
        return EnrollmentEngine(config.face).model().model_id
    except FaceUnavailable as exc:
        fail(exc.message)


@privacy.command("face-on")
@config_option
@site_option
def face_on(config_path: Path, site_code: str) -> None:
    """Switch face entry on for a site, with the model of this server's [face] engine."""
    from server.services.privacy import privacy as service

    model_id = _configured_model_id(config_path)
    _run(config_path, lambda session, actor: service.enable_face(session, actor, _site(session, site_code), model_id))
    click.echo(f"face entry is on for {site_code} (model {model_id}); card, ID and code keep working at every door")


@privacy.command("face-off")
@config_option
@site_option
def face_off(config_path: Path, site_code: str) -> None:
    """Switch face entry off for a site; terminals drop every template."""
    from server.services.privacy import privacy as service

    _run(config_path, lambda session, actor: service.disable_face(session, actor, _site(session, site_code)))
    click.echo(f"face entry is off for {site_code}")


@privacy.command("adopt-model")
@config_option
@site_option
def adopt_model(config_path: Path, site_code: str) -> None:
    """Move a site to this server's face model: consents become stale, old-model templates are erased."""
    from server.services.privacy import privacy as service

    model_id = _configured_model_id(config_path)
    erased = _run(
        config_path,
        lambda session, actor: service.adopt_face_model(session, actor, _site(session, site_code), model_id),
    )
    click.echo(
        f"{site_code} now uses {model_id}; {erased} template(s) of the old model erased; consents must be renewed"
    )


@privacy.command("figures")
@config_option
@click.option("--site", "site_code", help="One site; default every site.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def figures(config_path: Path, site_code: str | None, as_json: bool) -> None:
    """Face opt-in and fallback rates, pending deletions, stale consents, and the filing-threshold count."""
    from sqlalchemy import select

    from server.extensions import db
    from server.models import Site
    from server.services.face.count import face_count
    from server.services.privacy.figures import site_figures

    _config, app = server_app(config_path, False)
    with app.app_context():
        sites = (
            [_site(db.session, site_code)] if site_code else list(db.session.scalars(select(Site).order_by(Site.code)))
        )
        rows = [site_figures(db.session, site).as_dict() for site in sites]
        count = face_count(db.session)
    if as_json:
        faces = {"people": count.enrolled, "threshold": count.threshold, "warning": count.warning}
        click.echo(json.dumps({"sites": rows, "face_templates": faces}))
        return
    for row in rows:
        click.echo(f"{row['site']}: " + ", ".join(f"{k} {v}" for k, v in row.items() if k != "site"))
    click.echo(f"people with face templates on this server: {count.enrolled:,} of the {count.threshold:,} threshold")
    if count.warning:
        click.echo(f"warning: {count.warning}", err=True)


@click.group()
def consent() -> None:
    """Face consent at the desk: give (self or guardian), decline, withdraw, status."""


@consent.command("give")
@config_option
@person_option
@channel_option
@click.option("--notice-version", type=int, required=True, help="The notice version the person was shown.")
@click.option("--guardian-name", help="For a minor: the parent or guardian who consents.")
@click.option("--guardian-relationship", help="For a minor: e.g. mother, father, legal guardian.")
@click.option("--expires", type=click.DateTime(["%Y-%m-%d"]), help="Date the consent ends (optional).")
def consent_give(
    config_path: Path,
    person_id: int,
    channel: str,
    notice_version: int,
    guardian_name: str | None,
    guardian_relationship: str | None,
    expires: datetime | None,
) -> None:
    """Record consent to face entry, after the person (or guardian) read the current notice."""
    from zoneinfo import ZoneInfo

    from server.models import ConsentChannel, ConsentGiver
    from server.services.face import consent as service
    from server.services.privacy import privacy as notices

    def work(session: Any, actor: Any) -> int:
        person = _person(session, person_id)
        notice = notices.get_notice(session, person.site, notice_version)
        expires_at = None
        if expires is not None:
            expires_at = datetime.combine(expires.date(), datetime.min.time(), ZoneInfo(person.site.timezone))
        record = service.give_consent(
            session,
            actor,
            person,
            notice_sha256=notice.sha256,
            channel=ConsentChannel(channel),
            given_by=ConsentGiver.GUARDIAN if guardian_name or guardian_relationship else ConsentGiver.SELF,
            guardian_name=guardian_name,
            guardian_relationship=guardian_relationship,
            expires_at=expires_at,
        )
        return int(record.id)

    consent_id = _run(config_path, work)
    click.echo(f"consent {consent_id} recorded for person {person_id}; they may now enroll a face photo")


@consent.command("withdraw")
@config_option
@person_option
@channel_option
def consent_withdraw(config_path: Path, person_id: int, channel: str) -> None:
    """Withdraw face consent: templates are erased on the server now and on every terminal next."""
    from server.models import ConsentChannel
    from server.services.face import consent as service

    receipts = _run(
        config_path,
        lambda session, actor: [
            r.id for r in service.withdraw_consent(session, actor, _person(session, person_id), ConsentChannel(channel))
        ],
    )
    click.echo(f"consent withdrawn for person {person_id}; {len(receipts)} template(s) erased, receipts {receipts}")


@consent.command("decline")
@config_option
@person_option
@channel_option
def consent_decline(config_path: Path, person_id: int, channel: str) -> None:
    """Record that a person does not want face entry; they are not asked again unless they ask."""
    from server.models import ConsentChannel
    from server.services.face import consent as service

    _run(
        config_path,
        lambda session, actor: service.decline_face(
            session, actor, _person(session, person_id), ConsentChannel(channel)
        ),
    )
    click.echo(f"person {person_id} declined face entry; card, ID and code give them the same access")


@consent.command("status")
@config_option
@person_option
def consent_status(config_path: Path, person_id: int) -> None:
    """A person's face state, and whether to offer face to them."""
    from server.services.face import consent as service

    def work(session: Any, actor: Any) -> dict[str, Any]:
        status = service.face_status(session, _person(session, person_id))
        return {
            "state": status.state.value,
            "offer_face": status.offer,
            "consent": status.consent.id if status.consent is not None else None,
            "notice_version": status.notice.version if status.notice is not None else None,
        }

    click.echo(json.dumps(_run(config_path, work)))
