package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// benchFile writes a bench.txt with one leak-B/s value per line for one cell.
func benchFile(t *testing.T, dir, name string, leaks ...float64) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("Unit leak-B/s better=lower\n")
	for _, v := range leaks {
		fmt.Fprintf(&b, "BenchmarkKB979223/target=win7-x64/phase=after/profile=stream-burst\t110\t%g\tleak-B/s\n", v)
	}
	return writeFile(t, dir, name, b.String())
}

func TestCompareExitCodes(t *testing.T) {
	dir := t.TempDir()
	clean := benchFile(t, dir, "clean.txt", 10, 12, 11, 13, 9, 12)
	clean2 := benchFile(t, dir, "clean2.txt", 11, 10, 14, 12, 10, 13)
	leaky := benchFile(t, dir, "leaky.txt", 9000, 9100, 8900, 9050, 8950, 9020)

	if code, out, errOut := runCLI(t, "compare", clean, clean2); code != exitOK || !strings.Contains(out, "0 regressions") {
		t.Errorf("same distribution: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := runCLI(t, "compare", clean, leaky); code != exitUnmet || !strings.Contains(out, "REGRESSION") {
		t.Errorf("leak appeared: exit %d, want 1\n%s", code, out)
	}
	// The other way it is an improvement, not a failure.
	if code, out, _ := runCLI(t, "compare", leaky, clean); code != exitOK || !strings.Contains(out, "improvement") {
		t.Errorf("leak fixed: exit %d, want 0\n%s", code, out)
	}
	// Raising the minimum effect above the change makes it pass.
	if code, out, _ := runCLI(t, "compare", "--min-abs", "leak-B/s=20000", clean, leaky); code != exitOK {
		t.Errorf("--min-abs above the change: exit %d, want 0\n%s", code, out)
	}
	code, out, _ := runCLI(t, "compare", "--format", "json", clean, leaky)
	var js struct{ Regressions int }
	if err := json.Unmarshal([]byte(out), &js); code != exitUnmet || err != nil || js.Regressions != 1 {
		t.Errorf("json: exit %d, %v, %d regressions\n%s", code, err, js.Regressions, out)
	}
	if code, out, _ := runCLI(t, "compare", "--format", "csv", clean, leaky); code != exitUnmet || !strings.HasPrefix(out, "name,unit,") {
		t.Errorf("csv: exit %d\n%s", code, out)
	}
	for _, args := range [][]string{
		{"compare", clean, dir + "/missing"},
		{"compare", "--format", "xml", clean, leaky},
		{"compare", "--min-abs", "leak-B/s", clean, leaky},
		{"compare", "--alpha", "2", clean, leaky},
		{"compare", clean},
	} {
		if code, out, errOut := runCLI(t, args...); code != exitFailure || errOut == "" {
			t.Errorf("%v: exit %d, want 2 with a message\n%s%s", args[1:], code, out, errOut)
		}
	}
}
