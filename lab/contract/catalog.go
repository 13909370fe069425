package contract

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// OS is one Windows release the lab supports, as KB979223 and docs/windows.md describe it.
type OS struct {
	Name    string // catalog key, e.g. "win7-x64"
	Product string // "Windows 7"
	Version string // kernel version "6.0" or "6.1"
	Build   string // build.revision of the RTM/SP kernel as installed, e.g. "7600.16385"
	SP      int    // service pack
	Arch    string // "x86" or "x64"
	// NetioStock is netio.sys as the release ships it (GDR branch); NetioFixed is the
	// KB979223 LDR build that carries the fix.
	NetioStock string
	NetioFixed string
	// HotfixPackage is the MSU file name (inferred from the MSU naming rule; unverified).
	HotfixPackage string
}

var catalog = []OS{
	{Name: "vista-sp1-x86", Product: "Windows Vista SP1", Version: "6.0", Build: "6001.18000", SP: 1, Arch: "x86",
		NetioStock: "6.0.6001.18000", NetioFixed: "6.0.6001.22659", HotfixPackage: "Windows6.0-KB979223-x86.msu"},
	{Name: "vista-sp2-x64", Product: "Windows Vista SP2", Version: "6.0", Build: "6002.18005", SP: 2, Arch: "x64",
		NetioStock: "6.0.6002.18005", NetioFixed: "6.0.6002.22369", HotfixPackage: "Windows6.0-KB979223-x64.msu"},
	{Name: "2008-sp2-x64", Product: "Windows Server 2008 SP2", Version: "6.0", Build: "6002.18005", SP: 2, Arch: "x64",
		NetioStock: "6.0.6002.18005", NetioFixed: "6.0.6002.22369", HotfixPackage: "Windows6.0-KB979223-x64.msu"},
	{Name: "win7-x86", Product: "Windows 7", Version: "6.1", Build: "7600.16385", SP: 0, Arch: "x86",
		NetioStock: "6.1.7600.16385", NetioFixed: "6.1.7600.20611", HotfixPackage: "Windows6.1-KB979223-x86.msu"},
	{Name: "win7-x64", Product: "Windows 7", Version: "6.1", Build: "7600.16385", SP: 0, Arch: "x64",
		NetioStock: "6.1.7600.16385", NetioFixed: "6.1.7600.20611", HotfixPackage: "Windows6.1-KB979223-x64.msu"},
	{Name: "2008r2-x64", Product: "Windows Server 2008 R2", Version: "6.1", Build: "7600.16385", SP: 0, Arch: "x64",
		NetioStock: "6.1.7600.16385", NetioFixed: "6.1.7600.20611", HotfixPackage: "Windows6.1-KB979223-x64.msu"},
}

// Catalog returns every supported OS, in a stable order.
func Catalog() []OS {
	out := make([]OS, len(catalog))
	copy(out, catalog)
	return out
}

// LookupOS finds a catalog entry by name.
func LookupOS(name string) (OS, error) {
	for _, o := range catalog {
		if o.Name == name {
			return o, nil
		}
	}
	names := make([]string, 0, len(catalog))
	for _, o := range catalog {
		names = append(names, o.Name)
	}
	sort.Strings(names)
	return OS{}, fmt.Errorf("unknown OS %q: known are %s", name, strings.Join(names, ", "))
}

// HotfixState says whether a netio.sys file version carries the KB979223 fix.
type HotfixState string

const (
	Unpatched HotfixState = "unpatched"
	Patched   HotfixState = "patched"
	// Unknown is a version the lab cannot place: another build, or a malformed version.
	Unknown HotfixState = "unknown"
)

// fixedNetio is the first fixed LDR revision per build (KB979223 file tables).
var fixedNetio = map[int]int{6001: 22659, 6002: 22369, 7600: 20611}

// NetioState compares a netio.sys version within its servicing branch: GDR revisions
// (below 20000) never carry the fix; LDR revisions do from the KB's build on. Build 7601
// (7 SP1 / 2008 R2 SP1) is said to include the fix (unverified), so it counts as patched.
func NetioState(version string) HotfixState {
	parts := strings.Split(version, ".")
	if len(parts) != 4 {
		return Unknown
	}
	nums := make([]int, 4)
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return Unknown
		}
		nums[i] = n
	}
	build, rev := nums[2], nums[3]
	if build >= 7601 && nums[0] == 6 && nums[1] == 1 {
		return Patched
	}
	fixed, ok := fixedNetio[build]
	if !ok {
		return Unknown
	}
	if rev < 20000 {
		return Unpatched
	}
	if rev >= fixed {
		return Patched
	}
	return Unpatched
}
