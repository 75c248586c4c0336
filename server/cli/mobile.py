"""`gatehouse mobile-api`: serve the residents' phone-app API."""

from __future__ import annotations

from pathlib import Path

import click

from gatehouse_core.keyring import KeyDirError
from server.cli.common import check_option, config_option, fail, load_or_exit, setup_logging


@click.group("mobile-api")
def mobile_api_group() -> None:
    """The residents' phone-app API."""


@mobile_api_group.command("run")
@config_option
@check_option
def mobile_api_run(config_path: Path, check_config: bool) -> None:
    """Serve the mobile API (waitress), with the thread that sends queued sign-in codes."""
    from waitress import serve

    from mobile_api.app import create_app
    from mobile_api.config import load_mobile_api_config
    from mobile_api.state import mobile

    config = load_or_exit(load_mobile_api_config, config_path, check_config)
    setup_logging(config.log_level)
    try:
        app = create_app(config)
    except KeyDirError as exc:
        fail(str(exc))
    with app.app_context():
        deliverer = mobile().deliverer
    if deliverer is not None:
        # Also sends what was queued before a restart.
        deliverer.start(app)
    try:
        serve(app, host=config.http.host, port=config.http.port, threads=config.http.threads)
    finally:
        if deliverer is not None:
            deliverer.stop()
