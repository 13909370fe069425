package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/wfplab/wfplab/bench"
	"github.com/wfplab/wfplab/internal/chromium"
	"github.com/wfplab/wfplab/plots"
	"github.com/wfplab/wfplab/scenarios"
)

// printVerdicts writes the verdict table and returns how many expectations were met and set.
// Each row shows bytes per chain with its 95% interval's half-width when the verdict was
// judged on it, and the threshold it was judged against under sc (nil: a dash).
func printVerdicts(w io.Writer, results []bench.CellResult, sc *scenarios.Scenario) (met, expected int) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tPHASE\tPROFILE\tLEAK B/s\t95% CI\tB/CHAIN ± 95%\tJUDGED AT\tVERDICT\tEXPECTED\t")
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.0f\t[%.0f, %.0f]\t%s\t%s\t%s\t%s %s\t\n",
			r.Target, r.Phase, r.Profile, r.Leak.Slope, r.Leak.Lo, r.Leak.Hi, perChainText(r), plots.JudgedAt(&r, sc), r.Verdict, r.Expected, mark)
	}
	tw.Flush()
	return met, expected
}

// perChainText is bytes per chain, "± half-width" of its interval when it has one; "-"
// without a figure.
func perChainText(r bench.CellResult) string {
	if math.IsNaN(r.BytesPerChain) || math.IsInf(r.BytesPerChain, 0) {
		return "-"
	}
	if d := r.Dose; d != nil && !math.IsNaN(d.Lo) && !math.IsNaN(d.Hi) {
		return fmt.Sprintf("%.0f ± %.0f", r.BytesPerChain, (d.Hi-d.Lo)/2)
	}
	return fmt.Sprintf("%.0f", r.BytesPerChain)
}

func newReportCmd() *cobra.Command {
	var pdf bool
	cmd := &cobra.Command{
		Use:   "report RUN-DIR",
		Short: "Rebuild a run's reports from its wfplab.db alone",
		Long: `report rebuilds report.html, summary.md, junit.xml, bench.txt, the charts and run.json
from the run's wfplab.db alone. --pdf also prints report.html to report.pdf for sign-off,
with a headless Chromium (internal/chromium/install-deps.sh installs Debian's).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return rebuildReport(cmd.Context(), args[0], cmd.OutOrStdout(), cmd.ErrOrStderr(), pdf, true)
		},
	}
	cmd.Flags().BoolVar(&pdf, "pdf", false, "also print report.html to report.pdf with a headless Chromium")
	return cmd
}

// rebuildReport is wfplab report on the run folder dir. keep reads the samples once for
// the analysis and the charts (Store.KeepPool); false reads them from the store each time,
// as the test that both give the same report does.
func rebuildReport(ctx context.Context, dir string, stdout, stderr io.Writer, pdf, keep bool) error {
	db := filepath.Join(dir, bench.StoreFile)
	if _, err := os.Stat(db); err != nil {
		return withExit(exitFailure, fmt.Errorf("%s: no run store here (%v): give the folder of one run, e.g. results/<run-id>", dir, err))
	}
	// Read-only: the report must not change the store it reports on.
	st, err := bench.OpenReadOnly(db)
	if errors.Is(err, bench.ErrOldSchema) {
		fmt.Fprintf(stderr, "wfplab: %s is from an older wfplab: upgrading it (the one write report makes)\n", db)
		st, err = bench.Open(db)
	}
	if err != nil {
		return withExit(exitFailure, err)
	}
	defer st.Close()
	// One read of the samples for the analysis and the charts alike.
	if keep {
		if err := st.KeepPool(); err != nil {
			return withExit(exitFailure, err)
		}
	}
	results, tput, sc, err := rebuildResults(st)
	if err != nil {
		return withExit(exitFailure, err)
	}
	files, err := plots.Write(analysed{st, results, tput.Windows}, dir)
	if err != nil {
		return withExit(exitFailure, err)
	}
	met, expected := printVerdicts(stdout, results, sc)
	tmet, texpected := printTput(stdout, tput)
	met, expected = met+tmet, expected+texpected
	if err := rebuildManifest(dir, st, met, expected); err != nil {
		return withExit(exitFailure, fmt.Errorf("%s: %w", filepath.Join(dir, manifestFile), err))
	}
	fmt.Fprintf(stdout, "%d of %d expectations met\nreport: %s\n", met, expected, files.Report)
	if pdf {
		out := filepath.Join(dir, pdfFile)
		if err := chromium.PDF(ctx, files.Report, out); err != nil {
			return withExit(exitFailure, fmt.Errorf("report.pdf: %w", err))
		}
		fmt.Fprintf(stdout, "pdf: %s\n", out)
	}
	if met < expected {
		return withExit(exitUnmet, fmt.Errorf("expectations not met"))
	}
	return nil
}

// pdfFile is what --pdf writes next to report.html.
const pdfFile = "report.pdf"

// analysed is the store with the results analysed now, not the ones it recorded (a killed
// run recorded none).
type analysed struct {
	*bench.Store
	results []bench.CellResult
	tput    []bench.TputWindow // nil: the store's own
}

func (a analysed) Results() ([]bench.CellResult, error) { return a.results, nil }

// TputWindows are the throughput windows with their figures as analysed now.
func (a analysed) TputWindows(target string) ([]bench.TputWindow, error) {
	if a.tput == nil {
		return a.Store.TputWindows(target)
	}
	var out []bench.TputWindow
	for _, w := range a.tput {
		if target == "" || w.Target == target {
			out = append(out, w)
		}
	}
	return out, nil
}

// rebuildManifest writes run.json again from the store: what a killed run never wrote, or
// the verdicts as analysed now. Endpoints and users, which the store does not keep, come
// from the run's own run.json when there is one.
func rebuildManifest(dir string, st *bench.Store, met, expected int) error {
	var old runManifest
	if b, err := os.ReadFile(filepath.Join(dir, manifestFile)); err == nil {
		_ = json.Unmarshal(b, &old) // a damaged file is replaced by what the store says
	}
	info, err := st.Run()
	if err != nil {
		return err
	}
	infos, err := st.Targets()
	if err != nil {
		return err
	}
	events, err := st.Events("")
	if err != nil {
		return err
	}
	m := runManifest{
		ID: info.ID, Scenario: info.Scenario, Source: old.Source, Provider: info.Provider, Seed: info.Seed,
		Tool: info.Tool, GoVersion: old.GoVersion, Started: info.Started, Finished: info.Finished,
		Met: met, Expected: expected, RebuiltBy: "wfplab report " + toolVersion(),
	}
	for _, t := range infos {
		g := manifestGuest{Name: t.Name, OS: t.OS}
		for _, o := range old.Targets {
			if o.Name == t.Name {
				g.Endpoint, g.User = o.Endpoint, o.User
			}
		}
		m.Targets = append(m.Targets, g)
	}
	for _, e := range events {
		if e.Kind == bench.EventError {
			m.Errors = append(m.Errors, e.Message)
		}
	}
	return saveManifest(dir, m)
}

// rebuildResults analyses the store again with the scenario it recorded, so a run that was
// killed before its analysis still gets a verdict for every cell it measured, and its
// throughput windows their figures. It writes nothing to the store.
func rebuildResults(st *bench.Store) ([]bench.CellResult, bench.Tput, *scenarios.Scenario, error) {
	info, err := st.Run()
	if err != nil {
		return nil, bench.Tput{}, nil, err
	}
	if info.ScenarioText == "" {
		results, err := st.Results()
		return results, bench.Tput{}, nil, err
	}
	sc, err := scenarios.Parse("scenario recorded in "+st.Path(), []byte(info.ScenarioText))
	if err != nil {
		return nil, bench.Tput{}, nil, fmt.Errorf("the run's recorded scenario does not load any more: %w", err)
	}
	results, err := bench.Analyze(st, bench.AnalysisFor(sc))
	if err != nil || !sc.Throughput.On() {
		return results, bench.Tput{}, sc, err
	}
	tput, err := bench.AnalyzeTput(st, sc)
	return results, tput, sc, err
}

// printTput prints the before/after throughput comparison of the judged metric and counts
// each target × profile as an expectation: throughput not REGRESSED.
func printTput(w io.Writer, t bench.Tput) (met, expected int) {
	var rows []bench.TputComparison
	for _, c := range t.Comparisons {
		if c.Judged {
			rows = append(rows, c)
		}
	}
	if len(rows) == 0 {
		return 0, 0
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tPROFILE\tCLASSIFIED/s BEFORE\tAFTER\tCHANGE\tP\tTHROUGHPUT\t")
	for _, c := range rows {
		expected++
		mark := "NOT MET"
		if c.Verdict == bench.TputOK {
			met++
			mark = "ok"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s %s\t\n", c.Target, c.Profile, tputCell(c.Before), tputCell(c.After),
			signedPct(c.Change), pValue(c.P), c.Verdict, mark)
	}
	tw.Flush()
	return met, expected
}

func tputCell(s bench.TputSummary) string {
	if s.N == 0 || math.IsNaN(s.Center) {
		return "-"
	}
	if math.IsNaN(s.Lo) {
		return fmt.Sprintf("%.0f n=%d", s.Center, s.N)
	}
	return fmt.Sprintf("%.0f [%.0f, %.0f] n=%d", s.Center, s.Lo, s.Hi, s.N)
}

func signedPct(f float64) string {
	if math.IsNaN(f) {
		return "-"
	}
	return fmt.Sprintf("%+.1f%%", 100*f)
}

func pValue(p float64) string {
	if math.IsNaN(p) {
		return "-"
	}
	return fmt.Sprintf("%.3f", p)
}
