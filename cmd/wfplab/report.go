package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/wfplab/wfplab/bench"
	"github.com/wfplab/wfplab/plots"
	"github.com/wfplab/wfplab/scenarios"
)

// printVerdicts writes the verdict table and returns how many expectations were met and set.
func printVerdicts(w io.Writer, results []bench.CellResult) (met, expected int) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tPHASE\tPROFILE\tLEAK B/s\t95% CI\tB/CHAIN\tVERDICT\tEXPECTED\t")
	for _, r := range results {
		mark := ""
		if r.Expected != "" {
			expected++
			if r.Met {
				met++
				mark = "ok"
			} else if r.Verdict == bench.Incomplete {
				mark = "incomplete"
			} else {
				mark = "NOT MET"
			}
		}
		perChain := "-"
		if !math.IsNaN(r.BytesPerChain) && !math.IsInf(r.BytesPerChain, 0) {
			perChain = fmt.Sprintf("%.0f", r.BytesPerChain)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.0f\t[%.0f, %.0f]\t%s\t%s\t%s %s\t\n",
			r.Target, r.Phase, r.Profile, r.Leak.Slope, r.Leak.Lo, r.Leak.Hi, perChain, r.Verdict, r.Expected, mark)
	}
	tw.Flush()
	return met, expected
}

func newReportCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "report RUN-DIR",
		Short: "Rebuild a run's reports from its wfplab.db alone",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			db := filepath.Join(dir, bench.StoreFile)
			if _, err := os.Stat(db); err != nil {
				return withExit(exitFailure, fmt.Errorf("%s: no run store here (%v): give the folder of one run, e.g. results/<run-id>", dir, err))
			}
			st, err := bench.Open(db)
			if err != nil {
				return withExit(exitFailure, err)
			}
			defer st.Close()
			results, err := rebuildResults(st)
			if err != nil {
				return withExit(exitFailure, err)
			}
			files, err := plots.Write(st, dir)
			if err != nil {
				return withExit(exitFailure, err)
			}
			met, expected := printVerdicts(cmd.OutOrStdout(), results)
			fmt.Fprintf(cmd.OutOrStdout(), "%d of %d expectations met\nreport: %s\n", met, expected, files.Report)
			if met < expected {
				return withExit(exitUnmet, fmt.Errorf("expectations not met"))
			}
			return nil
		},
	}
}

func newCheckCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check SCENARIO.yaml...",
		Short: "Validate scenario files and list their cells",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			failed := false
			for _, path := range args {
				sc, err := scenarios.Load(path)
				if err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), err)
					failed = true
					continue
				}
				if err := preflight(sc); err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: valid, but it cannot run here: %v\n", path, err)
					failed = true
					continue
				}
				cells := sc.Cells()
				n := 0
				for _, c := range cells {
					if c.Expect != "" {
						n++
					}
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: scenario %s: %d targets, %d phases, %d profiles, %d cells, %d expectations\n",
					path, sc.Name, len(sc.Targets), len(sc.Phases), len(sc.Profiles), len(cells), n)
			}
			if failed {
				return withExit(exitFailure, fmt.Errorf("invalid scenario"))
			}
			return nil
		},
	}
}

// rebuildResults analyses the store again with the scenario it recorded, so a run that was
// killed before its analysis still gets a verdict for every cell it measured.
func rebuildResults(st *bench.Store) ([]bench.CellResult, error) {
	info, err := st.Run()
	if err != nil {
		return nil, err
	}
	if info.ScenarioText == "" {
		return st.Results()
	}
	sc, err := scenarios.Parse("scenario recorded in "+st.Path(), []byte(info.ScenarioText))
	if err != nil {
		return nil, fmt.Errorf("the run's recorded scenario does not load any more: %w", err)
	}
	return bench.Reanalyze(st, bench.AnalysisFor(sc))
}
