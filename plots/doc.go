// Package plots turns a run in the store into what people read: a pool-over-time chart per
// target and an overview chart (PNG and SVG, gonum/plot), a self-contained report.html,
// summary.md, junit.xml and bench.txt (Go benchmark format, for benchstat).
// It reads the store only and never talks to a guest, so a report can be rebuilt later,
// including for a run that was killed half-way.
package plots
