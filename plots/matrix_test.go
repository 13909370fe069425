package plots

import (
	"golang.org/x/net/html"

	"github.com/wfplab/wfplab/bench"
	"strings"
	"testing"
)

// The report opens with the verdict matrix: a row per target, a cell per phase × profile
// with its verdict, its mark against the expectation and its evidence.
func TestReportOpensWithMatrix(t *testing.T) {
	src := synthRun(synthOptions{targets: testTargets, skipResult: missingCell, failResult: failedCell})
	// One cell's traffic reached only 60% of what was asked.
	for i, r := range src.results {
		if r.Target == "win7-x64" && r.Phase == "before" && r.Profile == "single-nbl" {
			src.results[i].PacketsPerSec = 1200
		}
	}
	files, _ := writeRun(t, src)
	doc := parseHTML(t, files.Report)
	tables := findAll(doc, isElem("table"))
	var m, verdicts int = -1, -1
	for i, tb := range tables {
		switch {
		case attr(tb, "id") == "matrix":
			m = i
		case hasClass(tb, "verdicts"):
			verdicts = i
		}
	}
	if m < 0 || verdicts < 0 || m > verdicts || hasClass(tables[0], "header") && m != 1 {
		t.Fatalf("matrix table at %d, verdict table at %d: the matrix must come first, after the run header", m, verdicts)
	}
	rows := findAll(tables[m], isElem("tr"))
	if len(rows) != 2+len(testTargets) {
		t.Fatalf("matrix has %d rows, want 2 header rows + %d targets", len(rows), len(testTargets))
	}
	cells := map[string]string{} // target/phase/profile → text
	classes := map[string]string{}
	phases, profiles := []string{"before", "after"}, []string{"stream-burst", "fragment-forward", "single-nbl"}
	for _, tr := range rows[2:] {
		target := textOf(findAll(tr, isElem("th"))[0])
		tds := findAll(tr, isElem("td"))
		if len(tds) != len(phases)*len(profiles) {
			t.Fatalf("%s: %d cells, want %d", target, len(tds), len(phases)*len(profiles))
		}
		for i, td := range tds {
			k := target + "/" + phases[i/len(profiles)] + "/" + profiles[i%len(profiles)]
			cells[k], classes[k] = textOf(td), attr(td, "class")
			if attr(td, "title") == "" {
				t.Errorf("%s: no title", k)
			}
		}
	}
	if c := cells["win7-x64/before/stream-burst"]; !strings.Contains(c, "LEAK ✓") || !strings.Contains(c, "50.0 chains/s") || !strings.Contains(c, "of 2,000 pkts/s (99%)") {
		t.Errorf("win7-x64 before stream-burst cell = %q, want LEAK ✓, its chains/s and rate against the asked", c)
	}
	if !strings.Contains(classes["win7-x64/before/stream-burst"], "v-leak") {
		t.Errorf("LEAK cell classes %q", classes["win7-x64/before/stream-burst"])
	}
	if c, cl := cells[failedCell], classes[failedCell]; !strings.Contains(c, "✗ expected CLEAN") || !strings.Contains(cl, "st-failed") {
		t.Errorf("failed cell = %q (%s), want ✗ expected CLEAN, outlined", c, cl)
	}
	if c := cells[missingCell]; !strings.Contains(c, "no result ?") {
		t.Errorf("missing cell = %q", c)
	}
	under := findAll(tables[m], func(n *html.Node) bool { return hasClass(n, "under") })
	if len(under) != 1 || !strings.Contains(textOf(under[0]), "1,200 of 2,000 pkts/s (60%)") {
		t.Errorf("under-rate marks: %d, want one on the 60%% cell", len(under))
	}
}

// Every unit bench.txt writes says which way is better, so wfplab compare can judge it.
func TestEveryBenchUnitHasADirection(t *testing.T) {
	for _, u := range []string{"leak-B/s", "B/chain", "chains/s", "pkts/s"} {
		if BenchBetter(u) == 0 {
			t.Errorf("unit %s has no better= line", u)
		}
	}
	for _, m := range bench.TputMetrics {
		if BenchBetter(m.Name) == 0 {
			t.Errorf("throughput metric %s has no better= line: add it to benchUnits", m.Name)
		}
	}
}
