#!/bin/sh
# Benchmarks the traffic generator on loopback (issue 4's performance goals): maximum 64-byte
# datagram rate of one sending goroutine next to iperf3's, pacing accuracy at 1k/10k/50k/200k
# datagrams/s over 10 s, and CPU at 50k datagrams/s. Installs Debian's iperf3 when missing.
#
#   cmd/trafficbench/run.sh            # the reference run, about 80 s
#   cmd/trafficbench/run.sh -quick     # 2-second runs, a smoke test
# Other flags: -max-secs, -pace-secs, -rates, -cpu-rate, -sim-rate, -only max,pace,cpu,sim, -v
# (see `go run ./cmd/trafficbench -h`).
set -eu
cd "$(dirname "$0")/../.."

if ! command -v iperf3 >/dev/null 2>&1; then
	echo "iperf3 is missing: installing Debian's package with apt-get" >&2
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO="sudo"
	if ! $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y iperf3 >&2; then
		$SUDO apt-get update >&2
		$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y iperf3 >&2 ||
			echo "could not install iperf3: the benchmark runs without the comparison" >&2
	fi
fi

bin="$(mktemp -d)/wfplab-trafficbench"
trap 'rm -rf "$(dirname "$bin")"' EXIT
go build -o "$bin" ./cmd/trafficbench
"$bin" "$@"
