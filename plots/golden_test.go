package plots

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ from this run's outputs")

// TestGoldenOutputs holds summary.md, junit.xml and bench.txt of fixed synthetic runs to files
// under testdata/, as benchstat's tests do. The fake store has fixed times and a seeded noise
// source, so the outputs are the same on every run. After a deliberate change of an output:
//
//	go test ./plots -run TestGoldenOutputs -update
//
// and read the diff of testdata/ before committing it.
func TestGoldenOutputs(t *testing.T) {
	noScenario := synthRun(synthOptions{targets: testTargets, skipResult: missingCell})
	noScenario.run.ScenarioText = ""
	runs := []struct {
		name string
		src  *fakeSource
	}{
		{"complete", synthRun(synthOptions{targets: testTargets, skipResult: missingCell, failResult: failedCell,
			eventMessage: `driver said <script>alert("x")</script> & left`})},
		{"killed", synthRun(synthOptions{targets: testTargets, killAfter: map[string]int{"win7-x64": 4, "vista-sp1-x86": 2}})},
		{"no-scenario-text", noScenario},
	}
	for _, run := range runs {
		t.Run(run.name, func(t *testing.T) {
			// The renderers Write uses, without the charts: they take most of Write's time
			// and are checked elsewhere.
			rd, err := load(run.src, config{})
			if err != nil {
				t.Fatal(err)
			}
			junit, err := renderJUnit(rd)
			if err != nil {
				t.Fatal(err)
			}
			for name, got := range map[string][]byte{SummaryFile: renderSummary(rd), JUnitFile: junit, BenchFile: renderBench(rd)} {
				checkGolden(t, name, got, filepath.Join("testdata", run.name, name))
			}
		})
	}
}

// checkGolden compares output name with its golden file, or rewrites the golden file under
// -update.
func checkGolden(t *testing.T, name string, got []byte, goldenPath string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(goldenPath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenPath, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(strings.Split(string(want), "\n"), strings.Split(string(got), "\n")); diff != "" {
		t.Errorf("%s differs from %s (-want +got; run with -update if the change is meant):\n%s", name, goldenPath, diff)
	}
}
