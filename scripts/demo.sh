#!/usr/bin/env bash
# Set up Gatehouse in a local virtualenv and start the demo: console on SQLite, embedded MQTT
# broker, the worker and one simulated door terminal. Needs only Python 3.11+. Ctrl-C stops it.
# Extra arguments go to `gatehouse demo` (see `gatehouse demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

for arg in "$@"; do
  if [ "$arg" = "-h" ] || [ "$arg" = "--help" ]; then
    # Answered before anything is installed: a first look must not build a virtualenv.
    cat <<'HELP'
Usage: ./scripts/demo.sh [OPTIONS]

Sets up .venv (the first time, and again when pyproject.toml or requirements.lock change) and runs
`gatehouse demo`: the console on SQLite, the phone-app API, an embedded MQTT broker, the worker and one
simulated door terminal. With face models in ../shared/models (or --face-models) face is switched on and
one resident is enrolled with consent. A restart keeps the ports and the printed passwords.

Options (passed to `gatehouse demo`):
  --data-dir DIRECTORY   Where the demo keeps its database, keys and terminal store [.gatehouse-demo]
  --http-port INTEGER    Console port (a free one if taken) [8080]
  --mqtt-port INTEGER    Embedded broker port (a free one if taken) [1884]
  --api-port INTEGER     Phone-app API port (a free one if taken) [8090]
  --face-models DIRECTORY
                         Folder with face models (YuNet + SFace, or buffalo_s), or one holding
                         opencv_zoo/ or buffalo_s/ [../shared/models beside the repository]
  -h, --help             Show this message and exit.
HELP
    exit 0
  fi
done

python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
  echo "error: Gatehouse needs Python 3.11 or newer; python3 is $(python3 --version 2>&1)" >&2
  exit 2
}
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv
  else
    echo "error: Python's venv module is missing; install it with: sudo apt-get install python3-venv" >&2
    exit 2
  fi
fi
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# Install only when what is installed changes: a restart starts in seconds and needs no network.
stamp=.venv/.gatehouse-demo-installed
wanted=$(cat pyproject.toml requirements.lock | .venv/bin/python -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  # The demo runs every deployable on one machine: the server, the phone-app API, a terminal, and face.
  .venv/bin/python -m pip install -q -c requirements.lock -e ".[server,mobile,terminal,face]"
  echo "$wanted" > "$stamp"
fi
exec .venv/bin/gatehouse demo "$@"
