"""`gatehouse server`: the console web server and the worker."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import click

from server.cli.common import check_option, config_option, fail, server_app, stop_on_signals


@click.group()
def server() -> None:
    """The console web server and the worker."""


@server.command("run")
@config_option
@check_option
def server_run(config_path: Path, check_config: bool) -> None:
    """Serve the console (waitress)."""
    from waitress import create_server

    from server.extensions import db
    from server.ops.private_files import private_sqlite
    from server.services.accounts.users import admin_exists

    config, app = server_app(config_path, check_config)
    private_sqlite(config.database_url)  # closes a database file an older version left readable
    if config.mode == "production":
        with app.app_context():
            if not admin_exists(db.session):
                fail(
                    "production mode needs an admin user; create one with "
                    "`gatehouse users create --config FILE --username NAME --role admin`"
                )
    # A request lookahead lets waitress notice a closed browser while a live stream (the operations screen) runs.
    httpd = create_server(
        app, host=config.http.host, port=config.http.port, threads=config.http.threads, channel_request_lookahead=1
    )
    stop = threading.Event()
    stop_on_signals(stop)
    threading.Thread(target=lambda: (stop.wait(), httpd.close()), daemon=True).start()
    logging.getLogger(__name__).info("console listening on http://%s:%d/", config.http.host, config.http.port)
    try:
        httpd.run()
    except OSError:
        if not stop.is_set():
            raise


@server.command("worker")
@config_option
@check_option
def server_worker(config_path: Path, check_config: bool) -> None:
    """Run the worker: MQTT ingest of terminal status (sync publisher and event ingest to follow)."""
    from server.link.worker import Worker
    from server.ops.private_files import private_sqlite

    config, app = server_app(config_path, check_config)
    private_sqlite(config.database_url)
    stop = threading.Event()
    stop_on_signals(stop)
    Worker(app, stop).run()
