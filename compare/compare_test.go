package compare_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wfplab/wfplab/compare"
	"github.com/wfplab/wfplab/internal/synthrun"
)

const regressed = "KB979223/target=win7-x64/phase=after/profile=stream-burst"

// runs writes n synthetic runs under a new folder; leakAfter is win7-x64's after-hotfix
// stream-burst leak in B/s (about 12 on a patched guest), everything else follows the KB.
// Runs are written once per package run and shared by the tests, which only read them:
// writing stores is most of these tests' time.
var (
	runsRoot  string
	runsCache = map[string]string{}
)

func TestMain(m *testing.M) {
	var err error
	if runsRoot, err = os.MkdirTemp("", "compare-test-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(runsRoot)
	os.Exit(code)
}

func runs(t *testing.T, n int, seed int64, leakAfter float64, out synthrun.Outputs) string {
	t.Helper()
	key := fmt.Sprint(n, seed, leakAfter, out)
	if dir, ok := runsCache[key]; ok {
		return dir
	}
	dir := filepath.Join(runsRoot, fmt.Sprintf("set%d", len(runsCache)))
	runsCache[key] = dir
	for i := 0; i < n; i++ {
		rng := rand.New(rand.NewPCG(uint64(seed), uint64(i)))
		j := func(v float64) float64 { return v * (1 + 0.04*(rng.Float64()-0.5)) }
		fig := func(target, phase, profile string) synthrun.Figures {
			f := synthrun.Figures{ChainsPerSec: j(50), PacketsPerSec: j(1990), LeakBps: j(12)}
			if phase == "before" && profile != "single-nbl" {
				f.LeakBps = j(24000)
			}
			if target == "win7-x64" && phase == "after" && profile == "stream-burst" {
				f.LeakBps = j(leakAfter)
			}
			f.BytesPerChain = f.LeakBps / f.ChainsPerSec
			return f
		}
		spec := synthrun.Spec{ID: fmt.Sprintf("run%d", i), Seed: seed*100 + int64(i), Figures: fig, Outputs: out}
		if err := synthrun.Write(filepath.Join(dir, spec.ID), spec); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func mustCompare(t *testing.T, base, cand string, o compare.Options) *compare.Result {
	t.Helper()
	b, err := compare.Load(base)
	if err != nil {
		t.Fatal(err)
	}
	c, err := compare.Load(cand)
	if err != nil {
		t.Fatal(err)
	}
	r, err := compare.Compare(b, c, o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func row(t *testing.T, r *compare.Result, name, unit string) compare.Row {
	t.Helper()
	for _, x := range r.Rows {
		if x.Name == name && x.Unit == unit {
			return x
		}
	}
	t.Fatalf("no row %s %s", name, unit)
	return compare.Row{}
}

func TestRegressionFound(t *testing.T) {
	base := runs(t, 6, 1, 12, synthrun.BenchOnly)
	// The candidate's runs left only stores: compare rebuilds their bench text.
	cand := runs(t, 6, 2, 9000, synthrun.StoreOnly)
	r := mustCompare(t, base, cand, compare.DefaultOptions())
	if r.Cand.Runs() != 6 || !strings.HasSuffix(r.Cand.Sources[0], "wfplab.db") {
		t.Fatalf("candidate sources %v, want 6 stores", r.Cand.Sources)
	}
	got := row(t, r, regressed, "leak-B/s")
	if got.Status != compare.Regression || got.Base.N != 6 || got.Cand.N != 6 || got.P > 0.05 || got.Better != -1 {
		t.Errorf("leak row = %+v, want a regression over 6+6 runs, lower better", got)
	}
	if g := row(t, r, regressed, "B/chain"); g.Status != compare.Regression {
		t.Errorf("B/chain row = %+v, want a regression", g)
	}
	// Everything else is the same distribution: at most the odd chance finding, never a regression.
	if n := r.Count(compare.Regression); n != 2 {
		t.Errorf("%d regressions, want 2 (leak-B/s and B/chain of one cell):\n%s", n, text(t, r))
	}
	if g := row(t, r, "KB979223/target=win7-x64/phase=before/profile=stream-burst", "chains/s"); g.Better != 1 {
		t.Errorf("chains/s better = %d, want +1 from bench.txt's Unit line", g.Better)
	}
}

func TestSameDistributionNoRegression(t *testing.T) {
	r := mustCompare(t, runs(t, 6, 1, 12, synthrun.BenchOnly), runs(t, 6, 4, 12, synthrun.BenchOnly), compare.DefaultOptions())
	if n := r.Count(compare.Regression); n != 0 {
		t.Errorf("%d regressions between runs of one distribution:\n%s", n, text(t, r))
	}
	if n := r.Count(compare.Unchanged) + r.Count(compare.BelowMin) + r.Count(compare.Improvement); n != len(r.Rows) {
		t.Errorf("%d of %d rows unchanged, below the minimum or improved", n, len(r.Rows))
	}
}

// A significant move smaller than the minimum effect is not a regression; lowering the
// minimum makes it one.
func TestMinimumEffect(t *testing.T) {
	base, cand := runs(t, 6, 1, 12, synthrun.BenchOnly), runs(t, 6, 6, 600, synthrun.BenchOnly)
	r := mustCompare(t, base, cand, compare.DefaultOptions())
	if g := row(t, r, regressed, "leak-B/s"); g.Status != compare.BelowMin {
		t.Errorf("12 -> 600 B/s under a 1024 B/s minimum: %s, want below-min", g.Status)
	}
	o := compare.DefaultOptions()
	o.MinAbs["leak-B/s"] = 100
	r = mustCompare(t, base, cand, o)
	if g := row(t, r, regressed, "leak-B/s"); g.Status != compare.Regression {
		t.Errorf("12 -> 600 B/s over a 100 B/s minimum: %s, want regression", g.Status)
	}
}

// One run a side can never be significant, and the output says why.
func TestOneRunEachSaysWhy(t *testing.T) {
	r := mustCompare(t, runs(t, 1, 7, 12, synthrun.BenchOnly), runs(t, 1, 8, 9000, synthrun.BenchOnly), compare.DefaultOptions())
	if g := row(t, r, regressed, "leak-B/s"); g.Status != compare.Unchanged {
		t.Errorf("1+1 runs: %s, want unchanged", g.Status)
	}
	if out := text(t, r); !strings.Contains(out, "too few for the U test") {
		t.Errorf("no note on sample size:\n%s", out)
	}
}

func TestFormats(t *testing.T) {
	r := mustCompare(t, runs(t, 6, 1, 12, synthrun.BenchOnly), runs(t, 6, 2, 9000, synthrun.StoreOnly), compare.DefaultOptions())
	var buf bytes.Buffer
	if err := r.Write(&buf, "csv"); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(r.Rows)+1 || recs[0][0] != "name" {
		t.Fatalf("csv: %d records for %d rows, header %v", len(recs), len(r.Rows), recs[0])
	}
	found := false
	for _, rec := range recs[1:] {
		if rec[0] == regressed && rec[1] == "leak-B/s" {
			found = rec[13] == "regression" && rec[3] == "6" && rec[7] == "6"
		}
	}
	if !found {
		t.Errorf("csv has no regression row for %s", regressed)
	}
	buf.Reset()
	if err := r.Write(&buf, "json"); err != nil {
		t.Fatal(err)
	}
	var js struct {
		Regressions int
		Rows        []struct {
			Name, Unit, Status string
			Base               struct{ N int }
			Change             any
		}
	}
	if err := json.Unmarshal(buf.Bytes(), &js); err != nil {
		t.Fatalf("json: %v\n%s", err, buf.String())
	}
	if js.Regressions != r.Count(compare.Regression) || len(js.Rows) != len(r.Rows) || js.Regressions == 0 {
		t.Errorf("json: %d regressions, %d rows; want %d and %d", js.Regressions, len(js.Rows), r.Count(compare.Regression), len(r.Rows))
	}
	if out := text(t, r); !strings.Contains(out, "REGRESSION") || !strings.Contains(out, "leak-B/s (lower is better)") {
		t.Errorf("text lacks the regression or the unit header:\n%s", out)
	}
	if err := r.Write(&buf, "xml"); err == nil || !strings.Contains(err.Error(), "text, csv, json") {
		t.Errorf("format xml: %v", err)
	}
}

// Any metric in bench.txt is compared, with its direction from its Unit line; a metric
// whose direction nobody states is compared but never a regression.
func TestAnyMetric(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, vals ...float64) string {
		var b strings.Builder
		b.WriteString("Unit widgets/s better=higher\n")
		for _, v := range vals {
			fmt.Fprintf(&b, "BenchmarkThroughput/target=a\t1\t%g\twidgets/s\t%g\tmystery\n", v, v)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	r := mustCompare(t, write("old.txt", 100, 101, 99, 100, 102, 98), write("new.txt", 50, 51, 49, 50, 52, 48), compare.DefaultOptions())
	if g := row(t, r, "Throughput/target=a", "widgets/s"); g.Status != compare.Regression {
		t.Errorf("widgets/s halved: %s, want regression", g.Status)
	}
	if g := row(t, r, "Throughput/target=a", "mystery"); g.Status != compare.Changed {
		t.Errorf("mystery halved: %s, want changed (no direction)", g.Status)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.txt")
	os.WriteFile(bad, []byte("goos: windows\nBenchmarkX 1 notanumber leak-B/s\n"), 0o644)
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	comments := filepath.Join(dir, "comments.txt")
	os.WriteFile(comments, []byte("# nothing measured\n"), 0o644)
	for _, tc := range []struct{ path, want string }{
		{filepath.Join(dir, "nope"), "give a run folder"},
		{empty, "neither a run folder"},
		{bad, "bad.txt:2:"},
		{comments, "no benchmark results"},
	} {
		_, err := compare.Load(tc.path)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%s) = %v, want an error saying %q", tc.path, err, tc.want)
		}
	}
}

func text(t *testing.T, r *compare.Result) string {
	t.Helper()
	var b bytes.Buffer
	if err := r.Write(&b, "text"); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// Reading a store for its bench text changes not a byte of it.
func TestStoreUntouched(t *testing.T) {
	dir := runs(t, 1, 11, 12, synthrun.StoreOnly)
	db := filepath.Join(dir, "run0", "wfplab.db")
	before, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := compare.Load(dir); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(db)
	if !bytes.Equal(before, after) {
		t.Error("compare changed the store it read")
	}
}
