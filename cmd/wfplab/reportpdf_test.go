package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wfplab/wfplab/internal/chromium"
	"github.com/wfplab/wfplab/internal/synthrun"
)

func TestReportPDF(t *testing.T) {
	dir := t.TempDir()
	if err := synthrun.Write(dir, synthrun.Spec{Seed: 2, Samples: 20, Outputs: synthrun.StoreOnly}); err != nil {
		t.Fatal(err)
	}
	// Without a browser, --pdf fails and says how to get one.
	t.Setenv("WFPLAB_CHROMIUM", filepath.Join(dir, "no-such-browser"))
	if code, _, errOut := runCLI(t, "report", "--pdf", dir); code != exitFailure || !strings.Contains(errOut, "install-deps.sh") {
		t.Errorf("--pdf without a browser: exit %d, %q", code, errOut)
	}
	os.Unsetenv("WFPLAB_CHROMIUM")
	if _, err := chromium.Find(); err != nil {
		t.Skip(err)
	}
	code, out, errOut := runCLI(t, "report", "--pdf", dir)
	pdf := filepath.Join(dir, "report.pdf")
	if b, _ := os.ReadFile(pdf); code == exitFailure || !bytes.HasPrefix(b, []byte("%PDF-")) || !strings.Contains(out, "pdf: "+pdf) {
		t.Errorf("report --pdf: exit %d, %d bytes of PDF\n%s%s", code, len(b), out, errOut)
	}
}

// wfplab run --pdf prints the report to report.pdf at the end of the run; without a browser
// it stops before the run, saying how to get one.
func TestRunPDF(t *testing.T) {
	dir := t.TempDir()
	sc := writeFile(t, dir, "small.yaml", `name: small
provider: {kind: sim, reboot_down: 500ms}
targets: [win7-x86]
phases: [before]
timing: {warmup: 1s, window: 3s, settle: 500ms, sample_interval: 100ms}
profiles: [single-nbl]
`)
	out := filepath.Join(dir, "r")
	t.Setenv("WFPLAB_CHROMIUM", filepath.Join(dir, "no-such-browser"))
	code, _, errOut := runCLI(t, "run", "--pdf", "--quiet", "--scenario", sc, "--out", out, "--seed", "1")
	if code != exitFailure || !strings.Contains(errOut, "install-deps.sh") {
		t.Errorf("--pdf without a browser: exit %d, %q", code, errOut)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("--pdf without a browser made a run folder")
	}
	os.Unsetenv("WFPLAB_CHROMIUM")
	if _, err := chromium.Find(); err != nil {
		t.Skip("SKIP: " + err.Error())
	}
	code, stdout, errOut := runCLI(t, "run", "--pdf", "--quiet", "--scenario", sc, "--out", out, "--seed", "1")
	if code == exitFailure {
		t.Fatalf("run --pdf: exit %d\n%s\n%s", code, stdout, errOut)
	}
	runDir := onlyRun(t, out)
	pdf := filepath.Join(runDir, "report.pdf")
	if b, _ := os.ReadFile(pdf); !bytes.HasPrefix(b, []byte("%PDF-")) || !strings.Contains(stdout, "pdf: "+pdf) {
		t.Errorf("run --pdf: %d bytes of PDF at %s\n%s%s", len(b), pdf, stdout, errOut)
	}
}
