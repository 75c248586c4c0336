#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh Debian/Ubuntu machine, then run it:
# system packages (mosquitto, PostgreSQL, python3-venv, Chromium), a virtualenv with the project and its
# dev tools, then ruff, mypy, import-linter and pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
  echo "error: Gatehouse needs Python 3.11 or newer; python3 is $(python3 --version 2>&1)" >&2
  exit 2
}

need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v mosquitto_passwd >/dev/null 2>&1 || [ -x /usr/bin/mosquitto_passwd ] || need+=(mosquitto)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
# The real PC/SC stack for the card-reader tests: pcscd, the vsmartcard virtual reader and virtual card
# (Debian's virtual card needs pycryptodome), and what pyscard needs to build (swig, PC/SC headers, gcc).
command -v pcscd >/dev/null 2>&1 || [ -x /usr/sbin/pcscd ] || need+=(pcscd)
[ -e /usr/lib/pcsc/drivers/serial/libifdvpcd.so ] || need+=(vsmartcard-vpcd)
[ -d /usr/lib/python3/site-packages/virtualsmartcard ] || need+=(vsmartcard-vpicc python3-virtualsmartcard)
/usr/bin/python3 -c 'import Cryptodome' >/dev/null 2>&1 || need+=(python3-pycryptodome)
[ -e /usr/include/PCSC/winscard.h ] || need+=(libpcsclite-dev)
command -v swig >/dev/null 2>&1 || need+=(swig)
command -v gcc >/dev/null 2>&1 || need+=(gcc)
python3 -c 'import sysconfig, os, sys; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")) else 1)' \
  || need+=(python3-dev)
# The console's browser tests drive Debian's Chromium through Playwright; Playwright downloads no browser.
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need+=(chromium)
# A Chinese font, so the zh-CN console screenshots show characters rather than empty boxes.
{ command -v fc-list >/dev/null 2>&1 && [ -n "$(fc-list :lang=zh 2>/dev/null)" ]; } || need+=(fonts-wqy-microhei)
if [ "${#need[@]}" -gt 0 ]; then
  echo "== installing system packages: ${need[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
fi
# Lighthouse for the console's browser tests (tests/e2e/test_lighthouse.py), pinned in tools/lighthouse's lock file;
# it uses the Chromium above and downloads no browser. Without Node.js the Lighthouse test fails, as a missing
# browser does.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 \
  && [ ! -x tools/lighthouse/node_modules/.bin/lighthouse ]; then
  echo "== installing Lighthouse into tools/lighthouse (npm ci)"
  npm ci --prefix tools/lighthouse --no-audit --no-fund
fi

if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv"
  python3 -m venv .venv
fi
echo "== installing gatehouse and its dev tools into .venv"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -c requirements.lock -e ".[dev]"

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
echo "== import-linter (the layers in pyproject.toml's [tool.importlinter])"
.venv/bin/lint-imports
echo "== bandit (security findings at medium severity or above; [tool.bandit] in pyproject.toml)"
.venv/bin/bandit -q -c pyproject.toml -r gatehouse_core server terminals mobile_api --severity-level medium
echo "== pip-audit (known vulnerabilities with a fixed release in requirements.lock)"
.venv/bin/python scripts/audit_deps.py requirements.lock
echo "== pytest (SQLite and PostgreSQL, real mosquitto, real pcscd with a virtual reader and card, Chromium)"
# Here the PC/SC and browser tests must run, not skip: a missing stack or browser is a failure.
# The browser tests' screenshots go to $GATEHOUSE_ARTIFACTS/screenshots (default artifacts/screenshots).
GATEHOUSE_REQUIRE_PCSC=1 GATEHOUSE_REQUIRE_BROWSER=1 .venv/bin/pytest "$@"
