package chromium_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/wfplab/wfplab/internal/chromium"
	"github.com/wfplab/wfplab/internal/synthrun"
)

// probe runs in the rendered report: it counts images that did not decode and matrix cells,
// and writes both where --dump-dom shows them.
const probe = `<script>
window.addEventListener("load", function () {
  var broken = 0, imgs = document.images;
  for (var i = 0; i < imgs.length; i++) { if (!imgs[i].complete || imgs[i].naturalWidth === 0) broken++; }
  var m = document.getElementById("matrix");
  document.body.setAttribute("data-images", imgs.length);
  document.body.setAttribute("data-broken", broken);
  document.body.setAttribute("data-matrix-cells", m ? m.querySelectorAll("td.m").length : -1);
  var r = m ? m.getBoundingClientRect() : null;
  document.body.setAttribute("data-matrix-top", r ? Math.round(r.top) : -1);
});
</script>`

// A synthetic run's report.html rendered in headless Chromium: every image decodes, the
// matrix is there near the top with a cell per target × phase × profile, and a screenshot
// and a PDF are written. The screenshot goes to $WFPLAB_SCREENSHOT_DIR when set.
func TestReportRendersInChromium(t *testing.T) {
	if _, err := chromium.Find(); err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	if err := synthrun.Write(dir, synthrun.Spec{Seed: 1, Samples: 40}); err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(dir, "report.html")
	page, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	probed := filepath.Join(dir, "probed.html")
	if err := os.WriteFile(probed, bytes.Replace(page, []byte("</body>"), []byte(probe+"</body>"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dom, err := chromium.DOM(ctx, probed)
	if err != nil {
		t.Fatal(err)
	}
	body := regexp.MustCompile(`<body[^>]*>`).Find(dom)
	attr := func(name string) string {
		m := regexp.MustCompile(name + `="(-?\d+)"`).FindSubmatch(body)
		if m == nil {
			t.Fatalf("the probe did not run: no %s on %s", name, body)
		}
		return string(m[1])
	}
	// 6 targets: an overview and a pool chart each.
	if n := attr("data-images"); n != "7" {
		t.Errorf("%s images, want 7 (overview + 6 pool charts)", n)
	}
	if n := attr("data-broken"); n != "0" {
		t.Errorf("%s broken images", n)
	}
	if n := attr("data-matrix-cells"); n != "36" {
		t.Errorf("%s matrix cells, want 36 (6 targets × 2 phases × 3 profiles)", n)
	}
	if top := attr("data-matrix-top"); len(top) > 3 {
		t.Errorf("matrix starts %s px down: it must open the report", top)
	}

	shots := t.TempDir()
	if d := os.Getenv("WFPLAB_SCREENSHOT_DIR"); d != "" {
		shots = d
	}
	png := filepath.Join(shots, "report.png")
	if err := chromium.Screenshot(ctx, report, png, 1280, 1000); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(png); !bytes.HasPrefix(b, []byte("\x89PNG")) || len(b) < 20_000 {
		t.Errorf("screenshot %s: %d bytes, not a PNG of a page", png, len(b))
	}
	t.Logf("screenshot: %s", png)
	pdf := filepath.Join(dir, "report.pdf")
	if err := chromium.PDF(ctx, report, pdf); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(pdf); !bytes.HasPrefix(b, []byte("%PDF-")) || len(b) < 20_000 {
		t.Errorf("report.pdf: %d bytes, not a PDF of the report", len(b))
	}
}

func TestMissingPage(t *testing.T) {
	if _, err := chromium.Find(); err != nil {
		t.Skip(err)
	}
	if err := chromium.PDF(context.Background(), filepath.Join(t.TempDir(), "none.html"), filepath.Join(t.TempDir(), "x.pdf")); err == nil {
		t.Error("PDF of a missing page: no error")
	}
}
