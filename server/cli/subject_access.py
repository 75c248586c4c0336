"""`gatehouse subject-access`: everything held about a person, as JSON or a readable page; never a face template."""

from __future__ import annotations

import os
from pathlib import Path

import click

from server.cli.common import app_context, config_option, fail


@click.command("subject-access")
@config_option
@click.option("--person", "person_id", type=int, required=True, help="Id of the person.")
@click.option(
    "--format", "fmt", type=click.Choice(["json", "html"]), default="json", show_default=True, help="Report format."
)
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the report to this file (created readable by its owner only) instead of standard output.",
)
def subject_access(config_path: Path, person_id: int, fmt: str, out_path: Path | None) -> None:
    """Everything held about a person (PIPL art. 45, GDPR art. 15); the export is written to the audit log."""
    from server.console.subject_access import render_document, to_json
    from server.extensions import db
    from server.models import Person
    from server.services.audit import Actor
    from server.services.errors import DomainError
    from server.services.privacy import subject_access as service

    if out_path is not None and not out_path.parent.is_dir():
        fail(f"cannot write {out_path}: {out_path.parent} is not a directory")
    with app_context(config_path):
        person = db.session.get(Person, person_id)
        if person is None:
            fail(f"no person with id {person_id}")
        try:
            report = service.export(db.session, Actor("cli"), person, fmt)
        except DomainError as exc:
            fail(exc.message)
        text = to_json(report) if fmt == "json" else render_document(report)
        # Audited before anything leaves the server: an export is never unrecorded.
        db.session.commit()
    if out_path is None:
        click.echo(text, nl=False)
        return
    _write_private(out_path, text)
    click.echo(f"wrote {out_path}", err=True)


def _write_private(path: Path, text: str) -> None:
    # Personal data: the file is the operator's alone, even if their umask is permissive.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror}")
