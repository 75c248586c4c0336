#!/usr/bin/env bash
# Write requirements.lock from the dev environment: every package `pip install -e '.[dev]'` resolved to, pinned.
# scripts/test.sh installs with it as constraints and audits it (scripts/audit_deps.py). Run after changing
# pyproject.toml's dependencies, once .venv has them.
set -euo pipefail
cd "$(dirname "$0")/.."
{
  echo "# The locked set: every package the dev environment (pip install -e '.[dev]') resolves to, pinned."
  echo "# scripts/test.sh installs with these as constraints and audits them (scripts/audit_deps.py)."
  echo "# Regenerate with scripts/lock.sh after changing pyproject.toml's dependencies."
  .venv/bin/python -m pip freeze --exclude-editable 2>/dev/null | grep -v -e '^#' -e '^-e' -e '^gatehouse=='
} > requirements.lock
