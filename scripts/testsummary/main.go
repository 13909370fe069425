// Command testsummary reads `go test -json` on stdin and prints what a CI log needs: one
// line per package, the output of every failed test (its own lines, not the interleaved
// output of parallel tests), why each skipped test skipped, and the pass/fail/skip counts.
// It exits 1 when a test or a package failed.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// event is one line of test2json's output (cmd/test2json documents the fields).
type event struct {
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

// maxLines bounds what is printed per failed test or package: the end holds the error.
const maxLines = 120

func main() {
	os.Exit(summarize(os.Stdin, os.Stdout))
}

func summarize(in io.Reader, out io.Writer) int {
	type key struct{ pkg, test string }
	output := map[key][]string{}
	var failed, skipped []key
	var passN, failN, skipN int
	var pkgLines []string
	failedPkgs := map[string]bool{}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			fmt.Fprintln(out, sc.Text()) // build errors and the like arrive as plain text
			continue
		}
		k := key{e.Package, e.Test}
		switch e.Action {
		case "output":
			output[k] = append(output[k], strings.TrimRight(e.Output, "\n"))
		case "pass", "fail", "skip":
			if e.Test == "" {
				line := fmt.Sprintf("%-4s %s %.1fs", strings.ToUpper(e.Action), e.Package, e.Elapsed)
				if e.Action == "skip" { // test2json's word for a package without tests
					line = fmt.Sprintf("--   %s (no tests)", e.Package)
				}
				pkgLines = append(pkgLines, line)
				if e.Action == "fail" {
					failedPkgs[e.Package] = true
				}
				continue
			}
			switch e.Action {
			case "pass":
				passN++
				delete(output, k)
			case "fail":
				failN++
				failed = append(failed, k)
			case "skip":
				skipN++
				skipped = append(skipped, k)
			}
		}
	}
	for _, l := range pkgLines {
		fmt.Fprintln(out, l)
	}
	for _, k := range failed {
		fmt.Fprintf(out, "\n-- FAILED %s %s:\n", k.pkg, k.test)
		printTail(out, output[k])
	}
	// A package that failed with no failed test (a panic, a timeout, a build error) shows
	// its own output.
	pkgs := make([]string, 0, len(failedPkgs))
	for pkg := range failedPkgs {
		pkgs = append(pkgs, pkg)
	}
	sort.Strings(pkgs)
	for _, pkg := range pkgs {
		hasTest := false
		for _, k := range failed {
			hasTest = hasTest || k.pkg == pkg
		}
		if !hasTest {
			fmt.Fprintf(out, "\n-- FAILED package %s:\n", pkg)
			printTail(out, output[key{pkg, ""}])
		}
	}
	if len(skipped) > 0 {
		fmt.Fprintln(out, "\n-- skipped, and why:")
		for _, k := range skipped {
			fmt.Fprintf(out, "   %s %s: %s\n", k.pkg, k.test, skipReason(output[k]))
		}
	}
	fmt.Fprintf(out, "go test: %d passed, %d failed, %d skipped\n", passN, failN, skipN)
	if failN > 0 || len(failedPkgs) > 0 {
		return 1
	}
	return 0
}

func printTail(out io.Writer, lines []string) {
	if len(lines) > maxLines {
		fmt.Fprintf(out, "   (%d earlier lines left out)\n", len(lines)-maxLines)
		lines = lines[len(lines)-maxLines:]
	}
	for _, l := range lines {
		fmt.Fprintln(out, l)
	}
}

// skipReason is the test's t.Skip message: its last output line other than the
// "=== RUN" and "--- SKIP" markers.
func skipReason(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l != "" && !strings.HasPrefix(l, "=== ") && !strings.HasPrefix(l, "--- SKIP") {
			return l
		}
	}
	return "(no reason given)"
}
