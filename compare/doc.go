// Package compare sets two regression runs side by side, as benchstat does: every metric
// of every benchmark line in their bench.txt (or in bench text rebuilt from their stores),
// the median and its confidence interval per side, the change, and a Mann–Whitney U test
// (golang.org/x/perf's benchmath). A metric regresses when it moves the worse way with
// significance and by at least a minimum effect; the CLI exits 1 on any regression.
//
// It comes after plots in the flow (it reads what plots writes, or asks plots to write it
// from a store) and talks to no guest.
package compare
