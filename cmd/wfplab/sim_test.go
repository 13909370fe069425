package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wfplab/wfplab/lab/sim/appliance"
)

// TestSimApplianceWritesKernelAndInitrd builds an appliance from an unpacked kernel folder
// (the cache's layout: kernel.txt, vmlinuz-*, *.ko) and checks what the command writes and prints.
func TestSimApplianceWritesKernelAndInitrd(t *testing.T) {
	dir := t.TempDir()
	kdir := filepath.Join(dir, "kernel")
	for name, text := range map[string]string{"vmlinuz-6.1.0-0-amd64": "image", "virtio.ko": "m",
		"kernel.txt": "version 6.1.0-0-amd64\nwant " + strings.Join(appliance.Modules, ",") + "\nmodule virtio.ko\n"} {
		writeFile(t, mkdir(t, kdir), name, text)
	}
	out := filepath.Join(dir, "out")
	code, stdout, stderr := runCLI(t, "sim", "appliance", "--target", "win7-x86", "--kernel", kdir,
		"--cache-dir", filepath.Join(dir, "cache"), "--out", out, "--hang-pool-mb", "40")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if data, err := os.ReadFile(filepath.Join(out, "vmlinuz")); err != nil || string(data) != "image" {
		t.Fatalf("vmlinuz: %q, %v", data, err)
	}
	if st, err := os.Stat(filepath.Join(out, "initrd.gz")); err != nil || st.Size() < 1000 {
		t.Fatalf("initrd.gz: %v", err)
	}
	for _, want := range []string{"wfplab.target=win7-x86", "wfplab.hang_pool_mb=40", "qemu-system-x86_64 -accel tcg", "-initrd " + filepath.Join(out, "initrd.gz")} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "building the initramfs") {
		t.Errorf("no progress on stderr: %q", stderr)
	}
	code, _, stderr = runCLI(t, "sim", "appliance", "--target", "win7-x86", "--kernel", filepath.Join(dir, "missing"), "--out", out)
	if code != exitFailure || !strings.Contains(stderr, "missing") {
		t.Fatalf("a missing kernel: exit %d, %q", code, stderr)
	}
}

func mkdir(t *testing.T, p string) string {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// sim hotfixes writes the simulated packages a static lab of `sim serve` guests installs.
func TestSimHotfixesWritesThePackages(t *testing.T) {
	out := filepath.Join(t.TempDir(), "hotfixes")
	code, stdout, stderr := runCLI(t, "sim", "hotfixes", "--out", out)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, name := range []string{"Windows6.0-KB979223-x86.msu", "Windows6.0-KB979223-x64.msu", "Windows6.1-KB979223-x86.msu", "Windows6.1-KB979223-x64.msu"} {
		data, err := os.ReadFile(filepath.Join(out, name))
		if err != nil || !strings.HasPrefix(string(data), "MSCF") {
			t.Errorf("%s: %v", name, err)
		}
		if !strings.Contains(stdout, filepath.Join(out, name)) {
			t.Errorf("the output does not list %s:\n%s", name, stdout)
		}
	}
	if code, _, stderr := runCLI(t, "sim", "hotfixes"); code != exitFailure || !strings.Contains(stderr, "out") {
		t.Errorf("without --out: exit %d, %q", code, stderr)
	}
}
