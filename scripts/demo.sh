#!/usr/bin/env bash
# The README's `make demo`: write the starter DR plan into a temporary directory and check
# it against the framework. (The drills issue turns this into `drkit demo`.)
set -euo pipefail
cd "$(dirname "$0")/.."
DRKIT=.venv/bin/drkit
work="$(mktemp -d "${TMPDIR:-/tmp}/drkit-demo.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "== drkit init $work"
"$DRKIT" init "$work"
echo
echo "== drkit plan check --plan $work/drkit.yaml"
"$DRKIT" plan check --plan "$work/drkit.yaml"
echo
echo "== drkit plan show --plan $work/drkit.yaml (tiers)"
"$DRKIT" plan show --plan "$work/drkit.yaml" --json | .venv/bin/python -c \
  'import json, sys; print(json.dumps(json.load(sys.stdin)["tiers"], indent=2))'
