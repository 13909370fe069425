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
