package main

import "testing"

// A small store through the whole path: the store written, wfplab built, report run and
// measured; limits no report can meet make it exit 1.
func TestReportbenchSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds wfplab and writes a store")
	}
	dir := t.TempDir() + "/run"
	if code, err := run(720, dir, 1, 600, 4000, 0); code != 0 || err != nil {
		t.Fatalf("generous limits: exit %d, %v", code, err)
	}
	// The store is reused, and a 1 ms limit is over.
	if code, err := run(720, dir, 1, 0.001, 4000, 0); code != 1 || err != nil {
		t.Fatalf("1 ms limit: exit %d, %v; want 1", code, err)
	}
	if code, _ := run(0, dir, 1, 5, 500, 0); code != 2 {
		t.Errorf("--samples 0: exit %d, want 2", code)
	}
}
