// Package chromium runs a headless Chromium once per call: to print a report to PDF, take
// a screenshot of it, or read the DOM it rendered. Each call has its own profile folder
// and deadline, and a call that overruns is killed with every process it started.
package chromium

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// names are the commands a Chromium or Chrome installs as, in the order tried.
var names = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// Timeout bounds one call when the caller's context has no earlier deadline.
const Timeout = 3 * time.Minute

// Find returns the browser to run: $WFPLAB_CHROMIUM if set, else the first on PATH.
func Find() (string, error) {
	if p := os.Getenv("WFPLAB_CHROMIUM"); p != "" {
		bin, err := exec.LookPath(p)
		if err != nil {
			return "", fmt.Errorf("WFPLAB_CHROMIUM=%s: %w: point it at a Chromium or Chrome, or unset it and run internal/chromium/install-deps.sh", p, err)
		}
		return bin, nil
	}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no Chromium or Chrome on PATH: run internal/chromium/install-deps.sh (Debian's chromium), or set WFPLAB_CHROMIUM to the browser")
}

// PDF prints the page at htmlPath to pdfPath (A4, backgrounds and colours kept).
func PDF(ctx context.Context, htmlPath, pdfPath string) error {
	abs, err := filepath.Abs(pdfPath)
	if err != nil {
		return err
	}
	_, err = run(ctx, htmlPath, "--print-to-pdf="+abs, "--no-pdf-header-footer")
	if err == nil {
		err = nonEmpty(abs)
	}
	return err
}

// Screenshot renders the page at htmlPath in a width × height window to pngPath.
func Screenshot(ctx context.Context, htmlPath, pngPath string, width, height int) error {
	abs, err := filepath.Abs(pngPath)
	if err != nil {
		return err
	}
	_, err = run(ctx, htmlPath, "--screenshot="+abs, fmt.Sprintf("--window-size=%d,%d", width, height), "--hide-scrollbars")
	if err == nil {
		err = nonEmpty(abs)
	}
	return err
}

// DOM loads the page at htmlPath, lets its scripts run, and returns the DOM as serialised
// HTML.
func DOM(ctx context.Context, htmlPath string) ([]byte, error) {
	return run(ctx, htmlPath, "--dump-dom")
}

func run(ctx context.Context, htmlPath string, args ...string) ([]byte, error) {
	bin, err := Find()
	if err != nil {
		return nil, err
	}
	page, err := filepath.Abs(htmlPath)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(page); err != nil {
		return nil, fmt.Errorf("chromium: %w", err)
	}
	profile, err := os.MkdirTemp("", "wfplab-chromium-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(profile)
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, Timeout)
		defer cancel()
	}
	all := []string{"--headless", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
		"--disable-extensions", "--disable-background-networking", "--disable-dev-shm-usage",
		"--user-data-dir=" + profile,
		// Let the page's own work finish (images decode, scripts run) before the output.
		"--run-all-compositor-stages-before-draw", "--virtual-time-budget=5000"}
	if os.Geteuid() == 0 {
		// Chromium refuses to run as root with its sandbox.
		all = append(all, "--no-sandbox")
	}
	all = append(all, args...)
	all = append(all, "file://"+page)
	cmd := exec.CommandContext(ctx, bin, all...)
	// Chromium forks helpers: on overrun, kill its whole process group, not just the parent.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err = cmd.Run()
	if cmd.Process != nil {
		// Helpers that outlive a clean exit go too.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("chromium on %s: no result within the deadline (%w)", htmlPath, ctx.Err())
	}
	if err != nil {
		return nil, fmt.Errorf("chromium on %s: %w: %s", htmlPath, err, tail(stderr.Bytes(), 2000))
	}
	return out.Bytes(), nil
}

func nonEmpty(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("chromium wrote no %s: %w", path, err)
	}
	if fi.Size() == 0 {
		return fmt.Errorf("chromium wrote an empty %s", path)
	}
	return nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
