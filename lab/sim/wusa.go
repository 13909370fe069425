package sim

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing/fstest"
	"time"

	"github.com/wfplab/wfplab/lab/contract"
	"github.com/wfplab/wfplab/lab/sim/cmdexe"
)

// Exit codes of wusa.exe (docs/windows.md, COMMANDS.md #20).
const (
	wusaRebootRequired = 3010        // ERROR_SUCCESS_REBOOT_REQUIRED
	wusaAlready        = 2359302     // 0x240006 WU_S_ALREADY_INSTALLED
	wusaNotApplicable  = -2145124329 // 0x80240017 WU_E_NOT_APPLICABLE
	wusaMissingFile    = 2           // ERROR_FILE_NOT_FOUND
	wusaAccessDenied   = -2147024891 // 0x80070005 E_ACCESSDENIED: a remote logon may not install (a guess at wusa's answer)
	wusaInvalidData    = -2147024883 // 0x8007000D ERROR_INVALID_DATA: not a cabinet (a guess at wusa's answer)
)

// HotfixPackages returns the simulated KB979223 packages, one per distinct HotfixPackage
// name in the catalog. Each is a file that begins with the cabinet signature `MSCF` and then
// says in plain text that it is a simulation; it installs nothing anywhere but here.
//
// What the simulated wusa accepts: any file whose name is the guest's catalog HotfixPackage
// (compared without case) and whose content begins with `MSCF`. So these packages install,
// and so would a real MSU of that name; a package named for another OS or architecture is
// "not applicable", and a file of the right name that is not a cabinet is rejected with
// ERROR_INVALID_DATA.
func HotfixPackages() fs.FS {
	m := fstest.MapFS{}
	for _, o := range contract.Catalog() {
		if _, ok := m[o.HotfixPackage]; ok {
			continue
		}
		m[o.HotfixPackage] = &fstest.MapFile{Data: HotfixPackage(o.HotfixPackage), Mode: 0o444, ModTime: time.Unix(0, 0)}
	}
	return m
}

// WriteHotfixPackages writes HotfixPackages into dir (made if missing), for a lab that hands
// packages to guests from a folder (lab.hotfix_dir), and returns the files' paths, sorted.
func WriteHotfixPackages(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("sim: hotfix packages: %w", err)
	}
	names, err := fs.Glob(HotfixPackages(), "*.msu")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	paths := make([]string, 0, len(names))
	for _, n := range names {
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, HotfixPackage(n), 0o644); err != nil {
			return paths, fmt.Errorf("sim: hotfix packages: %w", err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// HotfixPackage is the content of the simulated package of that file name.
func HotfixPackage(name string) []byte {
	var b bytes.Buffer
	b.WriteString("MSCF\x00\x00\x00\x00")
	fmt.Fprintf(&b, "\r\nwfplab SIMULATED hotfix package %s.\r\n", name)
	b.WriteString("This is not a Microsoft update and not a real cabinet: only the wfplab simulated guest accepts it,\r\n")
	b.WriteString("where installing it replaces the modelled netio.sys with the KB979223 version at the next reboot.\r\n")
	return b.Bytes()
}

// wusa installs KB979223 from an uploaded package: netio.sys (and on 6.0 tcpip.sys and
// fwpkclnt.sys, which the 6.0 package also carries) are replaced at the next boot.
// /quiet without /norestart reboots at once, as wusa does.
func (g *Machine) wusa(_ context.Context, b *boot, p *cmdexe.Process) int {
	var pkg string
	quiet, norestart := false, false
	for _, a := range p.Args {
		switch strings.ToLower(a) {
		case "/quiet":
			quiet = true
		case "/norestart":
			norestart = true
		case "/forcerestart", "/warnrestart", "/promptrestart":
		default:
			if strings.HasPrefix(a, "/") {
				fmt.Fprintf(p.Stderr, "wfplab simulated guest: wusa option %s is not modelled.\r\n", a)
				return 87
			}
			if pkg != "" {
				return 87
			}
			pkg = a
		}
	}
	if pkg == "" {
		return 87
	}
	if g.cfg.WusaRefusesRemote {
		if user, _ := p.Getenv("USERNAME"); !strings.EqualFold(user, "SYSTEM") {
			return wusaAccessDenied
		}
	}
	path, err := cmdexe.Abs(p.Cwd, pkg)
	if err != nil {
		return wusaMissingFile
	}
	data, err := g.fs.ReadFile(path)
	if err != nil {
		return wusaMissingFile
	}
	v60 := g.os.Version == "6.0" // before KB949545, 6.0's wusa answers 1 for both
	if !strings.EqualFold(cmdexe.Base(path), g.os.HotfixPackage) {
		if v60 {
			return 1
		}
		return wusaNotApplicable
	}
	if !bytes.HasPrefix(data, []byte("MSCF")) {
		return wusaInvalidData
	}
	g.mu.Lock()
	installed, err := lookupNetio(g.files.netio)
	if err != nil {
		g.mu.Unlock()
		g.logf("wusa: %v", err)
		return wusaInvalidData
	}
	if g.hotfixDone || !installed.leaks {
		g.mu.Unlock()
		if v60 {
			return 1
		}
		return wusaAlready
	}
	g.hotfixDone = true
	fixed := fileVersions{netio: installed.fixed, tcpip: g.files.tcpip, fwpkclnt: g.files.fwpkclnt}
	if v60 {
		fixed.tcpip, fixed.fwpkclnt = installed.fixed, installed.fixed
	}
	g.pendingFiles = &fixed
	g.mu.Unlock()
	g.logf("KB979223 installed from %s: netio %s at the next boot", path, fixed.netio)
	if quiet && !norestart {
		g.requestShutdown(b, 0, true)
	}
	return wusaRebootRequired
}
