package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wfplab/wfplab/compare"
)

func newCompareCmd() *cobra.Command {
	o := compare.DefaultOptions()
	var format string
	var minChangePct float64
	var minAbs []string
	cmd := &cobra.Command{
		Use:   "compare BASE CANDIDATE",
		Short: "Compare two regression runs metric by metric, as benchstat does; exit 1 on a regression",
		Long: `compare reads each side from a run folder (its bench.txt, else its wfplab.db), a
bench.txt, a wfplab.db, or a folder of run folders (their runs pooled as repeated samples),
and prints, for every metric of every benchmark, the median and its 95% interval per side,
the change and the Mann–Whitney U test's p-value (golang.org/x/perf's benchmath).

A metric regresses when it moves the worse way (each unit's "better" from bench.txt) with
p ≤ --alpha, by at least --min-change percent and by at least its --min-abs. With one value
per run the test needs 4 runs a side to find anything at alpha 0.05.

Exit status: 1 when a metric regresses, 0 when none does, 2 on errors.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.MinChange = minChangePct / 100
			for _, s := range minAbs {
				unit, v, ok := strings.Cut(s, "=")
				f, err := strconv.ParseFloat(v, 64)
				if !ok || unit == "" || err != nil || !(f >= 0) {
					return withExit(exitFailure, fmt.Errorf("--min-abs %q: give UNIT=VALUE with a value of 0 or more, e.g. leak-B/s=1024", s))
				}
				o.MinAbs[unit] = f
			}
			if !validFormat(format) {
				return withExit(exitFailure, fmt.Errorf("--format %q: give one of %s", format, strings.Join(compare.Formats, ", ")))
			}
			base, err := compare.Load(args[0])
			if err != nil {
				return withExit(exitFailure, fmt.Errorf("base: %w", err))
			}
			cand, err := compare.Load(args[1])
			if err != nil {
				return withExit(exitFailure, fmt.Errorf("candidate: %w", err))
			}
			res, err := compare.Compare(base, cand, o)
			if err != nil {
				return withExit(exitFailure, err)
			}
			if err := res.Write(cmd.OutOrStdout(), format); err != nil {
				return withExit(exitFailure, err)
			}
			if n := res.Count(compare.Regression); n > 0 {
				return withExit(exitUnmet, fmt.Errorf("%d metrics regressed", n))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&format, "format", "text", "output: "+strings.Join(compare.Formats, ", "))
	f.Float64Var(&o.Alpha, "alpha", o.Alpha, "significance level of the U test")
	f.Float64Var(&minChangePct, "min-change", 100*o.MinChange, "smallest change that counts, in percent of the base median")
	f.StringArrayVar(&minAbs, "min-abs", nil, "smallest absolute change that counts for a unit, UNIT=VALUE (repeatable; defaults leak-B/s=1024, B/chain=16)")
	return cmd
}

func validFormat(s string) bool {
	for _, f := range compare.Formats {
		if f == s {
			return true
		}
	}
	return false
}
