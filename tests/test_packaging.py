"""Each deployable installs and imports with its own extra: a door terminal without the web and database stack,
the phone-app API without onnxruntime.

Two checks. The requirement closure of each install (read from the installed metadata, markers and extras
evaluated) leaves out what the deployable must not pull in. And in a fresh interpreter where every distribution
outside that closure is missing (a meta-path finder raises ModuleNotFoundError for its modules), every module of
the deployable imports and its command or app starts. So adding `import flask` to a terminal module, or a
library a deployable imports without listing it in its extra, fails here.

The metadata is the installed one: after editing pyproject.toml, reinstall (`pip install -e ".[dev]"`).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Collection
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support import REPO

ROOTS = {"gatehouse_core", "server", "terminals", "mobile_api"}
# What only the server side may use: a door terminal never installs it.
SERVER_STACK = {"flask", "werkzeug", "sqlalchemy", "flask-sqlalchemy", "alembic", "psycopg", "amqtt", "waitress"}
# Import names of SERVER_STACK, blocked in the terminal checks even if someone also lists them in [terminal].
SERVER_STACK_MODULES = {name.replace("-", "_") for name in SERVER_STACK}


def closure(requirement: str) -> set[str]:
    """Normalized names of the distributions `pip install requirement` brings in, from installed metadata."""
    extras_seen: dict[str, set[str]] = {}
    todo = [Requirement(requirement)]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        wanted = {canonicalize_name(e) for e in req.extras}
        first_visit = name not in extras_seen
        new_extras = wanted - extras_seen.get(name, set())
        if not first_visit and not new_extras:
            continue
        extras_seen[name] = extras_seen.get(name, set()) | wanted
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            pytest.fail(f"{name} (needed by {requirement}) is not installed; run pip install -e '.[dev]'")
        # Base requirements once; those of an extra when that extra is first asked for.
        contexts = ({""} if first_visit else set()) | new_extras
        for text in requires:
            sub = Requirement(text)
            if sub.marker is None:
                if first_visit:
                    todo.append(sub)
            elif any(sub.marker.evaluate({"extra": extra}) for extra in contexts):
                todo.append(sub)
    return set(extras_seen)


def missing_modules(allowed: set[str]) -> set[str]:
    """Top-level import names that come only from distributions outside `allowed`."""
    names = set()
    for top, dists in metadata.packages_distributions().items():
        if top in ROOTS or top in sys.stdlib_module_names:
            continue
        if not any(canonicalize_name(d) in allowed for d in dists):
            names.add(top)
    return names


@pytest.mark.parametrize("extras", ["terminal", "terminal,face", "terminal,face,pcsc"])
def test_a_door_terminal_installs_without_the_server_stack(extras):
    pulled = closure(f"gatehouse[{extras}]")
    assert {"numpy", "opencv-python-headless", "pydantic", "paho-mqtt", "click"} <= pulled
    assert not pulled & SERVER_STACK, f"gatehouse[{extras}] pulls in {sorted(pulled & SERVER_STACK)}"


def test_the_phone_app_api_installs_without_onnxruntime_or_the_demo_broker():
    pulled = closure("gatehouse[mobile]")
    assert {"flask", "sqlalchemy", "flask-openapi3", "pyjwt", "segno"} <= pulled
    assert "onnxruntime" not in pulled
    assert "amqtt" not in pulled


def test_the_dev_install_holds_every_deployable():
    pulled = closure("gatehouse[dev]")
    for extra in ("server", "mobile", "terminal", "face", "pcsc"):
        assert closure(f"gatehouse[{extra}]") <= pulled, extra
    assert "import-linter" in pulled


def test_the_block_list_is_derived_from_what_is_installed():
    """The subprocess checks below block what a deployable does not install; make sure that is not nothing."""
    blocked = missing_modules(closure("gatehouse[terminal]"))
    assert {"flask", "sqlalchemy", "psycopg", "amqtt", "onnxruntime", "smartcard"} <= blocked
    assert not blocked & {"numpy", "cv2", "pydantic", "paho", "click"}
    assert "onnxruntime" in missing_modules(closure("gatehouse[mobile]"))


# A fresh interpreter with the modules of uninstalled distributions made missing, then one of the checks below.
CHILD = r"""
import importlib
import importlib.abc
import json
import pkgutil
import sys
import traceback

blocked = frozenset(json.loads(sys.argv[1]))


class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r} (not installed with this extra)", name=name)
        return None


sys.meta_path.insert(0, NotInstalled())
for loaded in [m for m in sys.modules if m.partition(".")[0] in blocked]:  # from .pth files at start-up
    del sys.modules[loaded]


def import_all(package, skip=()):
    failures = []
    root = importlib.import_module(package)
    for info in pkgutil.walk_packages(root.__path__, package + "."):
        if info.name.endswith(".__main__") or info.name in skip:
            continue
        try:
            importlib.import_module(info.name)
        except ImportError:
            failures.append(f"{info.name}:\n{traceback.format_exc()}")
    if failures:
        sys.exit("cannot import:\n" + "\n".join(failures))


def run_cli(main, *args):
    code = main(list(args), standalone_mode=False)
    if code not in (None, 0):
        sys.exit(f"{args} exited {code}")


def terminal(work, skip):
    from pathlib import Path

    import_all("gatehouse_core", skip)
    import_all("terminals", skip)
    from terminals.cli import main

    run_cli(main, "--help")
    for command in main.commands:
        run_cli(main, command, "--help")
    # `run` imports the whole runtime before it checks the config.
    config = Path(work) / "terminal.toml"
    config.write_text(
        'terminal_id = "t-1"\nsite = "demo"\ndata_dir = "data"\nserver_public_key = "key.pem"\n'
        'seal_key_file = "seal.key"\ncredential_key_file = "credential.key"\n[mqtt]\nhost = "broker.lan"\n'
    )
    try:
        main(["run", "--config", str(config), "--check-config"], standalone_mode=False)
    except SystemExit as exc:
        if exc.code != 0:
            raise


def mobile(work, skip):
    from pathlib import Path

    import_all("mobile_api", skip)
    from gatehouse_core.configfile import parse_config
    from gatehouse_core.keyring import init_keys
    from mobile_api.app import create_app
    from mobile_api.config import MobileApiConfig

    key_dir = Path(work) / "keys"
    init_keys(key_dir)
    config = parse_config(
        MobileApiConfig,
        {
            "mode": "development",
            "database_url": f"sqlite:///{Path(work) / 'gh.db'}",
            "key_dir": str(key_dir),
            "login_codes": {"sender": "spool", "spool_dir": str(Path(work) / "codes")},
        },
    )
    app = create_app(config)
    response = app.test_client().get("/api/v1/openapi.json")
    if response.status_code != 200:
        sys.exit(f"openapi.json answered {response.status_code}")


def server(work, skip):
    import_all("server", skip)
    from server.cli.main import main

    run_cli(main, "--help")


def demo(work, skip):
    for package in ("gatehouse_core", "server", "mobile_api", "terminals"):
        import_all(package, skip)
    from server.cli.main import main

    run_cli(main, "demo", "--help")


check, work = sys.argv[2], sys.argv[3]
globals()[check](work, set(json.loads(sys.argv[4])))
leaked = sorted(m for m in sys.modules if m.partition(".")[0] in blocked)
if leaked:
    sys.exit(f"imported although not installed: {leaked}")
"""


def run_without(blocked: set[str], check: str, work: Path, skip: Collection[str] = ()) -> None:
    """Run one CHILD check with `blocked` modules missing; fail with its output if it does not succeed."""
    result = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(sorted(blocked)), check, str(work), json.dumps(sorted(skip))],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"{check} check failed:\n{result.stdout}\n{result.stderr}"


@pytest.mark.parametrize(
    ("extras", "skip"),
    [
        # InsightFace models run on onnxruntime, which comes with [face]; the OpenCV engine needs no more.
        ("terminal", {"gatehouse_core.face.insightface_engine"}),
        ("terminal,face", set()),
    ],
)
def test_a_door_terminal_imports_and_starts_with_only_its_extra(tmp_path, extras, skip):
    blocked = missing_modules(closure(f"gatehouse[{extras}]")) | SERVER_STACK_MODULES
    # pyscard (and gpiod, not installed here at all) are imported only inside the real reader and relay, so every
    # module imports without them.
    assert "smartcard" in blocked
    run_without(blocked, "terminal", tmp_path, skip)


def test_the_phone_app_api_imports_and_builds_with_only_its_extra(tmp_path):
    # onnxruntime blocked even if someone lists it in [mobile]: selfie enrollment must not need it at import.
    blocked = missing_modules(closure("gatehouse[mobile]")) | {"onnxruntime"}
    run_without(blocked, "mobile", tmp_path)


def test_the_server_imports_with_only_its_extra(tmp_path):
    # Without [face]: the console enrolls with the OpenCV engine; onnxruntime is imported only where InsightFace runs.
    run_without(missing_modules(closure("gatehouse[server]")), "server", tmp_path)


def test_the_demo_script_installs_everything_the_demo_runs(tmp_path):
    # scripts/demo.sh is the README's first command on a fresh machine: its extras must hold every deployable it runs.
    script = (REPO / "scripts" / "demo.sh").read_text()
    found = re.search(r'pip install [^\n]*-e "\.\[([a-z,]+)\]"', script)
    assert found, "scripts/demo.sh no longer installs gatehouse with extras"
    run_without(missing_modules(closure(f"gatehouse[{found.group(1)}]")), "demo", tmp_path)
