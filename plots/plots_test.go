package plots

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/html"
	"golang.org/x/perf/benchfmt"
	"gonum.org/v1/plot/plotter"

	"github.com/wfplab/wfplab/bench"
)

const (
	failedCell  = "win7-x64/after/fragment-forward"
	missingCell = "vista-sp1-x86/after/single-nbl"
)

func writeRun(t *testing.T, src Source) (Files, string) {
	t.Helper()
	return writeRunWith(t, src, config{})
}

// writeRunWith writes with what a store may lack supplied.
func writeRunWith(t *testing.T, src Source, cfg config) (Files, string) {
	t.Helper()
	dir := t.TempDir()
	files, err := write(src, dir, cfg)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	return files, dir
}

func TestWriteCompleteRun(t *testing.T) {
	src := synthRun(synthOptions{targets: testTargets, skipResult: missingCell, failResult: failedCell,
		eventMessage: `driver said <script>alert("x")</script> & left`})
	files, dir := writeRun(t, src)

	want := []string{"report.html", "summary.md", "junit.xml", "bench.txt",
		"plots/overview.png", "plots/overview.svg",
		"plots/pool-win7-x64.png", "plots/pool-win7-x64.svg",
		"plots/pool-vista-sp1-x86.png", "plots/pool-vista-sp1-x86.svg"}
	got := map[string]bool{}
	for _, p := range allPaths(files) {
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			t.Fatal(err)
		}
		got[filepath.ToSlash(rel)] = true
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("Files lacks %s (has %v)", w, allPaths(files))
		}
		if _, err := os.Stat(filepath.Join(dir, w)); err != nil {
			t.Errorf("%s not written: %v", w, err)
		}
	}
	if len(got) != len(want) {
		t.Errorf("Files has %d paths, want %d: %v", len(got), len(want), allPaths(files))
	}

	for _, name := range []string{"overview", "pool-win7-x64", "pool-vista-sp1-x86"} {
		checkPNG(t, filepath.Join(dir, "plots", name+".png"))
		svg, err := os.ReadFile(filepath.Join(dir, "plots", name+".svg"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(svg, []byte("<svg")) {
			t.Errorf("%s.svg is not an SVG document", name)
		}
	}
	// The chart's title names the target and both netio.sys versions (SVG keeps text as text).
	svg, _ := os.ReadFile(filepath.Join(dir, "plots", "pool-win7-x64.svg"))
	for _, s := range []string{"win7-x64", "Windows 7", "6.1.7600.16385", "6.1.7600.20611", "stream-burst", "single-nbl"} {
		if !bytes.Contains(svg, []byte(s)) {
			t.Errorf("pool chart of win7-x64 does not show %q", s)
		}
	}

	checkReportComplete(t, files.Report)
	checkJUnitComplete(t, files.JUnit)
	checkSummaryComplete(t, files.Summary)
	checkBenchComplete(t, files.Bench, src)
}

// allPaths lists every path in Files.
func allPaths(f Files) []string {
	var out []string
	for _, p := range []string{f.Report, f.Summary, f.JUnit, f.Bench} {
		if p != "" {
			out = append(out, p)
		}
	}
	return append(out, f.Charts...)
}

func checkPNG(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	checkPNGBytes(t, path, data)
}

func checkPNGBytes(t *testing.T, what string, data []byte) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: not a PNG: %v", what, err)
	}
	const wantW, wantH = 960, 528 // 10 × 5.5 inches at 96 dpi
	if b := img.Bounds(); b.Dx() != wantW || b.Dy() != wantH {
		t.Errorf("%s: %d×%d pixels, want %d×%d", what, b.Dx(), b.Dy(), wantW, wantH)
	}
	// A chart is not a blank page: count pixels that are neither white nor near-white.
	inked := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 4 {
		for x := b.Min.X; x < b.Max.X; x += 4 {
			r, g, bb, _ := img.At(x, y).RGBA()
			if r < 0xe000 || g < 0xe000 || bb < 0xe000 {
				inked++
			}
		}
	}
	if inked < 50 {
		t.Errorf("%s: only %d inked sample pixels; the chart looks empty", what, inked)
	}
}

// --- HTML helpers ---

func parseHTML(t *testing.T, path string) *html.Node {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("report.html does not parse: %v", err)
	}
	return doc
}

func findAll(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if match(n) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return out
}

func isElem(tag string) func(*html.Node) bool {
	return func(n *html.Node) bool { return n.Type == html.ElementNode && n.Data == tag }
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasClass(n *html.Node, class string) bool {
	for _, c := range strings.Fields(attr(n, "class")) {
		if c == class {
			return true
		}
	}
	return false
}

func textOf(n *html.Node) string {
	var b strings.Builder
	for _, t := range findAll(n, func(n *html.Node) bool { return n.Type == html.TextNode }) {
		b.WriteString(t.Data)
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// verdictRows maps "target/phase/profile" to the row's cells.
func verdictRows(t *testing.T, doc *html.Node) (header []string, rows map[string][]*html.Node, order []string) {
	t.Helper()
	tables := findAll(doc, func(n *html.Node) bool { return isElem("table")(n) && hasClass(n, "verdicts") })
	if len(tables) != 1 {
		t.Fatalf("report has %d verdict tables, want 1", len(tables))
	}
	rows = map[string][]*html.Node{}
	for i, tr := range findAll(tables[0], isElem("tr")) {
		if i == 0 {
			for _, th := range findAll(tr, isElem("th")) {
				header = append(header, textOf(th))
			}
			continue
		}
		tds := findAll(tr, isElem("td"))
		if len(tds) != len(header) {
			t.Fatalf("verdict row %d has %d cells, header %d", i, len(tds), len(header))
		}
		key := textOf(tds[0]) + "/" + textOf(tds[1]) + "/" + textOf(tds[2])
		rows[key] = tds
		order = append(order, key)
	}
	return header, rows, order
}

func column(header []string, name string) int {
	for i, h := range header {
		if strings.HasPrefix(h, name) {
			return i
		}
	}
	return -1
}

func checkReportComplete(t *testing.T, path string) {
	t.Helper()
	doc := parseHTML(t, path)
	if s := findAll(doc, isElem("script")); len(s) != 0 {
		t.Errorf("report has %d <script> elements; event text must be escaped", len(s))
	}
	if !strings.Contains(textOf(doc), `driver said <script>alert("x")</script> & left`) {
		t.Error("the event message does not appear as text")
	}
	header, rows, order := verdictRows(t, doc)
	for _, col := range []string{"Target", "Phase", "Profile", "netio.sys", "Leak rate", "95% CI", "Bytes / chain", "Chains/s", "Packets/s", "Verdict", "Expected", "Met"} {
		if column(header, col) < 0 {
			t.Errorf("verdict table lacks column %q (has %v)", col, header)
		}
	}
	if len(rows) != 12 {
		t.Fatalf("verdict table has %d rows, want 12 (2 targets × 2 phases × 3 profiles): %v", len(rows), order)
	}
	if order[0] != "win7-x64/before/stream-burst" || order[11] != "vista-sp1-x86/after/single-nbl" {
		t.Errorf("rows are not in target, phase, profile order: %v", order)
	}
	vc, ec, mc, nc := column(header, "Verdict"), column(header, "Expected"), column(header, "Met"), column(header, "netio.sys")
	lc := column(header, "Leak rate")
	for key, tds := range rows {
		parts := strings.Split(key, "/")
		wantExp := string(expectedVerdict(parts[1], parts[2]))
		if got := textOf(tds[ec]); got != wantExp {
			t.Errorf("%s: expected column %q, want %q", key, got, wantExp)
		}
		switch key {
		case failedCell:
			if textOf(tds[vc]) != "INCONCLUSIVE" || textOf(tds[mc]) != "NO" || !hasClass(tds[mc], "met-bad") || !hasClass(tds[vc], "v-inc") {
				t.Errorf("%s: verdict %q met %q (classes %q, %q); want INCONCLUSIVE, NO, coloured",
					key, textOf(tds[vc]), textOf(tds[mc]), attr(tds[vc], "class"), attr(tds[mc], "class"))
			}
		case missingCell:
			if textOf(tds[vc]) != "no result" || !hasClass(tds[mc], "met-missing") || textOf(tds[lc]) != dash {
				t.Errorf("%s: verdict %q met class %q leak %q; want no result, met-missing, —", key, textOf(tds[vc]), attr(tds[mc], "class"), textOf(tds[lc]))
			}
		default:
			wantClass := map[string]string{"LEAK": "v-leak", "CLEAN": "v-clean"}[wantExp]
			if textOf(tds[vc]) != wantExp || !hasClass(tds[vc], wantClass) || textOf(tds[mc]) != "yes" || !hasClass(tds[mc], "met-ok") {
				t.Errorf("%s: verdict %q (class %q) met %q; want %s (%s), yes", key, textOf(tds[vc]), attr(tds[vc], "class"), textOf(tds[mc]), wantExp, wantClass)
			}
		}
		if strings.HasSuffix(key, "/before/stream-burst") && textOf(tds[lc]) != "24,000" {
			t.Errorf("%s: leak rate %q, want 24,000", key, textOf(tds[lc]))
		}
	}
	if got := textOf(rows["win7-x64/after/stream-burst"][nc]); got != "6.1.7600.20611 (patched)" {
		t.Errorf("netio column of win7-x64/after: %q", got)
	}
	heads := findAll(doc, func(n *html.Node) bool { return hasClass(n, "headline") })
	if len(heads) != 1 || textOf(heads[0]) != "10 of 12 expectations met (1 not met, 1 without a result)." || !hasClass(heads[0], "bad") {
		t.Errorf("headline: %d found, first %q", len(heads), textOfFirst(heads))
	}

	// Charts are embedded, decodable PNGs: overview + one per target.
	imgs := findAll(doc, isElem("img"))
	if len(imgs) != 3 {
		t.Fatalf("report embeds %d images, want 3", len(imgs))
	}
	for _, img := range imgs {
		src := attr(img, "src")
		b64, ok := strings.CutPrefix(src, "data:image/png;base64,")
		if !ok {
			t.Fatalf("image src is not a PNG data URI: %.60q", src)
		}
		data, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			t.Fatalf("image data does not decode: %v", err)
		}
		checkPNGBytes(t, "embedded "+attr(img, "alt"), data)
	}
	runHeader := map[string]string{}
	for _, tbl := range findAll(doc, func(n *html.Node) bool { return isElem("table")(n) && hasClass(n, "header") }) {
		for _, tr := range findAll(tbl, isElem("tr")) {
			if th, td := findAll(tr, isElem("th")), findAll(tr, isElem("td")); len(th) == 1 && len(td) == 1 {
				runHeader[textOf(th[0])] = textOf(td[0])
			}
		}
	}
	for k, v := range map[string]string{"Run": "20240501-100000-test", "Scenario": "kb979223", "Seed": "42", "Provider": "sim",
		"Started": "2024-05-01 10:00:00 UTC", "Finished": "2024-05-01 10:03:00 UTC", "wfplab": "wfplab test"} {
		if runHeader[k] != v {
			t.Errorf("run header %s = %q, want %q", k, runHeader[k], v)
		}
	}
	all := textOf(doc)
	for _, s := range []string{
		"n_eff", "4,096 bytes/s", "Top growing pool tags", "NDnb", "KB979223 installed", "rebooted in 4.1s", "threshold_bps: 4096"} {
		if !strings.Contains(all, s) {
			t.Errorf("report does not mention %q", s)
		}
	}
	if strings.Contains(all, "did not finish") {
		t.Error("a finished run is reported as not finished")
	}
	if len(findAll(doc, func(n *html.Node) bool { return n.Type == html.ElementNode && n.Data == "link" })) != 0 {
		t.Error("report links external resources; it must be self-contained")
	}
}

func textOfFirst(ns []*html.Node) string {
	if len(ns) == 0 {
		return ""
	}
	return textOf(ns[0])
}

// --- JUnit ---

type jSuites struct {
	XMLName  xml.Name `xml:"testsuites"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Errors   int      `xml:"errors,attr"`
	Time     string   `xml:"time,attr"`
	Suites   []struct {
		Name       string `xml:"name,attr"`
		Tests      int    `xml:"tests,attr"`
		Failures   int    `xml:"failures,attr"`
		Errors     int    `xml:"errors,attr"`
		Skipped    int    `xml:"skipped,attr"`
		Time       string `xml:"time,attr"`
		Properties []struct {
			Name  string `xml:"name,attr"`
			Value string `xml:"value,attr"`
		} `xml:"properties>property"`
		Cases []struct {
			Name      string `xml:"name,attr"`
			Classname string `xml:"classname,attr"`
			Time      string `xml:"time,attr"`
			Failure   *struct {
				Message string `xml:"message,attr"`
				Type    string `xml:"type,attr"`
				Text    string `xml:",chardata"`
			} `xml:"failure"`
			Skipped *struct {
				Message string `xml:"message,attr"`
			} `xml:"skipped"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func readJUnit(t *testing.T, path string) jSuites {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var js jSuites
	if err := xml.Unmarshal(data, &js); err != nil {
		t.Fatalf("junit.xml does not unmarshal: %v\n%s", err, data)
	}
	// Counts agree with the cases, and numbers are numbers.
	total := 0
	for _, s := range js.Suites {
		f, sk := 0, 0
		for _, c := range s.Cases {
			if c.Classname != s.Name {
				t.Errorf("case %s has classname %q, want the target %q", c.Name, c.Classname, s.Name)
			}
			if c.Failure != nil {
				f++
			}
			if c.Skipped != nil {
				sk++
			}
			if _, err := strconv.ParseFloat(c.Time, 64); err != nil {
				t.Errorf("case %s time %q: %v", c.Name, c.Time, err)
			}
		}
		if s.Tests != len(s.Cases) || s.Failures != f || s.Skipped != sk || s.Errors != 0 {
			t.Errorf("suite %s: tests=%d failures=%d skipped=%d errors=%d, cases say %d/%d/%d/0",
				s.Name, s.Tests, s.Failures, s.Skipped, s.Errors, len(s.Cases), f, sk)
		}
		if _, err := strconv.ParseFloat(s.Time, 64); err != nil {
			t.Errorf("suite %s time %q: %v", s.Name, s.Time, err)
		}
		total += s.Tests
	}
	if js.Tests != total {
		t.Errorf("testsuites tests=%d, suites sum to %d", js.Tests, total)
	}
	return js
}

func checkJUnitComplete(t *testing.T, path string) {
	t.Helper()
	js := readJUnit(t, path)
	if len(js.Suites) != 2 || js.Suites[0].Name != "win7-x64" || js.Suites[1].Name != "vista-sp1-x86" {
		t.Fatalf("suites: %+v", js.Suites)
	}
	if js.Tests != 12 || js.Failures != 1 {
		t.Errorf("testsuites: tests=%d failures=%d, want 12 and 1", js.Tests, js.Failures)
	}
	win7, vista := js.Suites[0], js.Suites[1]
	if win7.Tests != 6 || win7.Failures != 1 || win7.Skipped != 0 {
		t.Errorf("win7-x64: tests=%d failures=%d skipped=%d", win7.Tests, win7.Failures, win7.Skipped)
	}
	if vista.Tests != 6 || vista.Failures != 0 || vista.Skipped != 1 {
		t.Errorf("vista-sp1-x86: tests=%d failures=%d skipped=%d", vista.Tests, vista.Failures, vista.Skipped)
	}
	for _, c := range win7.Cases {
		if c.Name == "after/fragment-forward" {
			if c.Failure == nil || !strings.Contains(c.Failure.Message, "expected CLEAN, got INCONCLUSIVE") || !strings.Contains(c.Failure.Text, "contains the threshold") {
				t.Errorf("failed case: %+v", c.Failure)
			}
			if c.Time != "12.000" {
				t.Errorf("case time %q, want the window's 12.000", c.Time)
			}
		} else if c.Failure != nil || c.Skipped != nil {
			t.Errorf("case %s should pass: %+v %+v", c.Name, c.Failure, c.Skipped)
		}
	}
	for _, c := range vista.Cases {
		if (c.Name == "after/single-nbl") != (c.Skipped != nil) {
			t.Errorf("vista case %s skipped=%v", c.Name, c.Skipped != nil)
		}
	}
	props := map[string]string{}
	for _, p := range win7.Properties {
		props[p.Name] = p.Value
	}
	if props["netio.before"] != "6.1.7600.16385" || props["netio.after"] != "6.1.7600.20611" || props["hotfix.after"] != "patched" {
		t.Errorf("win7-x64 properties: %v", props)
	}
}

// --- summary.md ---

func summaryTable(t *testing.T, path string) (lines []string, rows [][]string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines = strings.Split(string(data), "\n")
	// The detail table (the matrix above it has a column per phase × profile).
	inTable := false
	for _, l := range lines {
		if !strings.HasPrefix(l, "|") {
			inTable = false
			continue
		}
		if !inTable && !strings.HasPrefix(l, "| Target | Phase |") {
			continue
		}
		inTable = true
		cells := strings.Split(strings.Trim(l, "|"), " | ")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows = append(rows, cells)
	}
	return lines, rows
}

func checkSummaryComplete(t *testing.T, path string) {
	t.Helper()
	lines, rows := summaryTable(t, path)
	if !strings.HasPrefix(lines[0], "# ") {
		t.Errorf("summary does not start with a title: %q", lines[0])
	}
	if !containsLine(lines, "**10 of 12 expectations met (1 not met, 1 without a result).**") {
		t.Errorf("summary lacks the headline:\n%s", strings.Join(lines, "\n"))
	}
	if len(rows) != 14 { // header, separator, 12 cells
		t.Fatalf("summary table has %d lines, want 14", len(rows))
	}
	if rows[0][0] != "Target" || rows[0][len(rows[0])-1] != "Met" || !strings.HasPrefix(rows[1][0], "---") {
		t.Errorf("summary table header: %v / %v", rows[0], rows[1])
	}
	found := map[string][]string{}
	for _, r := range rows[2:] {
		if len(r) != len(rows[0]) {
			t.Errorf("row %v has %d columns, header %d", r, len(r), len(rows[0]))
			continue
		}
		found[r[0]+"/"+r[1]+"/"+r[2]] = r
	}
	if r := found[failedCell]; r == nil || r[11] != "**INCONCLUSIVE**" || r[13] != "**NO**" {
		t.Errorf("failed row: %v", r)
	}
	if r := found[missingCell]; r == nil || r[11] != "no result" || r[13] != "no result" {
		t.Errorf("missing row: %v", r)
	}
	if r := found["vista-sp1-x86/before/stream-burst"]; r == nil || r[11] != "**LEAK**" || r[13] != "yes" || r[4] != "24,000" || r[6] != "240" {
		t.Errorf("leak row: %v", r)
	}
}

func containsLine(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

// --- bench.txt, held to the rules of golang.org/design/14313-benchmark-format ---

type benchResult struct {
	name   string // as benchstat reads it: without the "Benchmark" prefix
	n      int
	values map[string]float64
	config map[string]string
}

// parseBenchFormat reads bench.txt with benchstat's own reader: what it cannot read is an
// error, and values keep the units bench.txt wrote (benchfmt tidies some, e.g. B/s).
func parseBenchFormat(t *testing.T, path string) []benchResult {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []benchResult
	r := benchfmt.NewReader(f, filepath.Base(path))
	for r.Scan() {
		switch rec := r.Result().(type) {
		case *benchfmt.SyntaxError:
			t.Errorf("benchfmt cannot read it: %v", rec)
		case *benchfmt.Result:
			br := benchResult{name: rec.Name.String(), n: rec.Iters, values: map[string]float64{}, config: map[string]string{}}
			for _, c := range rec.Config {
				br.config[c.Key] = string(c.Value)
			}
			for _, v := range rec.Values {
				unit, value := v.Unit, v.Value
				if v.OrigUnit != "" {
					unit, value = v.OrigUnit, v.OrigValue
				}
				br.values[unit] = value
			}
			out = append(out, br)
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func checkBenchComplete(t *testing.T, path string, src *fakeSource) {
	t.Helper()
	results := parseBenchFormat(t, path)
	if len(results) != 11 { // 12 cells, one without a result
		t.Fatalf("bench.txt has %d results, want 11", len(results))
	}
	byName := map[string]benchResult{}
	for _, r := range results {
		byName[r.name] = r
		if r.config["goos"] != "windows" {
			t.Errorf("%s: goos %q", r.name, r.config["goos"])
		}
		if _, ok := r.values["leak-B/s"]; !ok {
			t.Errorf("%s: no leak-B/s", r.name)
		}
		if _, ok := r.values["pkts/s"]; !ok {
			t.Errorf("%s: no pkts/s", r.name)
		}
	}
	for _, cr := range src.results {
		name := "KB979223/target=" + cr.Target + "/phase=" + cr.Phase + "/profile=" + cr.Profile
		r, ok := byName[name]
		if !ok {
			t.Errorf("bench.txt lacks %s", name)
			continue
		}
		if r.n != cr.Leak.N || r.values["leak-B/s"] != cr.Leak.Slope || r.values["pkts/s"] != cr.PacketsPerSec {
			t.Errorf("%s: N=%d leak=%v pkts=%v, want %d %v %v", name, r.n, r.values["leak-B/s"], r.values["pkts/s"],
				cr.Leak.N, cr.Leak.Slope, cr.PacketsPerSec)
		}
		if r.config["target"] != cr.Target {
			t.Errorf("%s: target config %q", name, r.config["target"])
		}
		if _, has := r.values["B/chain"]; has != finite(cr.BytesPerChain) {
			t.Errorf("%s: B/chain present=%v, result %v", name, has, cr.BytesPerChain)
		}
	}
	wantArch := map[string]string{"win7-x64": "amd64", "vista-sp1-x86": "386"}
	for _, r := range results {
		if r.config["goarch"] != wantArch[r.config["target"]] {
			t.Errorf("%s: goarch %q", r.name, r.config["goarch"])
		}
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), "\nrun:") || strings.Contains(string(data), "\nseed:") {
		t.Error("run identity is a configuration line; benchstat would not compare two runs")
	}
}

func TestWriteKilledRun(t *testing.T) {
	// win7-x64 was killed inside its first window after the hotfix; vista-sp1-x86 inside its
	// second window before it, so its "after" phase never started. No results, no finish time.
	src := synthRun(synthOptions{targets: testTargets,
		killAfter: map[string]int{"win7-x64": 4, "vista-sp1-x86": 2}})
	files, _ := writeRun(t, src)

	doc := parseHTML(t, files.Report)
	all := textOf(doc)
	for _, s := range []string{"This run did not finish", "not finished", `Target vista-sp1-x86: phase "after" never started.`,
		`Target win7-x64: phase "after" has no end time (cut short).`, "12 of 12 cells have no result.",
		"0 of 12 expectations met (12 without a result).", "cut short"} {
		if !strings.Contains(all, s) {
			t.Errorf("report of a killed run does not say %q", s)
		}
	}
	_, rows, _ := verdictRows(t, doc)
	if len(rows) != 12 {
		t.Errorf("verdict table has %d rows, want all 12 cells", len(rows))
	}
	// Tag growth comes from the raw samples when there is no analysis.
	if !strings.Contains(all, "NDnb") {
		t.Error("report of a killed run shows no tag growth from the raw samples")
	}
	imgs := findAll(doc, isElem("img"))
	if len(imgs) != 3 {
		t.Errorf("report embeds %d charts, want 3", len(imgs))
	}
	checkPNG(t, filepath.Join(filepath.Dir(files.Report), "plots", "overview.png"))
	checkPNG(t, filepath.Join(filepath.Dir(files.Report), "plots", "pool-vista-sp1-x86.png"))

	js := readJUnit(t, files.JUnit)
	if js.Tests != 12 || js.Failures != 0 {
		t.Errorf("junit of a killed run: tests=%d failures=%d, want 12 and 0", js.Tests, js.Failures)
	}
	for _, s := range js.Suites {
		if s.Skipped != 6 {
			t.Errorf("suite %s: skipped=%d, want 6", s.Name, s.Skipped)
		}
		for _, c := range s.Cases {
			if c.Skipped == nil || !strings.Contains(c.Skipped.Message, "no result") {
				t.Errorf("case %s/%s: %+v", s.Name, c.Name, c.Skipped)
			}
		}
	}
	if res := parseBenchFormat(t, files.Bench); len(res) != 0 {
		t.Errorf("bench.txt of a run without results has %d results", len(res))
	}
	lines, rows2 := summaryTable(t, files.Summary)
	if !containsLine(lines, "**0 of 12 expectations met (12 without a result).**") || len(rows2) != 14 {
		t.Errorf("summary of a killed run:\n%s", strings.Join(lines, "\n"))
	}
}

func TestWriteWithoutScenarioText(t *testing.T) {
	src := synthRun(synthOptions{targets: testTargets, skipResult: missingCell})
	src.run.ScenarioText = ""

	// Without the scenario, a missing cell's expectation is unknown: it is no test case.
	files, _ := writeRun(t, src)
	js := readJUnit(t, files.JUnit)
	if js.Tests != 11 {
		t.Errorf("tests=%d, want the 11 results with an expectation", js.Tests)
	}
	if all := textOf(parseHTML(t, files.Report)); !strings.Contains(all, "expectations of cells without a result are not known") ||
		!strings.Contains(all, "not recorded with this run") {
		t.Error("report does not say what it cannot know without the scenario")
	}

	// The expected cells and the verdict rule, given, supply what the store lacks.
	var exp []expectation
	for _, tt := range testTargets {
		for _, ph := range testPhases {
			for _, pr := range testProfiles {
				exp = append(exp, expectation{tt.info.Name, ph, pr, expectedVerdict(ph, pr)})
			}
		}
	}
	files, _ = writeRunWith(t, src, config{expected: exp, thresholdBps: 2048, confidence: 0.9, haveRule: true})
	js = readJUnit(t, files.JUnit)
	if js.Tests != 12 || js.Suites[1].Skipped != 1 {
		t.Errorf("with expectations: tests=%d, vista skipped=%d; want 12 and 1", js.Tests, js.Suites[1].Skipped)
	}
	all := textOf(parseHTML(t, files.Report))
	if !strings.Contains(all, "2,048 bytes/s") || !strings.Contains(all, "90% CI") {
		t.Error("report does not use the verdict rule given to Write")
	}
}

func TestWriteReportsReadFailures(t *testing.T) {
	src := synthRun(synthOptions{targets: testTargets})
	src.failures["Pool:vista-sp1-x86"] = errors.New("database disk image is malformed")
	src.failures["Results"] = errors.New("no such table: results")
	dir := t.TempDir()
	files, err := Write(src, dir)
	if err == nil {
		t.Fatal("Write hid two read failures")
	}
	for _, s := range []string{`pool samples of target "vista-sp1-x86"`, "database disk image is malformed", "cell results", "no such table"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error does not say %q: %v", s, err)
		}
	}
	if files.Report == "" || files.JUnit == "" || len(files.Charts) != 6 {
		t.Fatalf("outputs were not written despite partial data: %+v", files)
	}
	all := textOf(parseHTML(t, files.Report))
	if !strings.Contains(all, "database disk image is malformed") {
		t.Error("report does not show the read failure")
	}
	checkPNG(t, filepath.Join(dir, "plots", "pool-vista-sp1-x86.png"))
}

func TestWriteBadArguments(t *testing.T) {
	if _, err := Write(nil, t.TempDir()); err == nil {
		t.Error("nil source accepted")
	}
	if _, err := Write(newFakeSource(), ""); err == nil {
		t.Error("empty folder accepted")
	}
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(newFakeSource(), file); err == nil || !strings.Contains(err.Error(), "output folder") {
		t.Errorf("a file as output folder: %v", err)
	}
}

func TestWriteEmptyStore(t *testing.T) {
	files, _ := writeRun(t, newFakeSource())
	js := readJUnit(t, files.JUnit)
	if js.Tests != 0 || len(js.Suites) != 0 {
		t.Errorf("empty store: %+v", js)
	}
	checkPNG(t, filepath.Join(filepath.Dir(files.Report), "plots", "overview.png"))
	if all := textOf(parseHTML(t, files.Report)); !strings.Contains(all, "No results and no expectations recorded.") {
		t.Errorf("empty store report: %s", all)
	}
}

func TestUnusualNames(t *testing.T) {
	tt := testTargets[0]
	tt.info.Name = "lab host/1 <b>"
	src := synthRun(synthOptions{targets: []testTarget{tt}})
	src.run.ScenarioText = ""
	files, dir := writeRun(t, src)
	if _, err := os.Stat(filepath.Join(dir, "plots", "pool-lab_host_1__b_.png")); err != nil {
		t.Errorf("chart file name not made safe: %v (%v)", err, files.Charts)
	}
	for _, r := range parseBenchFormat(t, files.Bench) {
		if !strings.HasPrefix(r.name, "KB979223/target=lab_host_1_<b>/phase=") {
			t.Errorf("benchmark name %q", r.name)
		}
	}
	doc := parseHTML(t, files.Report)
	if len(findAll(doc, isElem("b"))) != 0 {
		t.Error("target name became markup")
	}
	if data, _ := os.ReadFile(files.Summary); !strings.Contains(string(data), `lab host/1 \<b\>`) {
		t.Errorf("summary does not escape the name:\n%s", data)
	}
}

// sixTargets is the default scenario's size: six targets (both phases, three profiles each).
func sixTargets() []testTarget {
	var targets []testTarget
	for i := range 6 {
		tt := testTargets[i%2]
		tt.info.Name = tt.info.Name + "-" + string(rune('a'+i))
		targets = append(targets, tt)
	}
	return targets
}

func TestSixTargetsRender(t *testing.T) {
	files, _ := writeRun(t, synthRun(synthOptions{targets: sixTargets()}))
	if len(files.Charts) != 14 {
		t.Errorf("%d chart files, want 14", len(files.Charts))
	}
	js := readJUnit(t, files.JUnit)
	if js.Tests != 36 || js.Failures != 0 {
		t.Errorf("tests=%d failures=%d, want 36 and 0", js.Tests, js.Failures)
	}
}

func BenchmarkWriteSixTargets(b *testing.B) {
	src := synthRun(synthOptions{targets: sixTargets()})
	dir := b.TempDir()
	for b.Loop() {
		if _, err := Write(src, dir); err != nil {
			b.Fatal(err)
		}
	}
}

func TestThinnedKeepsExtremes(t *testing.T) {
	series := make(plotter.XYs, 10000)
	for i := range series {
		series[i] = plotter.XY{X: float64(i), Y: float64(i % 100)}
	}
	series[4321].Y = 1e6
	out := thinned(series, 500)
	if len(out) > 500 {
		t.Errorf("thinned to %d points, want at most 500", len(out))
	}
	foundSpike := false
	for i, p := range out {
		if p.Y == 1e6 {
			foundSpike = true
		}
		if i > 0 && out[i-1].X > p.X {
			t.Fatal("thinned points are out of order")
		}
	}
	if !foundSpike {
		t.Error("thinning lost the spike")
	}
	if got := thinned(series[:100], 500); len(got) != 100 {
		t.Errorf("a short series was thinned to %d", len(got))
	}
}

func TestNumberFormats(t *testing.T) {
	for _, c := range []struct {
		v    float64
		want string
	}{{24000, "24,000"}, {-1234567.4, "-1,234,567"}, {12.5, "12.5"}, {3.14159, "3.14"}, {0.01234, "0.012"}, {0, "0"}} {
		if got := num(c.v); got != c.want {
			t.Errorf("num(%v) = %q, want %q", c.v, got, c.want)
		}
	}
	for _, c := range []struct{ in, want string }{
		{"stream-burst", "stream-burst"}, {"burst-8", "burst_8"}, {"a b/c", "a_b_c"}, {"", "_"}} {
		if got := nameValue(c.in); got != c.want {
			t.Errorf("nameValue(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	r := bench.CellResult{Leak: bench.Estimate{Slope: 1, Lo: 0.5, Hi: 1.5, N: 20, NEff: 7.25}}
	if got := samplesText(&r); got != "n=20, n_eff=7.2" {
		t.Errorf("samplesText = %q", got)
	}
}

func TestNaNEstimates(t *testing.T) {
	src := synthRun(synthOptions{targets: testTargets[:1]})
	nan := math.NaN()
	for i := range src.results {
		r := &src.results[i]
		if r.Phase == "after" && r.Profile == "stream-burst" {
			// What bench records when a window had too few samples for an interval.
			r.Leak = bench.Estimate{Slope: nan, Lo: nan, Hi: nan, N: 2, NEff: nan}
			r.BytesPerChain, r.ChainsPerSec, r.PacketsPerSec = nan, nan, nan
			r.Verdict, r.Met = bench.Inconclusive, false
			r.Note = "only 2 samples in the window"
		}
	}
	files, _ := writeRun(t, src)
	doc := parseHTML(t, files.Report)
	header, rows, _ := verdictRows(t, doc)
	row := rows["win7-x64/after/stream-burst"]
	if got := textOf(row[column(header, "Leak rate")]); got != dash {
		t.Errorf("NaN leak rate shown as %q", got)
	}
	if got := textOf(row[column(header, "Met")]); got != "NO" {
		t.Errorf("met = %q", got)
	}
	for _, r := range parseBenchFormat(t, files.Bench) {
		if strings.Contains(r.name, "phase=after/profile=stream-burst") {
			t.Errorf("a cell without an estimate has a benchmark line: %+v", r)
		}
	}
	checkPNG(t, filepath.Join(filepath.Dir(files.Report), "plots", "overview.png"))
}

// Files the run kept for a guest (console log, screenshot) are linked from its section;
// a path outside the run folder is not.
func TestReportLinksKeptFiles(t *testing.T) {
	src := synthRun(synthOptions{targets: testTargets})
	at := src.events["win7-x64"][0].At
	src.events["win7-x64"] = append(src.events["win7-x64"],
		bench.Event{Target: "win7-x64", Phase: "before", At: at, Kind: bench.EventFile, Message: "console log: vm/win7-x64/console.log"},
		bench.Event{Target: "win7-x64", Phase: "before", At: at, Kind: bench.EventFile, Message: "screenshot when hung: vm/win7-x64/hung-1.png"},
		bench.Event{Target: "win7-x64", Phase: "before", At: at, Kind: bench.EventFile, Message: "elsewhere: ../../etc/passwd"})
	_, dir := writeRun(t, src)
	html, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<a href="vm/win7-x64/console.log">console log</a>`, `<a href="vm/win7-x64/hung-1.png">screenshot when hung</a>`} {
		if !strings.Contains(string(html), want) {
			t.Errorf("report.html lacks %s", want)
		}
	}
	if strings.Contains(string(html), `href="../../etc/passwd"`) {
		t.Error("report.html links a file outside the run folder")
	}
}

// An INCOMPLETE cell (its window cut short) is never a failure: junit skips it, bench.txt
// leaves it out, and the summary counts it as incomplete.
func TestIncompleteCellIsSkippedNotFailed(t *testing.T) {
	src := synthRun(synthOptions{targets: testTargets})
	found := false
	for i, r := range src.results {
		if r.Target == "win7-x64" && r.Phase == "before" && r.Profile == "stream-burst" {
			src.results[i].Verdict, src.results[i].Met = bench.Incomplete, false
			src.results[i].Note = "the window ran 3s of its 12s (interrupted, guest hung or sampler ended)"
			found = true
		}
	}
	if !found {
		t.Fatal("no win7-x64/before/stream-burst result to make incomplete")
	}
	files, _ := writeRun(t, src)
	js := readJUnit(t, files.JUnit)
	if js.Failures != 0 {
		t.Errorf("junit has %d failures; an incomplete cell is not one", js.Failures)
	}
	skipped := ""
	for _, s := range js.Suites {
		for _, c := range s.Cases {
			if c.Classname == "win7-x64" && c.Name == "before/stream-burst" && c.Skipped != nil {
				skipped = c.Skipped.Message
			}
		}
	}
	if !strings.Contains(skipped, "INCOMPLETE") || !strings.Contains(skipped, "ran 3s of its 12s") {
		t.Errorf("the incomplete cell is not skipped with its reason: %q", skipped)
	}
	benchTxt, _ := os.ReadFile(files.Bench)
	if strings.Contains(string(benchTxt), "target=win7-x64/phase=before/profile=stream-burst") {
		t.Error("bench.txt has a line for an incomplete window")
	}
	summary, _ := os.ReadFile(files.Summary)
	if !strings.Contains(string(summary), "1 incomplete") {
		t.Errorf("summary does not count the incomplete cell:\n%s", summary)
	}
}

// Targets run side by side and reach the store in the order they happen to start and
// finish; every output lists them in the scenario's order all the same.
func TestOutputsFollowTheScenarioOrder(t *testing.T) {
	targets := sixTargets()
	src := synthRun(synthOptions{targets: targets})
	slices.Reverse(src.targets)
	slices.Reverse(src.results)
	files, _ := writeRun(t, src)
	for _, path := range []string{files.Summary, files.JUnit, files.Bench, files.Report} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		last := -1
		for _, tt := range targets {
			i := strings.Index(string(data), tt.info.Name)
			if i < 0 || i < last {
				t.Errorf("%s: %s appears at %d, after the target before it in the scenario (at %d)", filepath.Base(path), tt.info.Name, i, last)
			}
			last = i
		}
	}
}
