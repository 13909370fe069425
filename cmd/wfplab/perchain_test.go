package main

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/wfplab/wfplab/bench"
)

// doseScenario judges in bytes per chain: traffic in 1 s blocks within 3.5 s of each window.
const doseScenario = `name: dose
provider: {kind: sim, reboot_down: 500ms}
targets: [win7-x64]
phases: [before, after]
timing: {warmup: 1s, window: 4s, settle: 500ms, block: 1s, sample_interval: 100ms}
profiles:
  - {name: fragment-forward, kind: fragment-forward, rate: 500}
verdict: {threshold_bytes_per_chain: 160}
`

// A run judged in bytes per chain shows, in summary.md and report.html, each cell's bytes
// per chain with the interval the store holds for it and the threshold it was judged
// against.
func TestRunReportShowsBytesPerChainFromStore(t *testing.T) {
	dir := t.TempDir()
	sc := writeFile(t, dir, "dose.yaml", doseScenario)
	out := filepath.Join(dir, "r")
	code, stdout, stderr := runCLI(t, "run", "--quiet", "--scenario", sc, "--out", out, "--seed", "3")
	if code == exitFailure {
		t.Fatalf("run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	runDir := onlyRun(t, out)
	st, err := bench.OpenReadOnly(runDir)
	if err != nil {
		t.Fatal(err)
	}
	results, err := st.Results()
	st.Close()
	if err != nil || len(results) != 2 {
		t.Fatalf("%d results in the store, want 2 (%v)", len(results), err)
	}
	summary, err := os.ReadFile(filepath.Join(runDir, "summary.md"))
	if err != nil {
		t.Fatal(err)
	}
	html, err := os.ReadFile(filepath.Join(runDir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Dose == nil {
			t.Fatalf("%s/%s: no bytes-per-chain fit in the store (%s)", r.Phase, r.Profile, r.Note)
		}
		var row []string
		for _, line := range strings.Split(string(summary), "\n") {
			if strings.HasPrefix(line, "| win7-x64 | "+r.Phase+" | "+r.Profile+" | ") {
				row = strings.Split(strings.Trim(line, "| "), " | ")
			}
		}
		// Target … Leak rate, CI (B/s), Bytes/chain, CI (B/chain), Judged against, …
		if len(row) != 14 {
			t.Fatalf("%s: summary.md row %q, want 14 columns", r.Phase, row)
		}
		if !near(t, row[6], r.Dose.PerChain) || row[8] != "160 B/chain" {
			t.Errorf("%s: summary.md bytes per chain %q judged against %q; the store has %v against 160", r.Phase, row[6], row[8], r.Dose.PerChain)
		}
		lo, hi, ok := strings.Cut(strings.Trim(row[7], "[]"), ", ")
		if !ok || !near(t, lo, r.Dose.Lo) || !near(t, hi, r.Dose.Hi) {
			t.Errorf("%s: summary.md interval %q; the store has [%v, %v]", r.Phase, row[7], r.Dose.Lo, r.Dose.Hi)
		}
		if !bytes.Contains(html, []byte("95% CI "+row[7])) {
			t.Errorf("%s: report.html lacks the interval 95%% CI %s", r.Phase, row[7])
		}
		// The terminal's table: bytes per chain ± the interval's half-width, and the threshold.
		want := fmt.Sprintf("%.0f ± %.0f", r.Dose.PerChain, (r.Dose.Hi-r.Dose.Lo)/2)
		var line string
		for _, l := range strings.Split(stdout, "\n") {
			if fs := strings.Fields(l); len(fs) > 3 && fs[0] == "win7-x64" && fs[1] == r.Phase && fs[2] == r.Profile {
				line = l
			}
		}
		if !strings.Contains(line, want) || !strings.Contains(line, "160 B/chain") || !strings.Contains(stdout, "B/CHAIN ± 95%") {
			t.Errorf("%s: the terminal's row %q lacks %q or the 160 B/chain threshold", r.Phase, line, want)
		}
	}
	if n := bytes.Count(html, []byte(">160 B/chain<")); n != 2 {
		t.Errorf("report.html names the 160 B/chain threshold in %d cells, want 2", n)
	}
}

// near says whether a figure as the report prints it (thousands grouped, 3 significant
// digits at least) is v.
func near(t *testing.T, text string, v float64) bool {
	t.Helper()
	f, err := strconv.ParseFloat(strings.ReplaceAll(text, ",", ""), 64)
	return err == nil && math.Abs(f-v) <= math.Max(0.5, 0.005*math.Abs(v))
}
