#!/usr/bin/env bash
# Every test wfplab has, on a fresh machine with only Go: installs the guest toolchain
# (mingw-w64, osslsigncode), QEMU and Chromium when missing, builds the guest tools, fetches Debian's
# kernel for the VM tests, checks formatting, vet and staticcheck, runs every Go test, then
# the default scenario on simulated guests and the appliance scenario on real QEMU VMs,
# end to end. Prints how many tests passed, failed and skipped, and why each skip happened.
set -euo pipefail
cd "$(dirname "$0")"

command -v go >/dev/null || { echo "test.sh: Go is not installed; install Go 1.26 first" >&2; exit 2; }

echo "== guest toolchain"
./guest/install-deps.sh

echo "== wine64 (the real agent runs under it in guest/wine_test.go)"
./guest/install-wine.sh

echo "== headless Chromium (the report's rendering and PDF tests)"
./internal/chromium/install-deps.sh

echo "== build guest tools"
make -C guest

echo "== QEMU, Debian's kernel and an appliance for the VM tests"
./lab/qemu/install-deps.sh
appliance=$(mktemp -d)
out=$(mktemp -d)
log=$(mktemp)
trap 'rm -rf "$appliance" "$out" "$log"' EXIT
# Fetches Debian's kernel package once (cached in the user's cache folder) and builds an
# appliance from this wfplab; the lab/qemu tests boot both.
go run ./cmd/wfplab sim appliance --target win7-x64 --out "$appliance" >/dev/null
kernel=$(ls -t "${XDG_CACHE_HOME:-$HOME/.cache}"/wfplab/kernel/*/vmlinuz-* | head -n 1)
export WFPLAB_QEMU_KERNEL="$kernel" WFPLAB_QEMU_MODULES="$(dirname "$kernel")"
export WFPLAB_QEMU_APPLIANCE_KERNEL="$appliance/vmlinuz" WFPLAB_QEMU_APPLIANCE_INITRD="$appliance/initrd.gz"

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt would change:"; echo "$unformatted"; exit 1; fi

echo "== go vet"
go vet ./...

echo "== staticcheck"
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

# The Vagrantfile, checked by Vagrant itself where Vagrant and its winrm gem are installed
# (Debian's vagrant 2.3.4 has no winrm gem, so it cannot load a WinRM Vagrantfile; the
# provider's own tests use a fake vagrant and need neither).
if ! command -v vagrant >/dev/null 2>&1; then
  echo "== vagrant validate: skipped, vagrant is not installed"
elif ! validate_out=$(cd vagrant && vagrant validate --ignore-provider 2>&1); then
  if printf '%s' "$validate_out" | grep -q "cannot load such file -- winrm"; then
    echo "== vagrant validate: skipped, this vagrant has no winrm gem (Debian's package; HashiCorp's bundles it)"
  else
    printf '%s\n' "$validate_out"
    echo "== vagrant validate: FAILED"
    exit 1
  fi
else
  echo "== vagrant validate: $validate_out"
fi

echo "== go test"
status=0
go test -race -timeout 20m -json ./... >"$log" 2>&1 || status=$?
# One line per package, each failed test with its own output, each skip with its reason,
# and the counts (scripts/testsummary reads go test's JSON events).
go run ./scripts/testsummary <"$log" || status=1
[ "$status" -eq 0 ] || exit "$status"

echo "== fuzz (every fuzz target, 5 s each)"
./scripts/fuzz.sh

echo "== wfplab run (default scenario, simulated guests)"
go run ./cmd/wfplab run --out "$out" --seed 1

echo "== wfplab run (two simulated guests booted in real QEMU VMs, TCG)"
status=0
go run ./cmd/wfplab run --scenario scenarios/examples/qemu-appliances.yaml --out "$out" --seed 1 --quiet || status=$?
if [ "$status" -ne 0 ]; then
  # The run folder goes with this script's exit: keep what the VMs said (a hung guest's
  # /init writes its goroutines there).
  for console in "$out"/*/vm/*/console.log; do
    [ -f "$console" ] || continue
    at=$(grep -a -n -m 1 "wfplab: watchdog:" "$console" | cut -d: -f1 || true)
    if [ -n "$at" ]; then
      echo "== ${console#"$out"/} (its watchdog's report, with the 40 lines before it)"
      sed -n "$((at > 40 ? at - 40 : 1)),$((at + 400))p" "$console"
    else
      echo "== ${console#"$out"/} (last 150 lines)"
      tail -n 150 "$console"
    fi
  done
  exit "$status"
fi
