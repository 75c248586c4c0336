"""`gatehouse demo`: the whole system on one machine, in one command."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".gatehouse-demo"),
    show_default=True,
    help="Where the demo keeps its database, keys and terminal store.",
)
@click.option("--http-port", type=int, default=8080, show_default=True, help="Console port (a free one if taken).")
@click.option(
    "--mqtt-port", type=int, default=1884, show_default=True, help="Embedded broker port (a free one if taken)."
)
@click.option("--api-port", type=int, default=8090, show_default=True, help="Phone-app API port (a free one if taken).")
@click.option(
    "--face-models",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder with face models (YuNet + SFace, or buffalo_s), or one holding opencv_zoo/ or buffalo_s/. "
    "Default: ../shared/models beside the repository; without models face stays off.",
)
def demo(data_dir: Path, http_port: int, mqtt_port: int, api_port: int, face_models: Path | None) -> None:
    """Server on SQLite, embedded MQTT broker, worker, phone-app API and one simulated terminal, in one command.

    A restart keeps the ports and the admin and app passwords (kept in the data directory).
    """
    from server.ops.demo import run_demo

    sys.exit(run_demo(data_dir.resolve(), http_port, mqtt_port, api_port, face_models))
