#!/usr/bin/env bash
# Runs every Go fuzz target for a bounded time each (FUZZTIME, default 5s): the scenario
# loader, the agent's lines, SOAP on both sides (the simulated guest's WinRM server and the
# lab's transport and answer parsers), cmd.exe's interpreter, the fault spec. A failure
# leaves its input under the package's testdata/fuzz, where plain `go test` replays it.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-5s}
status=0
# Every Fuzz function in a _test.go file, as "package-dir name".
while read -r file name; do
	dir=./$(dirname "$file")
	echo "-- $dir $name ($fuzztime)"
	if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$dir" >/tmp/fuzz.$$.log 2>&1; then
		status=1
		tail -n 30 /tmp/fuzz.$$.log
	fi
done < <(git ls-files '*_test.go' | xargs grep -H -o -E '^func (Fuzz[A-Za-z0-9_]+)' | sed -E 's/:func / /')
rm -f /tmp/fuzz.$$.log
[ "$status" -eq 0 ] && echo "fuzz: every target ran $fuzztime without a failure"
exit "$status"
