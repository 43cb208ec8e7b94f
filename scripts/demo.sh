#!/usr/bin/env bash
# The README's `make demo`: `drkit demo` builds an example AI stack from embedded parts in
# a fresh work directory (an embedded LanceDB collection, a dataset, an eval set, a primary and a
# replica repository, two simulated providers in two regions), then runs
# backup -> register two model versions -> copy -> verify -> game day (the model-regression
# drill included), prints the scorecard and leaves the HTML report;
# then `drkit agent run --once` keeps the plan's cadence once (what is due: backups, copy,
# restore tests, retention) and `drkit rpo` prints the measured RPO per component and region;
# `drkit cost` prices the DR setup per tier from the measured sizes and runs, and what moving
# the vector store to the standard tier would save and risk.
# DEMO_DIR chooses the directory (default: demo-out, replaced if it exists); DEMO_SEED the seed.
set -euo pipefail
cd "$(dirname "$0")/.."
DRKIT=.venv/bin/drkit
dir="${DEMO_DIR:-demo-out}"
seed="${DEMO_SEED:-0}"
rm -rf -- "$dir"

echo "== drkit demo --dir $dir --seed $seed"
"$DRKIT" demo --dir "$dir" --seed "$seed"
echo
echo "== drkit plan check --plan $dir/drkit.yaml"
"$DRKIT" plan check --plan "$dir/drkit.yaml" || true
echo
echo "== drkit drill history --plan $dir/drkit.yaml"
"$DRKIT" drill history --plan "$dir/drkit.yaml"
echo
echo "== drkit model alias history assistant --plan $dir/drkit.yaml"
"$DRKIT" model alias history assistant --plan "$dir/drkit.yaml"
echo
echo "== drkit lineage show assistant@2 / impact train@v1 / check --repo replica"
"$DRKIT" lineage show assistant@2 --plan "$dir/drkit.yaml"
"$DRKIT" lineage impact train@v1 --plan "$dir/drkit.yaml"
"$DRKIT" lineage check --repo replica --plan "$dir/drkit.yaml"
echo
echo "== drkit agent run --once --plan $dir/drkit.yaml"
"$DRKIT" agent run --once --plan "$dir/drkit.yaml"
"$DRKIT" agent status --plan "$dir/drkit.yaml"
echo
echo "== drkit rpo --plan $dir/drkit.yaml"
"$DRKIT" rpo --plan "$dir/drkit.yaml"
echo
echo "== drkit cost --plan $dir/drkit.yaml --html $dir/cost-report.html"
"$DRKIT" cost --plan "$dir/drkit.yaml" --html "$dir/cost-report.html"
echo
echo "== drkit cost --plan $dir/drkit.yaml --what-if kb=standard"
"$DRKIT" cost --plan "$dir/drkit.yaml" --what-if kb=standard
echo
echo "== scripts/demo-evals.sh: quality as a recovery objective (eval runs, the gate, the canary)"
DRKIT="$DRKIT" PY=.venv/bin/python bash scripts/demo-evals.sh "$dir"
echo
echo "The game-day report: $dir/gameday-report.html; the cost report: $dir/cost-report.html"
