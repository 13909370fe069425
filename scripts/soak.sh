#!/usr/bin/env bash
# Soak: one long `wfplab run` on simulated guests that fail every minute (one reboots
# unexpectedly, one's agent dies), then what survived. Prints samples lost (goal 0),
# targets not recovered (goal 0) and wfplab's resident memory over time (goal: flat).
# Usage: scripts/soak.sh [--duration 30m]   (whole minutes or seconds: 5m, 90s)
set -euo pipefail
cd "$(dirname "$0")/.."
duration=30m
while [ $# -gt 0 ]; do
	case "$1" in
	--duration) duration=${2:?--duration needs a value, e.g. 30m}; shift 2 ;;
	--duration=*) duration=${1#*=}; shift ;;
	*) echo "soak.sh: unknown argument $1 (only --duration D, e.g. 30m)" >&2; exit 2 ;;
	esac
done
case "$duration" in
*m) secs=$(( ${duration%m} * 60 )) ;;
*s) secs=${duration%s} ;;
*) echo "soak.sh: --duration $duration: give minutes or seconds, e.g. 30m or 300s" >&2; exit 2 ;;
esac
[[ "$secs" =~ ^[0-9]+$ && "$secs" -ge 60 && "$secs" -le 86400 ]] || { echo "soak.sh: --duration from 60s to 24h" >&2; exit 2; }

work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
go build -o "$work/wfplab" ./cmd/wfplab
go build -o "$work/soakstat" ./scripts/soakstat

# Windows of 40 s (shorter than the minute between faults, so a cut window runs again
# whole); as many profiles as fill the duration over two phases (about 45 s a window).
n=$(( secs / 90 )); [ "$n" -ge 1 ] || n=1
kinds=(stream-burst fragment-forward single-nbl)
rates=(2000 500 2000)
{
	echo "name: soak"
	echo "provider: {kind: sim, reboot_down: 1s, noise: false}"
	echo "targets:"
	echo "  - {name: reboots, os: win7-x86, faults: \"reboot_every=60s,reboot_down=2s\"}"
	echo "  - {name: agent-dies, os: vista-sp1-x86, faults: \"agent_dies_after=60s\"}"
	echo "phases: [before, after]"
	echo "timing: {warmup: 2s, window: 40s, settle: 1s, sample_interval: 100ms, sample_timeout: 2s}"
	echo "profiles:"
	for i in $(seq 1 "$n"); do
		k=$(( (i - 1) % 3 ))
		echo "  - {name: p$i-${kinds[$k]}, kind: ${kinds[$k]}, rate: ${rates[$k]}}"
	done
	echo "verdict: {threshold_bps: 4096, confidence: 0.95}"
	echo "expect:"
	echo "  - verdict: CLEAN"
	for i in $(seq 1 "$n"); do
		k=$(( (i - 1) % 3 ))
		[ "$k" -lt 2 ] && echo "  - {phase: before, profile: p$i-${kinds[$k]}, verdict: LEAK}"
	done
} > "$work/soak.yaml"

echo "soak: $duration asked, $n profile windows of 40 s per phase, faults every minute; wfplab RSS every 15 s:"
start=$(date +%s)
"$work/wfplab" run --scenario "$work/soak.yaml" --out "$work/results" --seed 1 --quiet > "$work/run.log" 2>&1 &
pid=$!
# Bounded: the run's own deadlines end it; this loop stops at twice the duration anyway.
while kill -0 "$pid" 2>/dev/null && [ $(( $(date +%s) - start )) -lt $(( 2 * secs + 300 )) ]; do
	rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
	[ -n "$rss" ] && printf '  %4ds  %6d MB\n' $(( $(date +%s) - start )) $(( rss / 1024 ))
	sleep 15
done
if kill -0 "$pid" 2>/dev/null; then
	echo "soak: wfplab still running after $(( 2 * secs + 300 ))s: killing it" >&2
	kill "$pid"
fi
status=0
wait "$pid" || status=$?
pid=
echo "soak: wfplab run exited $status after $(( $(date +%s) - start ))s"
grep -E "expectations met|^wfplab:" "$work/run.log" || true
"$work/soakstat" "$work"/results/*/wfplab.db
