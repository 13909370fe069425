// Package bench runs a scenario's phases on each target, records everything in the run
// store as it arrives, and turns samples into leak-rate estimates and verdicts.
//
// Throughput (tput_*.go): when the scenario asks for it, each phase ends with repeated
// windows in which the driver permits and counts instead of blocking; per window the
// guest's packets (NBLs) classified per second at each layer and its CPU are derived from the samples
// and stored, and before and after are compared as benchstat does (x/perf's benchmath:
// median, its confidence interval, Mann-Whitney U).
package bench
