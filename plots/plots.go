package plots

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-multierror"

	"github.com/wfplab/wfplab/bench"
)

// Source is what plots reads; *bench.Store satisfies it.
type Source interface {
	Run() (bench.RunInfo, error)
	Targets() ([]bench.TargetInfo, error)
	Phases(target string) ([]bench.PhaseInfo, error)
	Windows(target string) ([]bench.Window, error)
	Pool(target string) ([]bench.PoolPoint, error)
	Tags(target string) ([]bench.TagPoint, error)
	Events(target string) ([]bench.Event, error)
	Traffic(target string) ([]bench.TrafficPoint, error)
	Results() ([]bench.CellResult, error)
}

var _ Source = (*bench.Store)(nil)

// Files are the paths Write wrote.
type Files struct {
	Report  string   // report.html
	Summary string   // summary.md
	JUnit   string   // junit.xml
	Bench   string   // bench.txt
	Charts  []string // plots/*.png and plots/*.svg
}

// expectation is one cell the scenario expects a verdict for. The store holds expectations
// only in results (and in the scenario text stored with the run); a caller that has the
// scenario but a store without its text can name them here.
type expectation struct {
	Target  string
	Phase   string
	Profile string
	Verdict bench.Verdict
}

// config is what a store may lack: the expected cells, so that cells without a result become
// skipped test cases and count as not met, and the verdict rule (threshold in bytes/s,
// confidence e.g. 0.95) for the report's note on method and the overview chart. Write
// passes none: every run it reads stores its scenario text.
type config struct {
	expected     []expectation
	thresholdBps float64
	confidence   float64
	haveRule     bool
}

// Output file names under the results folder.
const (
	ReportFile  = "report.html"
	SummaryFile = "summary.md"
	JUnitFile   = "junit.xml"
	BenchFile   = "bench.txt"
	ChartsDir   = "plots"
)

// Write reads the run from src and writes every output under dir. It writes what it can even
// when some reads fail (the report then lists the failures), and returns those failures as one
// go-multierror; Files lists what was written either way.
func Write(src Source, dir string) (Files, error) { return write(src, dir, config{}) }

func write(src Source, dir string, cfg config) (Files, error) {
	var files Files
	if src == nil {
		return files, errors.New("plots: no source to read the run from")
	}
	if dir == "" {
		return files, errors.New("plots: no output folder given")
	}
	if err := os.MkdirAll(filepath.Join(dir, ChartsDir), 0o755); err != nil {
		return files, fmt.Errorf("plots: creating output folder: %w", err)
	}

	var errs *multierror.Error
	rd, err := load(src, cfg)
	errs = multierror.Append(errs, err)

	charts, err := renderCharts(rd, filepath.Join(dir, ChartsDir))
	errs = multierror.Append(errs, err)
	files.Charts = charts.paths

	writeOne := func(name string, dst *string, render func() ([]byte, error)) {
		data, err := render()
		if err != nil {
			errs = multierror.Append(errs, fmt.Errorf("plots: rendering %s: %w", name, err))
			return
		}
		path := filepath.Join(dir, name)
		if err := writeFileAtomic(path, data); err != nil {
			errs = multierror.Append(errs, err)
			return
		}
		*dst = path
	}
	writeOne(ReportFile, &files.Report, func() ([]byte, error) { return renderHTML(rd, charts) })
	writeOne(SummaryFile, &files.Summary, func() ([]byte, error) { return renderSummary(rd), nil })
	writeOne(JUnitFile, &files.JUnit, func() ([]byte, error) { return renderJUnit(rd) })
	writeOne(BenchFile, &files.Bench, func() ([]byte, error) {
		b := bytes.NewBuffer(renderBench(rd))
		err := writeTputBench(b, rd)
		return b.Bytes(), err
	})
	return files, errs.ErrorOrNil()
}

// writeFileAtomic replaces path in one step, so a report being rebuilt is never half-written.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("plots: writing %s: %w", path, err)
	}
	name := tmp.Name()
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(name, 0o644)
	}
	if werr == nil {
		werr = os.Rename(name, path)
	}
	if werr != nil {
		os.Remove(name)
		return fmt.Errorf("plots: writing %s: %w", path, werr)
	}
	return nil
}
