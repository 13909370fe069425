package plots

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wfplab/wfplab/bench"
)

// tputStore is a finished run of one target whose throughput windows carry figures: the
// single-nbl profile classifies 2000/s before and after·2000/s after the hotfix.
func tputStore(t *testing.T, after float64) (*bench.Store, string) {
	t.Helper()
	dir := t.TempDir()
	text := testScenarioYAML(testTargets[:1]) + "throughput: {windows: 6, window: 1s, settle: 100ms}\n"
	st, err := bench.Create(dir, bench.RunInfo{ID: "tput", Scenario: "kb979223", ScenarioText: text, Provider: "sim",
		Started: testStart, Finished: testStart.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	tt := testTargets[0]
	st.RecordTarget(tt.info)
	for pi, phase := range []string{"before", "after"} {
		for i := range 6 {
			start := testStart.Add(time.Duration(pi*10+i) * time.Second)
			rate := 2000 * (1 + 0.002*float64(i-3))
			if phase == "after" {
				rate *= after
			}
			w := bench.TputWindow{Target: tt.info.Name, Phase: phase, Profile: "single-nbl", Index: i, Start: start,
				End: start.Add(time.Second), AskedPPS: 2000, Sent: 2000, Samples: 10, SentPPS: 2000, FwdPPS: math.NaN(),
				CPUPct: 3, Classified: [3]float64{0, 0, rate}}
			if err := st.RecordTputWindow(w); err != nil {
				t.Fatal(err)
			}
			st.RecordTputFigures(w)
		}
	}
	if err := st.Flush(); err != nil {
		t.Fatal(err)
	}
	return st, dir
}

// bench.txt carries one benchfmt result per window, read back by benchfmt with its figures
// and its own target; the report shows the comparison, its verdict and the error-bar chart.
func TestThroughputInBenchTxtAndReport(t *testing.T) {
	for _, c := range []struct {
		after   float64
		verdict string
	}{{1, bench.TputOK}, {0.7, bench.TputRegressed}} {
		st, dir := tputStore(t, c.after)
		files, err := Write(st, dir)
		if err != nil {
			t.Fatal(err)
		}
		var tput []benchResult
		for _, r := range parseBenchFormat(t, files.Bench) {
			if strings.HasPrefix(r.name, tputBenchName+"/") {
				tput = append(tput, r)
			}
		}
		if len(tput) != 12 {
			t.Fatalf("bench.txt has %d throughput results, want 12 (6 windows × 2 phases)", len(tput))
		}
		for _, r := range tput {
			if r.n != 10 || r.values["classified/s"] < 1000 || r.values["cpu-%"] != 3 || r.config["target"] != testTargets[0].info.Name {
				t.Errorf("%s: %+v", r.name, r)
			}
			if _, ok := r.values["fwd/s"]; ok {
				t.Errorf("%s: fwd/s without frame links", r.name)
			}
		}
		html, _ := os.ReadFile(files.Report)
		for _, want := range []string{`id="throughput"`, ">" + c.verdict + "<", "Throughput of " + testTargets[0].info.Name} {
			if !strings.Contains(string(html), want) {
				t.Errorf("after ×%v: report.html lacks %q", c.after, want)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, ChartsDir, "tput-"+safeFileName(testTargets[0].info.Name)+".png")); err != nil {
			t.Errorf("no throughput chart: %v", err)
		}
		md, _ := os.ReadFile(files.Summary)
		if !strings.Contains(string(md), "| "+c.verdict+" |") {
			t.Errorf("after ×%v: summary.md lacks the %s row:\n%s", c.after, c.verdict, md)
		}
	}
}
