#!/usr/bin/env bash
# Every test wfplab has, on a fresh machine with only Go: installs the guest toolchain
# (mingw-w64, osslsigncode) when missing, builds the guest tools, vets, tests, and runs
# the default scenario on the simulated guests end to end.
set -euo pipefail
cd "$(dirname "$0")"

command -v go >/dev/null || { echo "test.sh: Go is not installed; install Go 1.26 first" >&2; exit 2; }

echo "== guest toolchain"
./guest/install-deps.sh

echo "== build guest tools"
make -C guest

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt would change:"; echo "$unformatted"; exit 1; fi

echo "== go vet"
go vet ./...

echo "== go test"
go test -race -timeout 20m ./...

echo "== wfplab run (default scenario, simulated guests)"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
go run ./cmd/wfplab run --out "$out" --seed 1
