package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// layoutRow matches a row of the README's Layout table: | `folder` | job |.
var layoutRow = regexp.MustCompile("^\\| `([^`]+)` \\|")

// The README's Layout table is how a reader finds where a job lives: a package added
// without a row, or a row left behind by a removed folder, misleads the next reader.
func TestReadmeLayoutListsEveryPackage(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	rows := readmeLayoutRows(t, filepath.Join(root, "README.md"))

	cmd := exec.Command("go", "list", "-f", "{{.Dir}}", "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list ./... in %s: %v", root, err)
	}
	for _, dir := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(root, dir)
		if err != nil {
			t.Fatal(err)
		}
		if rel == "." {
			continue
		}
		if !rows[filepath.ToSlash(rel)] {
			t.Errorf("README.md's Layout table has no row for package %s: add one saying its one job", filepath.ToSlash(rel))
		}
	}

	top, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range top {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") && !rows[e.Name()] && !hasRowUnder(rows, e.Name()) {
			t.Errorf("README.md's Layout table says nothing of the top-level folder %s", e.Name())
		}
	}

	for folder := range rows {
		if fi, err := os.Stat(filepath.Join(root, folder)); err != nil || !fi.IsDir() {
			t.Errorf("README.md's Layout table has a row for %s, which is not a folder of the repository", folder)
		}
	}
}

func readmeLayoutRows(t *testing.T, readme string) map[string]bool {
	t.Helper()
	f, err := os.Open(readme)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows := map[string]bool{}
	inLayout := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			inLayout = line == "## Layout"
			continue
		}
		if m := layoutRow.FindStringSubmatch(line); inLayout && m != nil {
			rows[m[1]] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 {
		t.Fatalf("%s: no \"## Layout\" section with a table of | `folder` | job | rows", readme)
	}
	return rows
}

func hasRowUnder(rows map[string]bool, top string) bool {
	for folder := range rows {
		if strings.HasPrefix(folder, top+"/") {
			return true
		}
	}
	return false
}
