package plots

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/wfplab/wfplab/bench"
)

// perChainRun is the synthetic run judged in bytes per chain: the scenario has traffic
// blocks and a threshold of 96 B/chain, and every cell with chains has a fit whose interval
// is its own.
func perChainRun() *fakeSource {
	src := synthRun(synthOptions{targets: testTargets})
	src.run.ScenarioText = strings.Replace(src.run.ScenarioText, "  settle: 1s\n", "  settle: 1s\n  block: 3s\n", 1)
	src.run.ScenarioText = strings.Replace(src.run.ScenarioText, "  threshold_bps: 4096\n",
		"  threshold_bps: 4096\n  threshold_bytes_per_chain: 96\n", 1)
	for i := range src.results {
		r := &src.results[i]
		if r.ChainsPerSec > 0 {
			r.Dose = &bench.Dose{PerChain: r.BytesPerChain, Lo: r.BytesPerChain - 20 - float64(i), Hi: r.BytesPerChain + 30 + float64(i), N: 110, DF: 104}
		}
	}
	return src
}

// perChainCell splits a verdict table's bytes-per-chain cell into the figure and the
// interval under it ("" when there is none).
func perChainCell(td *html.Node) (figure, interval string) {
	if td.FirstChild != nil && td.FirstChild.Type == html.TextNode {
		figure = strings.TrimSpace(td.FirstChild.Data)
	}
	if spans := findAll(td, isElem("span")); len(spans) > 0 {
		interval = textOf(spans[0])
	}
	return figure, interval
}

// summaryRows maps "target/phase/profile" to the cells of summary.md's detail table.
func summaryRows(t *testing.T, path string) (header []string, rows map[string][]string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rows = map[string][]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "| ") {
			continue
		}
		cols := strings.Split(strings.Trim(line, "| "), " | ")
		if cols[0] == "Target" && len(cols) > 3 && cols[1] == "Phase" {
			header = cols
			continue
		}
		if header != nil && len(cols) == len(header) {
			rows[cols[0]+"/"+cols[1]+"/"+cols[2]] = cols
		}
	}
	return header, rows
}

// A release manager reads bytes per chain with its interval and the threshold it was judged
// against next to the rate, in report.html and summary.md, as the results hold them.
func TestReportShowsBytesPerChainInterval(t *testing.T) {
	src := perChainRun()
	files, dir := writeRun(t, src)
	// The overview draws rates: no B/s line the verdicts were not judged at.
	if svg, err := os.ReadFile(filepath.Join(dir, ChartsDir, "overview.svg")); err != nil ||
		bytes.Contains(svg, []byte("4,096 B/s")) || !bytes.Contains(svg, []byte("against 96 B/chain")) {
		t.Errorf("overview chart of a run judged in bytes per chain: %v; it must name 96 B/chain and no 4,096 B/s threshold", err)
	}
	header, rows, _ := verdictRows(t, parseHTML(t, files.Report))
	bc, jc := column(header, "Bytes / chain"), column(header, "Judged against")
	if bc < 0 || jc < 0 {
		t.Fatalf("verdict table lacks bytes per chain or the threshold: %v", header)
	}
	mdHeader, mdRows := summaryRows(t, files.Summary)
	mbc, mci, mjc := column(mdHeader, "Bytes/chain"), column(mdHeader, "95% CI (B/chain)"), column(mdHeader, "Judged against")
	if mbc < 0 || mci < 0 || mjc < 0 {
		t.Fatalf("summary.md table lacks bytes per chain, its interval or the threshold: %v", mdHeader)
	}
	withCI := 0
	for _, r := range src.results {
		key := r.Target + "/" + r.Phase + "/" + r.Profile
		row, md := rows[key], mdRows[key]
		if row == nil || md == nil {
			t.Fatalf("%s: no row in report.html (%v) or summary.md (%v)", key, row != nil, md != nil)
		}
		if got := textOf(row[jc]); got != "96 B/chain" {
			t.Errorf("%s: report.html judged against %q, want 96 B/chain", key, got)
		}
		if md[mjc] != "96 B/chain" {
			t.Errorf("%s: summary.md judged against %q, want 96 B/chain", key, md[mjc])
		}
		wantCI := "—"
		if r.Dose != nil {
			withCI++
			wantCI = "[" + num(r.Dose.Lo) + ", " + num(r.Dose.Hi) + "]"
		}
		if got, ci := perChainCell(row[bc]); got != num(r.BytesPerChain) || r.Dose != nil && ci != "95% CI "+wantCI || r.Dose == nil && ci != "" {
			t.Errorf("%s: report.html bytes per chain %q, interval %q; want %s, interval %s", key, got, ci, num(r.BytesPerChain), wantCI)
		}
		if md[mbc] != num(r.BytesPerChain) || md[mci] != wantCI {
			t.Errorf("%s: summary.md bytes per chain %q %q, want %q %q", key, md[mbc], md[mci], num(r.BytesPerChain), wantCI)
		}
	}
	if withCI != 8 {
		t.Errorf("%d cells with a bytes-per-chain fit, want 8 (the multi-NBL ones)", withCI)
	}
	// One cell in full, so the formatting itself is checked: 24000 B/s at 50 chains/s.
	if got, ci := perChainCell(rows["win7-x64/before/stream-burst"][bc]); got != "480" || ci != "95% CI [460, 510]" {
		t.Errorf("win7-x64/before/stream-burst bytes per chain: %q, interval %q", got, ci)
	}
}

// A run judged in bytes per second names that threshold, and shows no per-chain interval.
func TestReportShowsRateThreshold(t *testing.T) {
	files, dir := writeRun(t, synthRun(synthOptions{targets: testTargets}))
	if svg, err := os.ReadFile(filepath.Join(dir, ChartsDir, "overview.svg")); err != nil || !bytes.Contains(svg, []byte("threshold 4,096 B/s")) {
		t.Errorf("overview chart of a run judged in bytes per second lacks its threshold: %v", err)
	}
	header, rows, order := verdictRows(t, parseHTML(t, files.Report))
	jc := column(header, "Judged against")
	_, mdRows := summaryRows(t, files.Summary)
	for _, key := range order {
		if got := textOf(rows[key][jc]); got != "4,096 B/s" {
			t.Errorf("%s: judged against %q, want 4,096 B/s", key, got)
		}
		if md := mdRows[key]; len(md) < 9 || md[7] != "—" || md[8] != "4,096 B/s" {
			t.Errorf("%s: summary.md row %q, want no interval and 4,096 B/s", key, md)
		}
	}
}
