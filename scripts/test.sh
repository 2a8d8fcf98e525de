#!/usr/bin/env bash
# The whole suite, in two tiers side by side: the tests that need no cluster (CPU-bound:
# real training, fuzzing) and the cluster tests (mostly waiting: pods starting, scrape
# intervals, a 90 s API-server freeze). One after the other they took ~27 min on 2 cores;
# side by side the first tier runs in the second one's waits. Each tier is its own pytest
# session (the cluster tier's in-process operator and local control plane are its alone);
# the first tier's report is printed after the second's. Arguments go to both.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
log=$(mktemp -t gentrain-unit-tier-XXXXXX)
trap 'rm -f "$log"' EXIT

"$PY" -m pytest -m "not cluster" "$@" >"$log" 2>&1 &
unit_tier=$!
"$PY" -m pytest -m cluster "$@"
cluster_rc=$?
wait "$unit_tier"
unit_rc=$?
echo
echo "=============== the tests that need no cluster (run alongside) ==============="
cat "$log"
# 5: nothing collected (arguments that name tests of one tier only).
for rc in "$cluster_rc" "$unit_rc"; do
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then
    exit "$rc"
  fi
done
