package plots

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wfplab/wfplab/bench"
	"github.com/wfplab/wfplab/lab/contract"
)

// A run killed after one window, rebuilt later from the SQLite store alone.
func TestWriteFromRealStore(t *testing.T) {
	runDir := t.TempDir()
	info := bench.RunInfo{ID: "store-test", Scenario: "kb979223", ScenarioText: testScenarioYAML(testTargets[:1]),
		Provider: "sim", Seed: 7, Tool: "test", Started: testStart}
	st, err := bench.Create(runDir, info)
	if err != nil {
		t.Fatal(err)
	}
	tt := testTargets[0]
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.RecordTarget(tt.info))
	start := testStart.Add(time.Second)
	must(st.RecordPhase(bench.PhaseInfo{Target: tt.info.Name, Phase: "before", OSBuild: tt.build, Netio: tt.netioBefore,
		Hotfix: "unpatched", Started: start}))
	ws := start.Add(testWarmup)
	must(st.RecordWindow(bench.Window{Target: tt.info.Name, Phase: "before", Profile: "stream-burst", Start: ws, End: ws.Add(testWindow)}))
	// Killed inside the second window: no end, no result; its tag growth comes from the samples.
	must(st.RecordWindow(bench.Window{Target: tt.info.Name, Phase: "before", Profile: "fragment-forward", Start: ws.Add(testWindow)}))
	for i := range 220 {
		at := start.Add(time.Duration(i) * testInterval)
		np := uint64(testBaseline)
		if at.After(ws) {
			np += uint64(at.Sub(ws).Seconds() * testLeakBps)
		}
		smp := contract.Sample{Seq: uint64(i), TimeUS: uint64(i) * 100000, NPBytes: np}
		if i == 0 || at.After(ws) {
			smp.ChangedTags = map[string]contract.TagUsage{"NDnb": {Allocs: uint64(i), Bytes: np - testBaseline + 4096}}
		}
		must(st.RecordSample(tt.info.Name, "before", at, smp))
	}
	must(st.RecordEvent(bench.Event{Target: tt.info.Name, Phase: "before", At: start, Kind: "driver", Message: "driver started"}))
	must(st.RecordResult(bench.CellResult{Target: tt.info.Name, Phase: "before", Profile: "stream-burst",
		Leak:    bench.Estimate{Slope: testLeakBps, Lo: testLeakBps - 100, Hi: testLeakBps + 100, N: 110, NEff: 40},
		Verdict: bench.Leak, Expected: bench.Leak, Met: true, BytesPerChain: 480, ChainsPerSec: 50, PacketsPerSec: 2000}))
	must(st.Close()) // killed: never finished

	st, err = bench.Open(runDir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	out := t.TempDir()
	files, err := Write(st, out)
	if err != nil {
		t.Fatalf("Write from the store: %v", err)
	}
	checkPNG(t, filepath.Join(out, "plots", "pool-win7-x64.png"))
	doc := parseHTML(t, files.Report)
	_, rows, _ := verdictRows(t, doc)
	if len(rows) != 6 {
		t.Errorf("verdict table has %d rows, want the scenario's 6 cells", len(rows))
	}
	all := textOf(doc)
	for _, s := range []string{"This run did not finish", "1 of 6 expectations met (5 without a result).", "driver started", "NDnb"} {
		if !strings.Contains(all, s) {
			t.Errorf("report does not say %q", s)
		}
	}
	js := readJUnit(t, files.JUnit)
	if js.Tests != 6 || js.Suites[0].Skipped != 5 {
		t.Errorf("junit: tests=%d skipped=%d, want 6 and 5", js.Tests, js.Suites[0].Skipped)
	}
	if res := parseBenchFormat(t, files.Bench); len(res) != 1 || res[0].values["leak-B/s"] != testLeakBps {
		t.Errorf("bench.txt results: %+v", res)
	}
	if _, err := os.Stat(filepath.Join(runDir, bench.StoreFile)); err != nil {
		t.Errorf("store file: %v", err)
	}
}
