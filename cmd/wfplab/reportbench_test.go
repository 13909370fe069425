package main

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/wfplab/wfplab/bench"
	"github.com/wfplab/wfplab/internal/synthrun"
)

// BenchmarkReport runs `wfplab report` in process on a synthetic run of 100,000 pool
// samples (36 windows), or on the run folder WFPLAB_REPORT_STORE names (e.g. one
// `go run ./cmd/reportbench --samples 1000000 --store DIR` wrote), for -cpuprofile and
// -memprofile. cmd/reportbench measures the real command's wall time and memory.
func BenchmarkReport(b *testing.B) {
	dir := os.Getenv("WFPLAB_REPORT_STORE")
	if dir == "" {
		dir = filepath.Join(b.TempDir(), "run")
		if err := synthrun.Write(dir, synthrun.Spec{Seed: 1, Samples: 100_000 / 36, Outputs: synthrun.StoreOnly}); err != nil {
			b.Fatal(err)
		}
	} else if _, err := os.Stat(filepath.Join(dir, bench.StoreFile)); err != nil {
		b.Fatalf("WFPLAB_REPORT_STORE=%s: %v", dir, err)
	}
	for b.Loop() {
		if code := run([]string{"report", dir}, io.Discard, io.Discard); code != exitOK && code != exitUnmet {
			b.Fatalf("wfplab report %s: exit %d", dir, code)
		}
	}
}
