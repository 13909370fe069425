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

// tputStore is a finished run of the first n test targets whose throughput windows carry
// figures: the single-nbl profile classifies 2000/s before and after·2000/s after the
// hotfix. The targets' windows reach the store interleaved, the last target's first, as
// targets side by side do.
func tputStore(t *testing.T, after float64, n int) (*bench.Store, string) {
	t.Helper()
	dir := t.TempDir()
	text := testScenarioYAML(testTargets[:n]) + "throughput: {windows: 6, window: 1s, settle: 100ms}\n"
	st, err := bench.Create(dir, bench.RunInfo{ID: "tput", Scenario: "kb979223", ScenarioText: text, Provider: "sim",
		Started: testStart, Finished: testStart.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for j := n - 1; j >= 0; j-- {
		st.RecordTarget(testTargets[j].info)
	}
	for pi, phase := range []string{"before", "after"} {
		for i := range 6 {
			for j := n - 1; j >= 0; j-- {
				start := testStart.Add(time.Duration(pi*10+i) * time.Second)
				rate := 2000 * (1 + 0.002*float64(i-3))
				if phase == "after" {
					rate *= after
				}
				w := bench.TputWindow{Target: testTargets[j].info.Name, Phase: phase, Profile: "single-nbl", Index: i, Start: start,
					End: start.Add(time.Second), AskedPPS: 2000, Sent: 2000, Samples: 10, SentPPS: 2000, FwdPPS: math.NaN(),
					CPUPct: 3, Classified: [3]float64{0, 0, rate}}
				if err := st.RecordTputWindow(w); err != nil {
					t.Fatal(err)
				}
				st.RecordTputFigures(w)
			}
		}
	}
	if err := st.Flush(); err != nil {
		t.Fatal(err)
	}
	return st, dir
}

// tputBench writes tputStore's run and returns its files, folder and bench.txt's
// throughput results in file order.
func tputBench(t *testing.T, after float64, n int) (Files, string, []benchResult) {
	t.Helper()
	st, dir := tputStore(t, after, n)
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
	return files, dir, tput
}

// bench.txt carries one benchfmt result per window, read back by benchfmt with its figures
// and its own target; the report shows the comparison, its verdict and the error-bar chart.
func TestThroughputInBenchTxtAndReport(t *testing.T) {
	for _, c := range []struct {
		after   float64
		verdict string
	}{{1, bench.TputOK}, {0.7, bench.TputRegressed}} {
		files, dir, tput := tputBench(t, c.after, 1)
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

// Targets' throughput windows reach the store interleaved; bench.txt lists them target by
// target in the scenario's order, each target's in time order, as its leak lines are.
func TestThroughputLinesFollowTheScenarioOrder(t *testing.T) {
	_, _, tput := tputBench(t, 1, len(testTargets))
	var got []string
	for _, r := range tput {
		got = append(got, r.config["target"]+" "+r.name[strings.Index(r.name, "/phase="):])
	}
	var want []string
	for _, tt := range testTargets {
		for _, phase := range []string{"before", "after"} {
			for range 6 {
				want = append(want, tt.info.Name+" /phase="+phase+"/profile=single-nbl")
			}
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("bench.txt's throughput lines in this order:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
