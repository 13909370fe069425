package appliance

import (
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
)

// libDirs are where a Debian amd64 system keeps the shared libraries a Go binary built with
// cgo needs (libc and its loader).
var libDirs = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"}

// sharedDeps lists the files a dynamically linked ELF needs at run time, as absolute host
// paths: its interpreter (PT_INTERP) and its DT_NEEDED libraries, recursively. A static
// executable needs none.
func sharedDeps(exe string) ([]string, error) {
	f, err := elf.Open(exe)
	if err != nil {
		return nil, fmt.Errorf("initramfs: %s is not an ELF executable: %w", exe, err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 {
		return nil, fmt.Errorf("initramfs: %s is for %v; the appliance boots an amd64 kernel", exe, f.Machine)
	}
	var interp string
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				return nil, fmt.Errorf("initramfs: %s: reading PT_INTERP: %w", exe, err)
			}
			interp = string(b[:max(len(b)-1, 0)]) // NUL-terminated
		}
	}
	if interp == "" {
		return nil, nil
	}
	out := []string{interp}
	seen := map[string]bool{}
	queue := []string{exe}
	for steps := 0; len(queue) > 0; steps++ {
		if steps > 256 {
			return nil, fmt.Errorf("initramfs: %s needs more than 256 libraries", exe)
		}
		cur := queue[0]
		queue = queue[1:]
		lf, err := elf.Open(cur)
		if err != nil {
			return nil, fmt.Errorf("initramfs: %s: %w", cur, err)
		}
		needed, err := lf.ImportedLibraries()
		lf.Close()
		if err != nil {
			return nil, fmt.Errorf("initramfs: %s: DT_NEEDED: %w", cur, err)
		}
		for _, lib := range needed {
			if seen[lib] {
				continue
			}
			seen[lib] = true
			p, err := findLib(lib)
			if err != nil {
				return nil, fmt.Errorf("initramfs: %s needs %s: %w", cur, lib, err)
			}
			if p != interp {
				out = append(out, p)
			}
			queue = append(queue, p)
		}
	}
	return out, nil
}

func findLib(name string) (string, error) {
	if filepath.IsAbs(name) {
		return name, nil
	}
	for _, d := range libDirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("not found in %v: build wfplab with CGO_ENABLED=0 for a static binary", libDirs)
}
