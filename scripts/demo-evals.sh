#!/usr/bin/env bash
# The eval step of `make demo` (docs/evals.md): quality as a recovery objective.
# Two simulated providers (OpenAI dialect in eu-west, Anthropic in us-east) behind
# `drkit gateway serve` with the route's quality canary on; then
#   1. an eval run through the route (the baseline: every answer right, HTTP 200);
#   2. the primary's quality is broken with the simulator (wrong answers, still HTTP 200);
#   3. an eval run straight at the primary, and `drkit eval compare` calls it a regression
#      with a p-value and an effect size;
#   4. the canary holds the primary out of the route (failover reason `quality`): the next
#      eval run through the route is all right again, served from the secondary;
#   5. the primary is fixed; the canary lets it back.
# Usage: scripts/demo-evals.sh [DIR] (default: $DEMO_DIR or demo-out, then /evals-demo).
set -euo pipefail
cd "$(dirname "$0")/.."
DRKIT="${DRKIT:-.venv/bin/drkit}"
PY="${PY:-.venv/bin/python}"
dir="${1:-${DEMO_DIR:-demo-out}}/evals-demo"
rm -rf -- "$dir"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
field() { "$PY" -c "import json, sys; print(json.load(sys.stdin)$1)"; }
A=$(port) A_ADMIN=$(port) B=$(port) B_ADMIN=$(port) G=$(port)
export DEMO_SIM_KEY=sk-demo-simulator

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

for i in $(seq 0 19); do
  echo "{\"id\": \"q$i\", \"prompt\": \"What is step $i of the runbook? s$i\", \"expected\": \"s$i\", \"scorer\": \"contains\"}"
done >"$dir/golden.jsonl"
head -n 3 "$dir/golden.jsonl" >"$dir/canary.jsonl"
cat >"$dir/drkit.yaml" <<EOF
version: 1
name: evals-demo
tiers:
  critical: {rto: 5m, rpo: 1h, multi_region: true, quality: {floor: 0.9, alpha: 0.05}}
repositories:
  primary: {name: primary, url: "file://$dir/repo", region: eu-west}
serving:
  auth: {disabled: true}            # loopback demo only
  gateway: {port: $G}
  routes:
    - name: assistant
      tier: critical
      canary: {eval_set: canary.jsonl, every: 1s, max_share: 0.5}
      targets:
        - {name: sim-eu, provider: openai, region: eu-west, model: sim-large,
           base_url: "http://127.0.0.1:$A/v1", api_key_env: DEMO_SIM_KEY}
        - {name: sim-us, provider: anthropic, region: us-east, model: sim-large,
           base_url: "http://127.0.0.1:$B", api_key_env: DEMO_SIM_KEY}
eval_results:
  - {name: eval-history, path: ./results, tier: critical}
EOF
plan=(--plan "$dir/drkit.yaml")

"$DRKIT" simulate provider --dialect openai --port "$A" --admin-port "$A_ADMIN" --echo \
  --api-key-env DEMO_SIM_KEY >"$dir/sim-eu.log" 2>&1 &
pids+=($!)
"$DRKIT" simulate provider --dialect anthropic --port "$B" --admin-port "$B_ADMIN" --echo \
  --api-key-env DEMO_SIM_KEY >"$dir/sim-us.log" 2>&1 &
pids+=($!)
"$DRKIT" gateway serve "${plan[@]}" >"$dir/gateway.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 150); do
  curl -fs "http://127.0.0.1:$G/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "http://127.0.0.1:$G/readyz" >/dev/null || { cat "$dir/gateway.log"; exit 1; }
quality() { curl -fs "http://127.0.0.1:$G/admin/targets" | field "['quality'][0]['state']"; }

echo "== eval run golden.jsonl --route assistant   (the baseline)"
base=$("$DRKIT" eval run "$dir/golden.jsonl" --route assistant "${plan[@]}" --json | field "['run_id']")
"$DRKIT" eval show "$base" "${plan[@]}" | sed -n 1,3p

echo
echo "== break sim-eu's quality: wrong answers, still HTTP 200"
curl -fs -X PUT "http://127.0.0.1:$A_ADMIN/_sim/faults" -d '{"kind": "wrong_answer"}' >/dev/null
echo "== eval run straight at sim-eu (exit 1: below the floor 0.9)"
cand=$("$DRKIT" eval run "$dir/golden.jsonl" --target "http://127.0.0.1:$A/v1" --model sim-large \
  --api-key-env DEMO_SIM_KEY "${plan[@]}" --json | field "['run_id']") || true
echo "== eval compare $base $cand"
"$DRKIT" eval compare "$base" "$cand" "${plan[@]}" || echo "(exit $?: a regression)"

echo
echo "== traffic through the route while the canary checks each target"
for _ in $(seq 1 20); do
  "$DRKIT" eval run "$dir/golden.jsonl" --route assistant "${plan[@]}" --json >/dev/null 2>&1 || true
  [ "$(quality)" = degraded_quality ] && break
done
echo "sim-eu canary state: $(quality) (GET /admin/targets)"
echo "== eval run golden.jsonl --route assistant   (served by the secondary, HTTP 200)"
"$DRKIT" eval run "$dir/golden.jsonl" --route assistant "${plan[@]}" --json | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
print("run %s: mean score %.3f, served by %s, passed %s"
      % (d["run_id"], d["mean_score"], ", ".join(d["served_by"]), d["passed"]))'


echo
echo "== fix sim-eu; the canary lets it back"
curl -fs -X DELETE "http://127.0.0.1:$A_ADMIN/_sim/faults" >/dev/null
for _ in $(seq 1 20); do
  "$DRKIT" eval run "$dir/golden.jsonl" --route assistant "${plan[@]}" --json >/dev/null 2>&1 || true
  [ "$(quality)" = ok ] && break
done
echo "sim-eu canary state: $(quality)"
grep -h "quality_" "$dir/gateway.log" | sed 's/^/  /' || true
echo
echo "== eval history"
"$DRKIT" eval history "${plan[@]}"
