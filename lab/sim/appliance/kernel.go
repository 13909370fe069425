package appliance

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Modules are the kernel modules the appliance loads, by name. In Debian's kernel virtio and
// its NIC and block drivers are modules (=m), and so are the ACPI power button and evdev that
// let QMP system_powerdown reach /init; their dependencies come from each .ko's .modinfo
// "depends=", so the list need not be in order.
var Modules = []string{"virtio_net", "virtio_blk", "virtio_pci", "button", "evdev"}

// Kernel is an unpacked Debian kernel: the image and the modules the appliance needs, in
// load order.
type Kernel struct {
	Version string   // e.g. 6.1.0-57-amd64
	Vmlinuz string   // path of the kernel image
	Modules []string // paths of the .ko files, dependencies first
}

// metaPackage is the Debian package that depends on the current kernel package.
const metaPackage = "linux-image-amd64"

var kernelPackageRe = regexp.MustCompile(`(?m)^\s*Depends:\s*(linux-image-[0-9][^\s]*-amd64)\s*$`)

// currentKernelPackage asks apt which linux-image-<version>-amd64 linux-image-amd64 depends on,
// refreshing apt's lists once when it knows no candidate.
func currentKernelPackage(ctx context.Context, log io.Writer) (string, error) {
	for attempt := 0; attempt < 2; attempt++ {
		out, err := exec.CommandContext(ctx, "apt-cache", "depends", metaPackage).CombinedOutput()
		if m := kernelPackageRe.FindSubmatch(out); err == nil && m != nil {
			return string(m[1]), nil
		}
		if attempt == 1 {
			return "", fmt.Errorf("kernel: `apt-cache depends %s` names no linux-image-*-amd64 package (%v): %s\n"+
				"give a kernel with --kernel (a linux-image .deb or its unpacked tree)", metaPackage, err, bytes.TrimSpace(out))
		}
		fmt.Fprintf(log, "kernel: apt knows no candidate for %s; running apt-get update\n", metaPackage)
		if out, err := exec.CommandContext(ctx, "apt-get", "update").CombinedOutput(); err != nil {
			return "", fmt.Errorf("kernel: apt-get update: %w: %s", err, lastLines(out, 5))
		}
	}
	panic("unreachable")
}

// FetchKernel returns the current Debian kernel package's image and modules, downloading it
// with apt-get into cacheDir/kernel/ and unpacking it with dpkg-deb when not cached yet. Only
// the image and the needed modules are kept.
func FetchKernel(ctx context.Context, cacheDir string, log io.Writer) (Kernel, error) {
	pkg, err := currentKernelPackage(ctx, log)
	if err != nil {
		return Kernel{}, err
	}
	dir := filepath.Join(cacheDir, "kernel", pkg)
	if k, err := loadKernelDir(dir); err == nil {
		fmt.Fprintf(log, "kernel: %s cached in %s\n", pkg, dir)
		return k, nil
	}
	dl := filepath.Join(cacheDir, "kernel", "download")
	if err := os.RemoveAll(dl); err != nil {
		return Kernel{}, fmt.Errorf("kernel: clearing %s: %w", dl, err)
	}
	if err := os.MkdirAll(dl, 0o755); err != nil {
		return Kernel{}, fmt.Errorf("kernel: %w", err)
	}
	defer os.RemoveAll(dl)
	fmt.Fprintf(log, "kernel: apt-get download %s into %s\n", pkg, dl)
	cmd := exec.CommandContext(ctx, "apt-get", "download", pkg)
	cmd.Dir = dl
	if out, err := cmd.CombinedOutput(); err != nil {
		return Kernel{}, fmt.Errorf("kernel: apt-get download %s: %w: %s", pkg, err, lastLines(out, 5))
	}
	debs, _ := filepath.Glob(filepath.Join(dl, pkg+"_*.deb"))
	if len(debs) != 1 {
		return Kernel{}, fmt.Errorf("kernel: apt-get download %s left %d .deb files in %s, want 1", pkg, len(debs), dl)
	}
	return unpackDeb(ctx, debs[0], dir, log)
}

// KernelFrom takes the kernel from path: a linux-image .deb (unpacked into cacheDir/kernel/)
// or a folder holding its unpacked tree (boot/vmlinuz-* and lib/modules/<version>/).
func KernelFrom(ctx context.Context, path, cacheDir string, log io.Writer) (Kernel, error) {
	st, err := os.Stat(path)
	if err != nil {
		return Kernel{}, fmt.Errorf("kernel: %w: give a linux-image .deb or its unpacked tree, or no kernel path to fetch Debian's with apt-get", err)
	}
	if st.IsDir() {
		if k, err := loadKernelDir(path); err == nil {
			return k, nil
		}
		return pickKernel(path, path)
	}
	if !strings.HasSuffix(path, ".deb") {
		return Kernel{}, fmt.Errorf("kernel: %s is neither a .deb nor a folder: a bare vmlinuz is not enough, since virtio is modular in Debian's kernel", path)
	}
	dir := filepath.Join(cacheDir, "kernel", strings.TrimSuffix(filepath.Base(path), ".deb"))
	if k, err := loadKernelDir(dir); err == nil {
		fmt.Fprintf(log, "kernel: %s already unpacked in %s\n", path, dir)
		return k, nil
	}
	return unpackDeb(ctx, path, dir, log)
}

// unpackDeb unpacks a kernel .deb into a scratch folder and keeps the image and modules in dir.
func unpackDeb(ctx context.Context, deb, dir string, log io.Writer) (Kernel, error) {
	tree, err := os.MkdirTemp(filepath.Dir(dir), "unpack-")
	if err != nil {
		return Kernel{}, fmt.Errorf("kernel: %w", err)
	}
	defer os.RemoveAll(tree)
	fmt.Fprintf(log, "kernel: dpkg-deb -x %s\n", filepath.Base(deb))
	if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", deb, tree).CombinedOutput(); err != nil {
		return Kernel{}, fmt.Errorf("kernel: dpkg-deb -x %s: %w: %s", deb, err, lastLines(out, 5))
	}
	k, err := pickKernel(tree, dir)
	if err != nil {
		return Kernel{}, err
	}
	fmt.Fprintf(log, "kernel: kept vmlinuz-%s and %d modules in %s\n", k.Version, len(k.Modules), dir)
	return k, nil
}

// pickKernel finds the image and the modules (with their dependencies) in an unpacked tree
// and, when dir differs from tree, copies them into dir with a manifest (kernel.txt).
func pickKernel(tree, dir string) (Kernel, error) {
	images, _ := filepath.Glob(filepath.Join(tree, "boot", "vmlinuz-*"))
	if len(images) != 1 {
		return Kernel{}, fmt.Errorf("kernel: %d boot/vmlinuz-* files in %s, want 1", len(images), tree)
	}
	ver := strings.TrimPrefix(filepath.Base(images[0]), "vmlinuz-")
	modRoot := filepath.Join(tree, "lib", "modules", ver, "kernel")
	found := map[string]string{} // module name -> path
	err := filepath.WalkDir(modRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".ko") {
			found[modName(strings.TrimSuffix(d.Name(), ".ko"))] = p
		}
		return nil
	})
	if err != nil {
		return Kernel{}, fmt.Errorf("kernel: modules of %s: %w", ver, err)
	}
	order, err := loadOrder(Modules, func(name string) ([]string, error) {
		p, ok := found[name]
		if !ok {
			return nil, fmt.Errorf("kernel %s has no module %s (.ko, uncompressed) under %s", ver, name, modRoot)
		}
		return moduleDepends(p)
	})
	if err != nil {
		return Kernel{}, fmt.Errorf("kernel: %w", err)
	}
	k := Kernel{Version: ver, Vmlinuz: images[0]}
	for _, m := range order {
		k.Modules = append(k.Modules, found[m])
	}
	if dir == tree {
		return k, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Kernel{}, fmt.Errorf("kernel: %w", err)
	}
	out := Kernel{Version: ver, Vmlinuz: filepath.Join(dir, filepath.Base(k.Vmlinuz))}
	if err := copyFile(k.Vmlinuz, out.Vmlinuz); err != nil {
		return Kernel{}, err
	}
	manifest := "version " + ver + "\nwant " + strings.Join(Modules, ",") + "\n"
	for _, p := range k.Modules {
		dst := filepath.Join(dir, filepath.Base(p))
		if err := copyFile(p, dst); err != nil {
			return Kernel{}, err
		}
		out.Modules = append(out.Modules, dst)
		manifest += "module " + filepath.Base(p) + "\n"
	}
	// The manifest is written last: its presence means the folder is complete.
	if err := writeFileAtomic(filepath.Join(dir, "kernel.txt"), []byte(manifest)); err != nil {
		return Kernel{}, err
	}
	return out, nil
}

// loadKernelDir reads a folder pickKernel filled.
func loadKernelDir(dir string) (Kernel, error) {
	f, err := os.Open(filepath.Join(dir, "kernel.txt"))
	if err != nil {
		return Kernel{}, err
	}
	defer f.Close()
	var k Kernel
	var want string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, _ := strings.Cut(sc.Text(), " ")
		switch key {
		case "version":
			k.Version = val
			k.Vmlinuz = filepath.Join(dir, "vmlinuz-"+val)
		case "module":
			k.Modules = append(k.Modules, filepath.Join(dir, val))
		case "want":
			want = val
		}
	}
	if k.Version == "" || len(k.Modules) == 0 {
		return Kernel{}, fmt.Errorf("kernel: %s/kernel.txt is incomplete", dir)
	}
	if want != strings.Join(Modules, ",") {
		// Kept for another module list (an older wfplab): unpack again.
		return Kernel{}, fmt.Errorf("kernel: %s holds the modules for %q, this wfplab wants %q", dir, want, strings.Join(Modules, ","))
	}
	for _, p := range append([]string{k.Vmlinuz}, k.Modules...) {
		if _, err := os.Stat(p); err != nil {
			return Kernel{}, fmt.Errorf("kernel: %w", err)
		}
	}
	return k, nil
}

// modName is the kernel's spelling of a module name: '-' and '_' are the same.
func modName(s string) string { return strings.ReplaceAll(s, "-", "_") }

// moduleDepends reads "depends=" from a .ko's .modinfo section.
func moduleDepends(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", path, err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("module %s has no .modinfo section", path)
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("module %s: .modinfo: %w", path, err)
	}
	for _, kv := range bytes.Split(data, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			var deps []string
			for _, d := range strings.Split(string(v), ",") {
				if d != "" {
					deps = append(deps, modName(d))
				}
			}
			return deps, nil
		}
	}
	return nil, nil
}

// loadOrder puts the wanted modules and their dependencies in an order where every module
// comes after what it depends on (depth first; ties in name order, so the order is stable).
func loadOrder(want []string, depends func(string) ([]string, error)) ([]string, error) {
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	var order []string
	var visit func(name string, path []string) error
	visit = func(name string, path []string) error {
		switch state[name] {
		case done:
			return nil
		case visiting:
			return fmt.Errorf("module dependency cycle: %s", strings.Join(append(path, name), " -> "))
		}
		if len(path) > 64 {
			return errors.New("module dependencies nest deeper than 64")
		}
		state[name] = visiting
		deps, err := depends(name)
		if err != nil {
			return err
		}
		sort.Strings(deps)
		for _, d := range deps {
			if err := visit(d, append(path, name)); err != nil {
				return err
			}
		}
		state[name] = done
		order = append(order, name)
		return nil
	}
	for _, w := range want {
		if err := visit(modName(w), nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return writeFileAtomic(dst, data)
}

// writeFileAtomic writes through a temporary file and a rename, so a cache entry is whole or absent.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(0o644) // CreateTemp makes 0600; the cache is shared with QEMU run as anyone
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

func lastLines(out []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
