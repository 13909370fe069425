package main

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/wfplab/wfplab/internal/synthrun"
)

// sameReport checks that wfplab report gives the same verdicts, figures, charts and files
// with the samples read once and kept (the command) as with every reader reading them from
// the store (how report worked before): on a copy of runDir each way.
func sameReport(t *testing.T, runDir string) {
	t.Helper()
	outputs := map[bool]map[string][]byte{}
	stdouts := map[bool]string{}
	for _, keep := range []bool{false, true} {
		dir := filepath.Join(t.TempDir(), "run")
		if err := os.CopyFS(dir, os.DirFS(runDir)); err != nil {
			t.Fatal(err)
		}
		var out, errOut bytes.Buffer
		err := rebuildReport(context.Background(), dir, &out, &errOut, false, keep)
		if err != nil && exitCode(err) != exitUnmet {
			t.Fatalf("report (keep %v): %v\n%s", keep, err, errOut.String())
		}
		stdouts[keep] = strings.ReplaceAll(out.String(), dir, "RUN")
		files := map[string][]byte{}
		// The report names the minute it was made.
		stamp := regexp.MustCompile(`Report generated [0-9-]+ [0-9:]+ UTC`)
		err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || filepath.Base(p) == "wfplab.db" || filepath.Ext(p) == ".db-shm" || filepath.Ext(p) == ".db-wal" {
				return err
			}
			data, err := os.ReadFile(p)
			rel, _ := filepath.Rel(dir, p)
			files[rel] = stamp.ReplaceAll(data, []byte("Report generated"))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		outputs[keep] = files
	}
	if stdouts[false] != stdouts[true] {
		t.Errorf("report output differs:\nread each time:\n%s\nkept:\n%s", stdouts[false], stdouts[true])
	}
	if len(outputs[true]) < 6 {
		t.Errorf("report wrote only %d files", len(outputs[true]))
	}
	for name, want := range outputs[false] {
		if got, ok := outputs[true][name]; !ok {
			t.Errorf("%s: written reading the store each time, not with the samples kept", name)
		} else if !bytes.Equal(got, want) {
			t.Errorf("%s differs with the samples kept (%d bytes, %d reading the store each time)", name, len(got), len(want))
		}
	}
}

func exitCode(err error) int {
	if ee, ok := err.(*exitError); ok {
		return ee.code
	}
	return exitFailure
}

// A synthetic run of 36 windows of 300 samples: the report is the same, file for file,
// with its samples kept as read from the store each time.
func TestReportSameWithSamplesKept(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	if err := synthrun.Write(dir, synthrun.Spec{Seed: 3, Samples: 300, Outputs: synthrun.StoreOnly}); err != nil {
		t.Fatal(err)
	}
	sameReport(t, dir)
}
