#!/usr/bin/env bash
# appliance-stream.sh: stream-burst alone on the two QEMU appliances of
# scenarios/examples/qemu-appliances.yaml, before and after the hotfix, and the multi-NBL
# chains per second the driver blocked in each cell (the README's figures for the wait on
# each burst's reset). Needs what that scenario needs (lab/qemu/install-deps.sh). About 2 minutes.
#
#   scripts/appliance-stream.sh [--conns N] [--seed N]
set -euo pipefail
cd "$(dirname "$0")/.."
conns=4 seed=1
while [ $# -gt 0 ]; do
  case "$1" in
    --conns) conns=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    *) echo "usage: $0 [--conns N] [--seed N]" >&2; exit 2 ;;
  esac
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The example with its other profiles (and their expectations) left out.
grep -v -e 'kind: fragment-forward' -e 'kind: single-nbl' -e 'profile: fragment-forward' -e 'profile: single-nbl' \
  scenarios/examples/qemu-appliances.yaml | sed "s/conns: 4}/conns: $conns}/" >"$work/stream.yaml"
status=0
go run ./cmd/wfplab run --scenario "$work/stream.yaml" --out "$work" --seed "$seed" --quiet || status=$?
echo
echo "multi-NBL chains blocked per second and segments/s achieved of asked, per cell ($conns connections):"
grep -h '| stream-burst |' "$work"/*/summary.md | awk -F'|' '{printf "  %-14s %-7s %8s chains/s  %s of 2,000 segments/s  %s\n", $2, $3, $11, $12, $13}'
exit "$status"
