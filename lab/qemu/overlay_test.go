package qemu

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func needQemuImg(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skipf("SKIP: qemu-img not installed (apt-get install qemu-utils): %v", err)
	}
}

func TestOverlayLeavesTheBaseImageAlone(t *testing.T) {
	needQemuImg(t)
	if _, err := exec.LookPath("qemu-io"); err != nil {
		t.Skipf("SKIP: qemu-io (qemu-utils) not installed: %v", err)
	}
	for _, format := range []string{"raw", "qcow2"} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			base := filepath.Join(dir, "base."+format)
			if out, err := exec.Command("qemu-img", "create", "-q", "-f", format, base, "4M").CombinedOutput(); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			ctx := context.Background()
			got, err := imageFormat(ctx, "qemu-img", base)
			if err != nil || got != format {
				t.Fatalf("imageFormat = %q, %v; want %s", got, err, format)
			}
			before, _ := os.ReadFile(base)
			paths := newVMPaths(filepath.Join(dir, "results", "run-1"), "win7-x64")
			if err := os.MkdirAll(paths.Dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := createOverlay(ctx, "qemu-img", base, paths.Overlay); err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(dir, "results", "run-1", "vm", "win7-x64", "disk.qcow2"); paths.Overlay != want {
				t.Errorf("overlay at %s, want %s", paths.Overlay, want)
			}
			out, err := exec.Command("qemu-img", "info", "--output=json", paths.Overlay).Output()
			if err != nil {
				t.Fatal(err)
			}
			var info struct {
				Format          string `json:"format"`
				BackingFilename string `json:"backing-filename"`
				BackingFormat   string `json:"backing-filename-format"`
			}
			json.Unmarshal(out, &info)
			if info.Format != "qcow2" || info.BackingFilename != base || info.BackingFormat != format {
				t.Errorf("overlay info %+v; want qcow2 over %s (%s)", info, base, format)
			}
			// Write through the overlay as a guest would; the base must not change.
			if out, err := exec.Command("qemu-io", "-f", "qcow2", "-c", "write -P 0xab 0 64k", paths.Overlay).CombinedOutput(); err != nil {
				t.Fatalf("qemu-io write: %v: %s", err, out)
			}
			after, _ := os.ReadFile(base)
			if !bytes.Equal(before, after) {
				t.Errorf("writing the overlay changed the base image")
			}
			out, err = exec.Command("qemu-io", "-f", "qcow2", "-c", "read -P 0xab 0 64k", paths.Overlay).CombinedOutput()
			if err != nil || strings.Contains(string(out), "Pattern verification failed") {
				t.Errorf("the overlay does not hold what was written: %v: %s", err, out)
			}
			if err := createOverlay(ctx, "qemu-img", base, paths.Overlay); err == nil || !strings.Contains(err.Error(), "already exists") {
				t.Errorf("a second overlay in the same place: %v; want a refusal", err)
			}
		})
	}
}

func TestOverlayErrorsNameTheImage(t *testing.T) {
	needQemuImg(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.qcow2")
	err := createOverlay(context.Background(), "qemu-img", missing, filepath.Join(dir, "o.qcow2"))
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("error %v should name %s", err, missing)
	}
	err = createOverlay(context.Background(), filepath.Join(dir, "no-qemu-img"), missing, filepath.Join(dir, "o.qcow2"))
	if err == nil || !strings.Contains(err.Error(), "qemu-utils") {
		t.Errorf("error %v should say to install qemu-utils", err)
	}
}

func TestStateDiskIsBlankEveryRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), stateFile)
	if err := createStateDisk(path, 8); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("state of an earlier run"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := createStateDisk(path, 8); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 8<<20 || bytes.Count(b, []byte{0}) != len(b) {
		t.Errorf("state disk: %d bytes, not all zero; want a blank 8 MiB disk", len(b))
	}
}
