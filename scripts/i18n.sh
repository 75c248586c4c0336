#!/usr/bin/env bash
# Console translations (Flask-Babel). Usage:
#   scripts/i18n.sh update   extract every marked string and merge it into each language's .po file
#   scripts/i18n.sh compile  build the .mo files the server loads (commit both .po and .mo)
# tests/server/console/test_translations.py fails when a string has no Chinese translation or a .mo is out of date.
set -euo pipefail
cd "$(dirname "$0")/.."
PYBABEL=.venv/bin/pybabel
DIR=server/console/translations
case "${1:-}" in
  update)
    "$PYBABEL" -q extract -F babel.cfg -k _l -k lazy_gettext -o "$DIR/messages.pot" --no-location --sort-output \
      --project=Gatehouse --copyright-holder="Gatehouse contributors" .
    if [ -f "$DIR/zh_CN/LC_MESSAGES/messages.po" ]; then
      "$PYBABEL" -q update -i "$DIR/messages.pot" -d "$DIR" --no-fuzzy-matching --ignore-obsolete
    else
      "$PYBABEL" -q init -i "$DIR/messages.pot" -d "$DIR" -l zh_CN
    fi
    ;;
  compile)
    "$PYBABEL" -q compile -d "$DIR" --statistics
    ;;
  *)
    echo "usage: $0 update|compile" >&2
    exit 2
    ;;
esac
