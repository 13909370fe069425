package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hashicorp/go-multierror"
	"github.com/spf13/cobra"

	"github.com/wfplab/wfplab/bench"
	"github.com/wfplab/wfplab/internal/chromium"
	"github.com/wfplab/wfplab/lab/contract"
	"github.com/wfplab/wfplab/plots"
	"github.com/wfplab/wfplab/scenarios"
)

type runFlags struct {
	scenario string
	builtin  string
	out      string
	seed     int64
	seedSet  bool
	quiet    bool
	keepVMs  bool
	pdf      bool   // --pdf: also print report.html to report.pdf
	hotfix   string // --hotfix-dir: replaces lab.hotfix_dir
	resume   string // --resume RUN-DIR: finish what that run did not
}

func newRunCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run a scenario (default: the built-in kb979223 on simulated guests) and write a report",
		Long: `Run brings the scenario's guests up, measures every target × phase × profile, and writes
DIR/<run-id>/: wfplab.db, report.html, summary.md, junit.xml, bench.txt, plots/ and run.json.
Exit status: 0 every expectation met, 1 an expectation not met, 2 an error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.seedSet = cmd.Flags().Changed("seed")
			return runScenario(cmd.Context(), f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&f.scenario, "scenario", "", "scenario YAML file (default: the built-in scenario)")
	cmd.Flags().StringVar(&f.builtin, "builtin", scenarios.DefaultScenario, "built-in scenario to run when --scenario is not given")
	cmd.Flags().StringVar(&f.out, "out", "results", "folder that receives the run's folder")
	cmd.Flags().Int64Var(&f.seed, "seed", 0, "seed for the simulated guests' random parts (default: random, printed)")
	cmd.Flags().BoolVar(&f.quiet, "quiet", false, "no live progress")
	cmd.Flags().StringVar(&f.hotfix, "hotfix-dir", "", "folder holding the KB979223 .msu packages (replaces the scenario's lab.hotfix_dir)")
	cmd.Flags().StringVar(&f.resume, "resume", "", "finish the cells a killed or interrupted run (its folder) did not, into the same store, and rebuild its report")
	cmd.Flags().BoolVar(&f.keepVMs, "keep-vms", false, "keep the VMs' disk overlays in the run folder (qemu provider)")
	cmd.Flags().BoolVar(&f.pdf, "pdf", false, "also print report.html to report.pdf at the end, with a headless Chromium (internal/chromium/install-deps.sh installs Debian's)")
	return cmd
}

func loadScenario(path, builtin string) (*scenarios.Scenario, error) {
	if path != "" {
		return scenarios.Load(path)
	}
	return scenarios.Builtin(builtin)
}

// runManifest is run.json: what was run, with what, on what.
type runManifest struct {
	ID        string          `json:"id"`
	Scenario  string          `json:"scenario"`
	Source    string          `json:"source"`
	Provider  string          `json:"provider"`
	Seed      int64           `json:"seed"`
	Tool      string          `json:"tool"`
	GoVersion string          `json:"go_version"`
	Started   time.Time       `json:"started"`
	Finished  time.Time       `json:"finished,omitzero"` // zero: the run was killed
	Targets   []manifestGuest `json:"targets"`
	Met       int             `json:"expectations_met"`
	Expected  int             `json:"expectations"`
	Errors    []string        `json:"errors,omitempty"`
	// RebuiltBy is set when `wfplab report` wrote the file again from the store.
	RebuiltBy string `json:"rebuilt_by,omitempty"`
}

type manifestGuest struct {
	Name     string `json:"name"`
	OS       string `json:"os"`
	Endpoint string `json:"endpoint"`
	User     string `json:"user"`
}

func runScenario(ctx context.Context, f runFlags, stdout, stderr io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	// A browser missing for --pdf is found before the run, not after it.
	if f.pdf {
		if _, err := chromium.Find(); err != nil {
			return withExit(exitFailure, fmt.Errorf("--pdf: %w", err))
		}
	}
	if f.resume != "" {
		if f.scenario != "" || f.seedSet {
			return withExit(exitFailure, errors.New("--resume takes the scenario and seed the run recorded: leave out --scenario and --seed"))
		}
		return resumeRun(ctx, f, stdout, stderr)
	}
	sc, err := loadScenario(f.scenario, f.builtin)
	if err != nil {
		return withExit(exitFailure, err)
	}
	if f.hotfix != "" {
		sc.Lab.HotfixDir = f.hotfix
	}
	// The store keeps the scenario as run, so `wfplab report` can analyse it again later.
	text, err := sc.YAML()
	if err != nil {
		return withExit(exitFailure, fmt.Errorf("%s: recording the scenario: %w", sc.Source, err))
	}
	// What would stop the run is found before a run folder exists.
	if err := preflight(sc); err != nil {
		return withExit(exitFailure, fmt.Errorf("the scenario cannot run: %w", err))
	}
	seed := f.seed
	if !f.seedSet {
		seed = randomSeed()
	}
	started := time.Now()
	id := runID(started)
	dir := filepath.Join(f.out, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return withExit(exitFailure, fmt.Errorf("results folder: %w", err))
	}
	store, err := bench.Create(dir, bench.RunInfo{
		ID: id, Scenario: sc.Name, ScenarioText: string(text), Provider: sc.Provider.Kind,
		Seed: seed, Tool: toolVersion(), Started: started,
	})
	if err != nil {
		return withExit(exitFailure, err)
	}
	defer store.Close()
	return measure(ctx, measurement{f: f, sc: sc, store: store, dir: dir, id: id, seed: seed, started: started}, stdout, stderr)
}

// measurement is a run's store and folder, new or resumed.
type measurement struct {
	f        runFlags
	sc       *scenarios.Scenario
	store    *bench.Store
	dir, id  string
	seed     int64
	started  time.Time
	done     map[bench.CellKey]bool // resumed: cells measured already
	tputDone map[[2]string]bool
}

// resumeRun finishes a killed run: the cells whose window did not run to its end (the
// analysis's cut-window rule) are measured on fresh guests into the same store.
func resumeRun(ctx context.Context, f runFlags, stdout, stderr io.Writer) error {
	dir := f.resume
	db := filepath.Join(dir, bench.StoreFile)
	if _, err := os.Stat(db); err != nil {
		return withExit(exitFailure, fmt.Errorf("--resume %s: no run store here (%v): give the folder of one run, e.g. results/<run-id>", dir, err))
	}
	store, err := bench.Open(db)
	if err != nil {
		return withExit(exitFailure, fmt.Errorf("--resume %s: %w", dir, err))
	}
	defer store.Close()
	info, err := store.Run()
	if err != nil {
		return withExit(exitFailure, fmt.Errorf("--resume %s: %w", dir, err))
	}
	sc, err := scenarios.Parse("scenario recorded in "+db, []byte(info.ScenarioText))
	if err != nil {
		return withExit(exitFailure, fmt.Errorf("--resume %s: the run's recorded scenario does not load: %w", dir, err))
	}
	if f.hotfix != "" {
		sc.Lab.HotfixDir = f.hotfix
	}
	if err := preflight(sc); err != nil {
		return withExit(exitFailure, fmt.Errorf("the scenario cannot run: %w", err))
	}
	done, tputDone, err := bench.Measured(store, sc)
	if err != nil {
		return withExit(exitFailure, fmt.Errorf("--resume %s: reading what was measured: %w", dir, err))
	}
	left := 0
	for _, c := range sc.Cells() {
		if !done[bench.CellKey{Target: c.Target.Name, Phase: c.Phase.Name, Profile: c.Profile.Name}] {
			left++
		}
	}
	fmt.Fprintf(stdout, "resuming %s: %d of %d cells left to measure\n", dir, left, len(sc.Cells()))
	return measure(ctx, measurement{f: f, sc: sc, store: store, dir: dir, id: info.ID, seed: info.Seed, started: info.Started,
		done: done, tputDone: tputDone}, stdout, stderr)
}

// measure brings the guests up, measures what is left, analyses and writes the report.
func measure(ctx context.Context, m measurement, stdout, stderr io.Writer) error {
	f, sc, store, dir, id, seed, started := m.f, m.sc, m.store, m.dir, m.id, m.seed, m.started
	fmt.Fprintf(stdout, "wfplab %s: scenario %s (%s), provider %s, seed %d\n", id, sc.Name, sc.Source, sc.Provider.Kind, seed)
	fmt.Fprintf(stdout, "results: %s\n", dir)

	var runErrs *multierror.Error
	prog := newProgress(stderr, f.quiet)
	defer prog.close()
	reapStaleVMs(f.out, prog.logf)
	provider, kind, err := providerFor(ctx, openArgs{sc: sc, seed: seed, runDir: dir, keepVMs: f.keepVMs, logf: prog.logf})
	if err != nil {
		return withExit(exitFailure, err)
	}
	upCtx, cancelUp := context.WithTimeout(ctx, 10*time.Minute)
	targets, err := provider.Up(upCtx)
	cancelUp()
	if err != nil {
		runErrs = multierror.Append(runErrs, fmt.Errorf("bringing guests up: %w", err))
	}
	defer func() {
		downCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := provider.Down(downCtx); err != nil {
			fmt.Fprintln(stderr, "wfplab: taking guests down:", err)
		}
	}()

	recordVMFiles(store, provider, targets)
	runTargets, guests, err := wireTargets(sc, kind, provider, targets, prog.logf)
	if err != nil {
		runErrs = multierror.Append(runErrs, err)
	}
	defer func() {
		for _, g := range guests {
			g.Close()
		}
	}()

	var results []bench.CellResult
	if len(runTargets) > 0 {
		runner := &bench.Runner{
			Scenario: sc,
			Store:    store,
			Targets:  runTargets,
			Progress: prog.update,
		}
		if m.done != nil {
			runner.Done = func(k bench.CellKey) bool { return m.done[k] }
			runner.TputDone = func(target, phase string) bool { return m.tputDone[[2]string{target, phase}] }
		}
		results, err = runner.Run(ctx)
		prog.close()
		if err != nil {
			runErrs = multierror.Append(runErrs, err)
		}
	} else if err := store.FinishRun(time.Now()); err != nil {
		runErrs = multierror.Append(runErrs, err)
	}

	files, err := plots.Write(store, dir)
	if err != nil {
		runErrs = multierror.Append(runErrs, fmt.Errorf("report: %w", err))
	}
	met, expected := printVerdicts(stdout, results, sc)
	if sc.Throughput.On() {
		tput, err := bench.StoredTput(store, sc)
		if err != nil {
			runErrs = multierror.Append(runErrs, fmt.Errorf("throughput: %w", err))
		}
		tmet, texpected := printTput(stdout, tput)
		met, expected = met+tmet, expected+texpected
	}
	if err := writeManifest(dir, id, sc, seed, started, targets, met, expected, runErrs); err != nil {
		runErrs = multierror.Append(runErrs, err)
	}
	if files.Report != "" {
		fmt.Fprintf(stdout, "report: %s\n", files.Report)
		// Not for an interrupted run: it is to be finished, not signed.
		if f.pdf && ctx.Err() == nil {
			out := filepath.Join(dir, pdfFile)
			if err := chromium.PDF(ctx, files.Report, out); err != nil {
				runErrs = multierror.Append(runErrs, fmt.Errorf("report.pdf: %w", err))
			} else {
				fmt.Fprintf(stdout, "pdf: %s\n", out)
			}
		}
	}
	if ctx.Err() != nil {
		// Interrupted: say so once, not once per target and cell, and keep the errors
		// that were not the interruption itself.
		if rest := withoutCancellation(runErrs); rest != nil {
			fmt.Fprintln(stderr, "wfplab:", rest)
		}
		fmt.Fprintf(stderr, "wfplab: the run was interrupted; what it measured is kept in %s\n", dir)
		fmt.Fprintf(stdout, "INTERRUPTED: %d of %d expectations met by what finished; rebuild the report with: wfplab report %s\n", met, expected, dir)
		return withExit(exitFailure, nil)
	}
	if runErrs.ErrorOrNil() != nil {
		return withExit(exitFailure, runErrs)
	}
	if met < expected {
		fmt.Fprintf(stdout, "FAIL: %d of %d expectations met\n", met, expected)
		return withExit(exitUnmet, errors.New("expectations not met"))
	}
	fmt.Fprintf(stdout, "PASS: %d of %d expectations met\n", met, expected)
	return nil
}

func writeManifest(dir, id string, sc *scenarios.Scenario, seed int64, started time.Time, targets []contract.Target, met, expected int, errs *multierror.Error) error {
	m := runManifest{
		ID: id, Scenario: sc.Name, Source: sc.Source, Provider: sc.Provider.Kind, Seed: seed,
		Tool: toolVersion(), GoVersion: goVersion(), Started: started, Finished: time.Now(),
		Met: met, Expected: expected,
	}
	for _, t := range targets {
		m.Targets = append(m.Targets, manifestGuest{Name: t.Name, OS: t.OS.Name, Endpoint: t.Endpoint.String(), User: t.Creds.User})
	}
	if errs != nil {
		for _, e := range errs.Errors {
			m.Errors = append(m.Errors, e.Error())
		}
	}
	return saveManifest(dir, m)
}

func saveManifest(dir string, m runManifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, manifestFile), append(b, '\n'), 0o644)
}

const manifestFile = "run.json"

func runID(t time.Time) string {
	var b [2]byte
	rand.Read(b[:])
	return t.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
}

func randomSeed() int64 {
	var b [8]byte
	rand.Read(b[:])
	var s int64
	for _, x := range b[:6] {
		s = s<<8 | int64(x)
	}
	return s
}

// withoutCancellation drops the errors that only say the run's context ended.
func withoutCancellation(errs *multierror.Error) error {
	var rest *multierror.Error
	if errs != nil {
		for _, e := range errs.Errors {
			if !errors.Is(e, context.Canceled) {
				rest = multierror.Append(rest, e)
			}
		}
	}
	return rest.ErrorOrNil()
}
