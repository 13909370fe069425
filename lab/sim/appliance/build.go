package appliance

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/wfplab/wfplab/lab/contract"
)

// Options say what appliance to build. Zero fields take the defaults noted.
type Options struct {
	// Target is the catalog OS the simulated guest models, e.g. win7-x64.
	Target string
	// KernelPath is a linux-image .deb or its unpacked tree; empty fetches the current
	// Debian kernel package with apt-get (FetchKernel).
	KernelPath string
	// CacheDir holds the kernel and the built initramfs images. Default: os.UserCacheDir()/wfplab.
	CacheDir string
	// Executable is the wfplab binary that becomes /init. Default: os.Executable().
	Executable string
	// Seed, Noise and HangPoolMB go onto the kernel command line (Params). Noise defaults to on
	// unless NoNoise is set.
	Seed       int64
	NoNoise    bool
	HangPoolMB uint64
	// Log receives one line per step (fetching, unpacking, building, cache hits). Default: discarded.
	Log io.Writer
}

// Boot is a built appliance: what QEMU's -kernel, -initrd and -append take.
type Boot struct {
	Kernel        string // path of vmlinuz (in the cache)
	Initrd        string // path of the gzip'd cpio initramfs (in the cache)
	Append        string // the kernel command line
	KernelVersion string
}

// Build returns the appliance for o.Target, building (and caching) what is missing: the
// kernel, then an initramfs keyed by the executable's SHA-256, the kernel version and the
// target, so a rebuilt wfplab gives a new one.
func Build(ctx context.Context, o Options) (Boot, error) {
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	osEntry, err := contract.LookupOS(o.Target)
	if err != nil {
		return Boot{}, fmt.Errorf("appliance: %w", err)
	}
	if o.CacheDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return Boot{}, fmt.Errorf("appliance: no cache folder (%w): set --cache-dir", err)
		}
		o.CacheDir = filepath.Join(base, "wfplab")
	}
	if o.Executable == "" {
		if o.Executable, err = os.Executable(); err != nil {
			return Boot{}, fmt.Errorf("appliance: finding the wfplab binary: %w", err)
		}
	}
	var k Kernel
	if o.KernelPath != "" {
		k, err = KernelFrom(ctx, o.KernelPath, o.CacheDir, log)
	} else {
		k, err = FetchKernel(ctx, o.CacheDir, log)
	}
	if err != nil {
		return Boot{}, fmt.Errorf("appliance %s: %w", o.Target, err)
	}
	sum, err := fileSHA256(o.Executable)
	if err != nil {
		return Boot{}, fmt.Errorf("appliance %s: %w", o.Target, err)
	}
	key := sha256.Sum256([]byte(sum + "\x00" + k.Version + "\x00" + osEntry.Name + "\x00" + initrdFormat))
	dir := filepath.Join(o.CacheDir, "appliance", hex.EncodeToString(key[:8]))
	initrd := filepath.Join(dir, "initrd.gz")
	b := Boot{Kernel: k.Vmlinuz, Initrd: initrd, KernelVersion: k.Version,
		Append: Params{Target: osEntry.Name, Seed: o.Seed, Noise: !o.NoNoise, HangPoolMB: o.HangPoolMB}.Append()}
	if _, err := os.Stat(initrd); err == nil {
		now := time.Now()
		_ = os.Chtimes(initrd, now, now) // recently used: pruned last
		fmt.Fprintf(log, "appliance %s: initramfs cached in %s\n", osEntry.Name, initrd)
		return b, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Boot{}, fmt.Errorf("appliance %s: %w", o.Target, err)
	}
	start := time.Now()
	fmt.Fprintf(log, "appliance %s: building the initramfs (/init = %s, kernel %s)\n", osEntry.Name, o.Executable, k.Version)
	if err := writeInitramfs(initrd, o.Executable, osEntry.Name, k); err != nil {
		return Boot{}, fmt.Errorf("appliance %s: %w", o.Target, err)
	}
	if st, err := os.Stat(initrd); err == nil {
		fmt.Fprintf(log, "appliance %s: %s (%.1f MB) in %.1fs\n", osEntry.Name, initrd, float64(st.Size())/1e6, time.Since(start).Seconds())
	}
	pruneAppliances(filepath.Dir(dir), keepAppliances, log)
	return b, nil
}

// keepAppliances is how many built initramfs images the cache keeps (about 22 MB each): every
// rebuilt wfplab makes new ones.
const keepAppliances = 8

// pruneAppliances removes all but the keep most recently built or used appliance folders.
func pruneAppliances(root string, keep int, log io.Writer) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return
	}
	type built struct {
		path string
		at   time.Time
	}
	var all []built
	for _, e := range ents {
		if st, err := os.Stat(filepath.Join(root, e.Name(), "initrd.gz")); err == nil && e.IsDir() {
			all = append(all, built{filepath.Join(root, e.Name()), st.ModTime()})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].at.After(all[j].at) })
	for _, a := range all[min(keep, len(all)):] {
		if err := os.RemoveAll(a.path); err == nil {
			fmt.Fprintf(log, "appliance: removed the old %s from the cache\n", a.path)
		}
	}
}

// initrdFormat changes whenever the initramfs layout changes, so cached ones are rebuilt.
const initrdFormat = "1"

// Paths inside the initramfs.
const (
	modulesDir  = "/lib/modules/wfplab" // the .ko files and their load order
	orderFile   = modulesDir + "/order"
	defaultFile = "/etc/wfplab/target" // the target built in, when the command line names none
)

func writeInitramfs(dst, exe, target string, k Kernel) error {
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".initrd-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	bw := bufio.NewWriterSize(tmp, 1<<20)
	// gzip -1: an initramfs is decompressed once per boot, and level 9 costs seconds to build
	// for a few MB less.
	zw, _ := gzip.NewWriterLevel(bw, gzip.BestSpeed)
	c := newCPIOWriter(zw)
	dirs := map[string]bool{}
	mkdirs := func(p string) {
		var chain []string
		for d := path.Dir(p); d != "/" && d != "." && !dirs[d]; d = path.Dir(d) {
			chain = append(chain, d)
		}
		for i := len(chain) - 1; i >= 0; i-- {
			dirs[chain[i]] = true
			c.Dir(chain[i], 0o755)
		}
	}
	addFile := func(name, src string, perm uint32) error {
		f, err := os.Open(src) // follows symlinks: the initramfs gets the file itself
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		mkdirs(name)
		c.FileFrom(name, perm, st.Size(), f)
		return nil
	}
	for _, d := range []string{"/dev", "/proc", "/sys", "/tmp", "/etc", "/root"} {
		mkdirs(d + "/x")
	}
	// The kernel opens /dev/console for /init's stdin, stdout and stderr before devtmpfs is mounted.
	c.CharDev("/dev/console", 0o600, 5, 1)
	if err := addFile("/init", exe, 0o755); err != nil {
		return fmt.Errorf("initramfs: /init: %w", err)
	}
	libs, err := sharedDeps(exe)
	if err != nil {
		return err
	}
	sort.Strings(libs)
	for _, l := range libs {
		if err := addFile(l, l, 0o755); err != nil {
			return fmt.Errorf("initramfs: library %s: %w", l, err)
		}
	}
	var order []string
	for _, m := range k.Modules {
		name := modulesDir + "/" + filepath.Base(m)
		if err := addFile(name, m, 0o644); err != nil {
			return fmt.Errorf("initramfs: module %s: %w", m, err)
		}
		order = append(order, filepath.Base(m))
	}
	c.File(orderFile, 0o644, []byte(strings.Join(order, "\n")+"\n"))
	mkdirs(defaultFile)
	c.File(defaultFile, 0o644, []byte(target+"\n"))
	if err := c.Close(); err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	return os.Rename(tmp.Name(), dst)
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hashing %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Install copies an appliance's kernel and initramfs to dir/vmlinuz and dir/initrd.gz.
func Install(b Boot, dir string) (Boot, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Boot{}, fmt.Errorf("appliance: %w", err)
	}
	out := b
	out.Kernel, out.Initrd = filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd.gz")
	for _, p := range [][2]string{{b.Kernel, out.Kernel}, {b.Initrd, out.Initrd}} {
		if err := copyFile(p[0], p[1]); err != nil {
			return Boot{}, fmt.Errorf("appliance: %w", err)
		}
	}
	return out, nil
}
