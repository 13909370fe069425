// Package bench runs a scenario's phases on each target, records everything in the run
// store as it arrives, and turns samples into leak-rate estimates and verdicts.
package bench
