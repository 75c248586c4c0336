"""`gatehouse face`: enroll a face from a photo, or check a photo, on the server."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from server.cli.common import config_option, fail, load_or_exit, server_app, setup_logging
from server.state import state

if TYPE_CHECKING:
    from gatehouse_core.face.quality import QualityReport
    from server.services.face.enrollment import PhotoRejected


@click.group()
def face() -> None:
    """Face enrollment from photos (needs the [face] section of the server config)."""


photo_option = click.option(
    "--photo",
    "photo_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="JPEG, PNG or WebP photo of the face. It is read into memory only and never kept.",
)


def _read_photo(path: Path, limit: int) -> bytes:
    # One byte past the limit is enough to refuse the photo as too large without reading all of it.
    try:
        with path.open("rb") as handle:
            return handle.read(limit + 1)
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")


def _figures(report: QualityReport) -> str:
    return (
        f"face {report.face_px:.0f} px, detector score {report.score:.2f}, sharpness {report.sharpness:.0f}, "
        f"contrast {report.contrast:.0f}, "
        f"yaw {report.pose.yaw:+.0f}°, pitch {report.pose.pitch:+.0f}°, roll {report.pose.roll:+.0f}°"
    )


def _photo_refused(exc: PhotoRejected) -> NoReturn:
    click.echo(f"photo refused ({exc.code}): {exc.message}", err=True)
    if exc.report is not None:
        click.echo(f"measured: {_figures(exc.report)}", err=True)
    sys.exit(1)


@face.command("enroll")
@config_option
@click.option("--person", "person_id", type=int, required=True, help="Id of the person.")
@photo_option
@click.option("--consent", "consent_id", type=int, help="Consent record id; default: the person's active consent.")
def face_enroll(config_path: Path, person_id: int, photo_path: Path, consent_id: int | None) -> None:
    """Enroll a person's face from a photo.

    Replaces their template of the same model. Exits 1 if the photo is refused, 2 on any other refusal.
    """
    from server.extensions import db
    from server.models import ConsentRecord, Person
    from server.services.audit import Actor
    from server.services.errors import DomainError
    from server.services.face.consent_rules import active_consent
    from server.services.face.enrollment import PhotoRejected, enroll_photo

    _config, app = server_app(config_path, False)
    with app.app_context():
        engine = state().face
        try:
            photo = _read_photo(photo_path, engine.photo_limits.max_bytes)
            person = db.session.get(Person, person_id)
            if person is None:
                fail(f"no person with id {person_id}")
            consent = active_consent(person) if consent_id is None else db.session.get(ConsentRecord, consent_id)
            enrolled = enroll_photo(
                db.session,
                Actor("cli"),
                state().keys,
                engine.model(),
                person,
                consent,
                photo,
                engine.limits,
                engine.photo_limits,
            )
            db.session.commit()
        except PhotoRejected as exc:
            _photo_refused(exc)
        except DomainError as exc:
            fail(exc.message)
        click.echo(f"stored face template {enrolled.template.id} (model {enrolled.template.model_id})")
        click.echo(f"measured: {_figures(enrolled.report)}")


@face.command("check")
@config_option
@photo_option
def face_check(config_path: Path, photo_path: Path) -> None:
    """Check a photo against the enrollment gates.

    Prints the verdict and what was measured; nothing is stored. Exits 1 if the photo is refused.
    """
    from server.config import load_server_config
    from server.services.errors import DomainError
    from server.services.face.enrollment import EnrollmentEngine, PhotoRejected, check_photo

    config = load_or_exit(load_server_config, config_path)
    setup_logging(config.log_level)
    engine = EnrollmentEngine(config.face)
    try:
        photo = _read_photo(photo_path, engine.photo_limits.max_bytes)
        report = check_photo(engine.model(), photo, engine.limits, engine.photo_limits)
    except PhotoRejected as exc:
        _photo_refused(exc)
    except DomainError as exc:
        fail(exc.message)
    click.echo("photo accepted")
    click.echo(f"measured: {_figures(report)}")
