#!/usr/bin/env bash
# Set up Gatehouse in a local virtualenv and start the demo: console on SQLite, embedded MQTT
# broker, the worker and one simulated door terminal. Needs only Python 3.11+. Ctrl-C stops it.
# Extra arguments go to `gatehouse demo` (see `gatehouse demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

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
.venv/bin/python -m pip install -q --upgrade pip
# The demo runs every deployable on one machine: the server, the phone-app API, a terminal, and face.
.venv/bin/python -m pip install -q -c requirements.lock -e ".[server,mobile,terminal,face]"
exec .venv/bin/gatehouse demo "$@"
