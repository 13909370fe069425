package appliance

import (
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// cpioEntry is one entry read back by readCPIO.
type cpioEntry struct {
	mode         uint32
	rdevMajor    uint32
	rdevMinor    uint32
	data         []byte
	offsetOfData int
}

// readCPIO is an independent newc reader (as the kernel's init/initramfs.c parses it): it
// checks the magic, the hex fields, the name's NUL and the 4-byte alignment of header+name
// and of data, and stops at TRAILER!!!.
func readCPIO(t *testing.T, b []byte) (map[string]cpioEntry, []string) {
	t.Helper()
	out := map[string]cpioEntry{}
	var order []string
	off := 0
	for i := 0; ; i++ {
		if i > 10000 || off+110 > len(b) {
			t.Fatalf("cpio: no trailer (entry %d at offset %d of %d)", i, off, len(b))
		}
		h := b[off : off+110]
		if string(h[:6]) != "070701" {
			t.Fatalf("cpio: bad magic %q at offset %d", h[:6], off)
		}
		field := func(n int) uint32 {
			v, err := strconv.ParseUint(string(h[6+8*n:14+8*n]), 16, 32)
			if err != nil {
				t.Fatalf("cpio: field %d at offset %d: %v", n, off, err)
			}
			return uint32(v)
		}
		mode, size, rmaj, rmin, namesize := field(1), int(field(6)), field(9), field(10), int(field(11))
		name := b[off+110 : off+110+namesize]
		if name[namesize-1] != 0 {
			t.Fatalf("cpio: name at offset %d not NUL-terminated", off)
		}
		off = align4(off + 110 + namesize)
		n := string(name[:namesize-1])
		if n == "TRAILER!!!" {
			if align4(off) != off {
				t.Fatal("cpio: misaligned end")
			}
			return out, order
		}
		out[n] = cpioEntry{mode: mode, rdevMajor: rmaj, rdevMinor: rmin, data: b[off : off+size], offsetOfData: off}
		order = append(order, n)
		off = align4(off + size)
	}
}

func align4(n int) int { return (n + 3) &^ 3 }

func TestCPIOWriterReadsBack(t *testing.T) {
	var buf bytes.Buffer
	c := newCPIOWriter(&buf)
	c.Dir("dev", 0o755)
	c.CharDev("/dev/console", 0o600, 5, 1)
	c.File("init", 0o755, []byte("abcde")) // 5 bytes: needs padding
	c.FileFrom("etc/x", 0o644, 3, strings.NewReader("xyz"))
	c.Symlink("lib64", "lib")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	got, order := readCPIO(t, buf.Bytes())
	if fmt.Sprint(order) != "[dev dev/console init etc/x lib64]" {
		t.Fatalf("entries %v", order)
	}
	for name, want := range map[string]struct {
		mode       uint32
		data       string
		maj, minor uint32
	}{
		"dev": {cpioDir | 0o755, "", 0, 0}, "dev/console": {cpioChar | 0o600, "", 5, 1},
		"init": {cpioReg | 0o755, "abcde", 0, 0}, "etc/x": {cpioReg | 0o644, "xyz", 0, 0}, "lib64": {cpioLink | 0o777, "lib", 0, 0},
	} {
		e := got[name]
		if e.mode != want.mode || string(e.data) != want.data || e.rdevMajor != want.maj || e.rdevMinor != want.minor {
			t.Errorf("%s: mode %o data %q rdev %d:%d, want %o %q %d:%d", name, e.mode, e.data, e.rdevMajor, e.rdevMinor, want.mode, want.data, want.maj, want.minor)
		}
		if e.offsetOfData%4 != 0 {
			t.Errorf("%s: data at offset %d is not 4-aligned", name, e.offsetOfData)
		}
	}
	c2 := newCPIOWriter(io.Discard)
	c2.File("a", 0o644, nil)
	c2.File("/a", 0o644, nil)
	if err := c2.Close(); err == nil {
		t.Fatal("an entry written twice was accepted")
	}
	c3 := newCPIOWriter(io.Discard)
	c3.FileFrom("short", 0o644, 10, strings.NewReader("123"))
	if err := c3.Close(); err == nil {
		t.Fatal("a short file was accepted")
	}
}

// fakeKernel makes an unpacked-kernel folder as pickKernel leaves it (modules need not be
// real for the initramfs).
func fakeKernel(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{"vmlinuz-6.1.0-0-amd64": "kernel image", "virtio.ko": "virtio module", "virtio_net.ko": "net module"}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	manifest := "version 6.1.0-0-amd64\nwant " + strings.Join(Modules, ",") + "\nmodule virtio.ko\nmodule virtio_net.ko\n"
	if err := os.WriteFile(filepath.Join(dir, "kernel.txt"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestBuildInitramfsAndCache builds an appliance from this test binary and a fake kernel,
// reads the initramfs back, and checks the cache: hit for the same binary, rebuilt for a
// changed one.
func TestBuildInitramfsAndCache(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exeData, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, "wfplab")
	if err := os.WriteFile(exe, exeData, 0o755); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(dir, "cache")
	var log bytes.Buffer
	o := Options{Target: "vista-sp1-x86", KernelPath: fakeKernel(t), CacheDir: cache, Executable: exe, Seed: 9, HangPoolMB: 60, Log: &log}
	b, err := Build(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"wfplab.target=vista-sp1-x86", "wfplab.seed=9", "wfplab.noise=1", "wfplab.hang_pool_mb=60", "console=ttyS0", "panic=-1"} {
		if !strings.Contains(b.Append, want) {
			t.Errorf("append %q lacks %s", b.Append, want)
		}
	}
	gz, err := os.ReadFile(b.Initrd)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	ents, _ := readCPIO(t, raw)
	if e := ents["init"]; !bytes.Equal(e.data, exeData) || e.mode != cpioReg|0o755 {
		t.Fatalf("/init: %d bytes mode %o, want the %d-byte executable, 0755", len(e.data), e.mode, len(exeData))
	}
	if got := string(ents["lib/modules/wfplab/order"].data); got != "virtio.ko\nvirtio_net.ko\n" {
		t.Fatalf("module order %q", got)
	}
	if string(ents["lib/modules/wfplab/virtio_net.ko"].data) != "net module" || string(ents["etc/wfplab/target"].data) != "vista-sp1-x86\n" {
		t.Fatal("module or target file missing from the initramfs")
	}
	if e := ents["dev/console"]; e.mode != cpioChar|0o600 || e.rdevMajor != 5 || e.rdevMinor != 1 {
		t.Fatalf("/dev/console: %+v", e)
	}
	for _, d := range []string{"dev", "proc", "sys", "tmp"} {
		if ents[d].mode != cpioDir|0o755 {
			t.Errorf("no folder /%s", d)
		}
	}
	// A dynamically linked binary brings its loader and libraries; a static one nothing.
	f, err := elf.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	libs, _ := f.ImportedLibraries()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			interp := make([]byte, p.Filesz)
			p.ReadAt(interp, 0)
			name := strings.TrimPrefix(strings.TrimRight(string(interp), "\x00"), "/")
			if e, ok := ents[name]; !ok || len(e.data) == 0 {
				t.Errorf("the executable's interpreter /%s is not in the initramfs", name)
			}
		}
	}
	f.Close()
	for _, l := range libs {
		found := false
		for name := range ents {
			found = found || filepath.Base(name) == l
		}
		if !found {
			t.Errorf("the executable needs %s, which is not in the initramfs", l)
		}
	}
	t.Logf("executable needs %v", libs)

	log.Reset()
	b2, err := Build(context.Background(), o)
	if err != nil || b2.Initrd != b.Initrd || !strings.Contains(log.String(), "cached") {
		t.Fatalf("second build: %v, %s vs %s, log %q", err, b2.Initrd, b.Initrd, log.String())
	}
	if err := os.WriteFile(exe, append(exeData, 0), 0o755); err != nil {
		t.Fatal(err)
	}
	b3, err := Build(context.Background(), o)
	if err != nil || b3.Initrd == b.Initrd {
		t.Fatalf("a changed binary did not give a new initramfs: %v, %s", err, b3.Initrd)
	}
	inst, err := Install(b, filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(inst.Kernel); string(data) != "kernel image" {
		t.Fatalf("installed kernel %q", data)
	}
	if data, _ := os.ReadFile(inst.Initrd); !bytes.Equal(data, gz) {
		t.Fatal("installed initrd differs from the cached one")
	}
	// The cache keeps the newest keepAppliances builds.
	for i := 0; i < keepAppliances+2; i++ {
		if err := os.WriteFile(exe, append(exeData, 1, byte(i)), 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := Build(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(cache, "appliance")); len(ents) != keepAppliances {
		t.Fatalf("the cache holds %d appliances, want %d", len(ents), keepAppliances)
	}
	if _, err := os.Stat(b.Initrd); err == nil {
		t.Fatal("the oldest build is still in the cache")
	}
	o.Target = "no-such-os"
	if _, err := Build(context.Background(), o); err == nil || !strings.Contains(err.Error(), "no-such-os") {
		t.Fatalf("unknown target: %v", err)
	}

}
