package guest

import (
	"bufio"
	"bytes"
	"debug/pe"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// Functions the binaries may import, per DLL (lower-case). Every one exists on Windows
// Vista SP1 / Server 2008 (the oldest target), per Microsoft's documentation of each; a
// newer function (FwpsCalloutRegister1, ExAllocatePool2, GetTickCount64 on the driver
// side, ...) fails the test until it is checked and added here.
var driverAllowed = map[string]map[string]bool{
	"ntoskrnl.exe": set(
		"DbgPrintEx", "IoCreateDevice", "IoCreateSymbolicLink", "IoDeleteDevice", "IoDeleteSymbolicLink",
		"IofCompleteRequest", "RtlInitUnicodeString", "ZwClose", "ZwOpenKey", "ZwQueryValueKey",
		"ExAllocatePoolWithTag", "ExFreePoolWithTag", "KeDelayExecutionThread", "memcpy", "memmove", "memset",
		// The device's DACL (security.c) and the OS version (driver.c): Windows 2000 / XP on.
		"ObOpenObjectByPointer", "ZwSetSecurityObject", "RtlCreateSecurityDescriptor", "RtlSetDaclSecurityDescriptor",
		"RtlCreateAcl", "RtlAddAccessAllowedAce", "RtlInitializeSid", "RtlSubAuthoritySid", "RtlGetVersion",
	),
	"hal.dll": set("KeGetCurrentIrql"),
	// Version-0 WFP functions only: the "1" versions are Windows 7 only.
	"fwpkclnt.sys": set(
		"FwpsCalloutRegister0", "FwpsCalloutUnregisterById0", "FwpmEngineOpen0", "FwpmEngineClose0",
		"FwpmTransactionBegin0", "FwpmTransactionCommit0", "FwpmTransactionAbort0", "FwpmSubLayerAdd0",
		"FwpmCalloutAdd0", "FwpmFilterAdd0",
	),
}

// The driver must import from both of these (hal.dll is optional).
var driverRequiredDLLs = []string{"fwpkclnt.sys", "ntoskrnl.exe"}

var agentAllowed = map[string]map[string]bool{
	"kernel32.dll": set(
		"CloseHandle", "CreateEventW", "CreateFileW", "CreateThread", "DeviceIoControl", "ExitProcess",
		"GetCommandLineW", "GetCurrentProcess", "GetCurrentProcessId", "GetLastError", "GetNativeSystemInfo",
		"GetProcessHeap", "GetStdHandle", "GetSystemTimes", "GetSystemWindowsDirectoryW", "HeapAlloc", "HeapFree",
		"IsWow64Process", "QueryPerformanceCounter", "QueryPerformanceFrequency", "ReadFile", "SetEvent",
		"WaitForSingleObject", "WriteFile", "GetTickCount", "Sleep",
	),
	"ntdll.dll":    set("NtQuerySystemInformation", "RtlGetVersion"),
	"advapi32.dll": set("CloseServiceHandle", "OpenSCManagerW", "OpenServiceW", "QueryServiceStatus", "RegCloseKey", "RegOpenKeyExW", "RegQueryValueExW"),
	"version.dll":  set("GetFileVersionInfoSizeW", "GetFileVersionInfoW", "VerQueryValueW"),
	"msvcrt.dll":   set("memcpy", "memmove", "memset", "memcmp", "qsort", "strcmp", "strncmp", "strlen", "wcslen"),
}

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

var peMachine = map[string]uint16{"x86": pe.IMAGE_FILE_MACHINE_I386, "x64": pe.IMAGE_FILE_MACHINE_AMD64}

const (
	subsystemNative     = 1
	subsystemConsoleCUI = 3
)

// peInfo is what the tests need from an image's optional header, for either width.
type peInfo struct {
	file       *pe.File
	raw        []byte
	imageBase  uint64
	entry      uint32
	subsystem  uint16
	osMajor    uint16
	subMajor   uint16
	checksum   uint32
	dirs       []pe.DataDirectory
	ptrSize    int
	checksumAt int // file offset of the CheckSum field
}

func openPE(t *testing.T, path string) *peInfo {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	f, err := pe.NewFile(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("%s: not a PE file: %v", path, err)
	}
	t.Cleanup(func() { f.Close() })
	p := &peInfo{file: f, raw: raw}
	peOff := int(binary.LittleEndian.Uint32(raw[0x3c:]))
	p.checksumAt = peOff + 4 + 20 + 64
	switch oh := f.OptionalHeader.(type) {
	case *pe.OptionalHeader32:
		p.imageBase, p.entry, p.subsystem = uint64(oh.ImageBase), oh.AddressOfEntryPoint, oh.Subsystem
		p.osMajor, p.subMajor, p.checksum = oh.MajorOperatingSystemVersion, oh.MajorSubsystemVersion, oh.CheckSum
		p.dirs, p.ptrSize = oh.DataDirectory[:oh.NumberOfRvaAndSizes], 4
	case *pe.OptionalHeader64:
		p.imageBase, p.entry, p.subsystem = oh.ImageBase, oh.AddressOfEntryPoint, oh.Subsystem
		p.osMajor, p.subMajor, p.checksum = oh.MajorOperatingSystemVersion, oh.MajorSubsystemVersion, oh.CheckSum
		p.dirs, p.ptrSize = oh.DataDirectory[:oh.NumberOfRvaAndSizes], 8
	default:
		t.Fatalf("%s: no optional header", path)
	}
	return p
}

func (p *peInfo) dir(i int) pe.DataDirectory {
	if i < len(p.dirs) {
		return p.dirs[i]
	}
	return pe.DataDirectory{}
}

// at returns the file bytes from an RVA to the end of its section's raw data.
func (p *peInfo) at(rva uint32) ([]byte, error) {
	for _, s := range p.file.Sections {
		if rva >= s.VirtualAddress && rva < s.VirtualAddress+s.Size {
			off := s.Offset + (rva - s.VirtualAddress)
			end := s.Offset + s.Size
			if int(end) > len(p.raw) {
				return nil, fmt.Errorf("section %s runs past the end of the file", s.Name)
			}
			return p.raw[off:end], nil
		}
	}
	return nil, fmt.Errorf("RVA %#x is in no section's file data", rva)
}

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return string(b[:i])
	}
	return string(b)
}

// imports reads the import directory itself (debug/pe's ImportedSymbols drops imports
// by ordinal, which must fail here): DLL (lower-case) -> function names, "#N" for ordinals.
func (p *peInfo) imports() (map[string][]string, error) {
	d := p.dir(pe.IMAGE_DIRECTORY_ENTRY_IMPORT)
	out := map[string][]string{}
	if d.VirtualAddress == 0 {
		return out, nil
	}
	descs, err := p.at(d.VirtualAddress)
	if err != nil {
		return nil, err
	}
	for i := 0; ; i++ {
		if (i+1)*20 > len(descs) {
			return nil, fmt.Errorf("import descriptors run past their section")
		}
		desc := descs[i*20 : i*20+20]
		lookup := binary.LittleEndian.Uint32(desc[0:])
		nameRVA := binary.LittleEndian.Uint32(desc[12:])
		iat := binary.LittleEndian.Uint32(desc[16:])
		if lookup == 0 && nameRVA == 0 && iat == 0 {
			break
		}
		nb, err := p.at(nameRVA)
		if err != nil {
			return nil, fmt.Errorf("import %d name: %w", i, err)
		}
		dll := strings.ToLower(cstring(nb))
		if lookup == 0 {
			lookup = iat
		}
		thunks, err := p.at(lookup)
		if err != nil {
			return nil, fmt.Errorf("%s thunks: %w", dll, err)
		}
		for j := 0; ; j++ {
			var v uint64
			var ordinal bool
			if p.ptrSize == 4 {
				if (j+1)*4 > len(thunks) {
					return nil, fmt.Errorf("%s thunks run past their section", dll)
				}
				x := binary.LittleEndian.Uint32(thunks[j*4:])
				v, ordinal = uint64(x), x&0x80000000 != 0
			} else {
				if (j+1)*8 > len(thunks) {
					return nil, fmt.Errorf("%s thunks run past their section", dll)
				}
				v = binary.LittleEndian.Uint64(thunks[j*8:])
				ordinal = v&(1<<63) != 0
			}
			if v == 0 {
				break
			}
			if ordinal {
				out[dll] = append(out[dll], "#"+strconv.FormatUint(v&0xffff, 10))
				continue
			}
			hn, err := p.at(uint32(v))
			if err != nil || len(hn) < 3 {
				return nil, fmt.Errorf("%s import %d: bad hint/name entry", dll, j)
			}
			out[dll] = append(out[dll], cstring(hn[2:]))
		}
	}
	return out, nil
}

// peChecksum is the PE image checksum (the algorithm of imagehlp's CheckSumMappedFile):
// 16-bit one's-complement-style sum of the file with the CheckSum field taken as zero,
// plus the file length.
func peChecksum(raw []byte, checksumAt int) uint32 {
	var sum uint64
	for i := 0; i+1 < len(raw); i += 2 {
		if i == checksumAt || i == checksumAt+2 {
			continue
		}
		sum += uint64(binary.LittleEndian.Uint16(raw[i:]))
		sum = (sum & 0xffff) + (sum >> 16)
	}
	if len(raw)%2 == 1 {
		sum += uint64(raw[len(raw)-1])
		sum = (sum & 0xffff) + (sum >> 16)
	}
	sum = (sum & 0xffff) + (sum >> 16)
	return uint32(sum) + uint32(len(raw))
}

// importProblems lists the DLLs and functions of got that allowed does not have.
func importProblems(got map[string][]string, allowed map[string]map[string]bool) []string {
	var problems []string
	for dll, funcs := range got {
		ok, known := allowed[dll]
		if !known {
			dlls := make([]string, 0, len(allowed))
			for d := range allowed {
				dlls = append(dlls, d)
			}
			sort.Strings(dlls)
			problems = append(problems, fmt.Sprintf("imports from %s; only %s are allowed", dll, strings.Join(dlls, ", ")))
			continue
		}
		for _, fn := range funcs {
			if !ok[fn] {
				problems = append(problems, fmt.Sprintf("imports %s!%s, which is not on the test's list of functions present on Vista", dll, fn))
			}
		}
	}
	sort.Strings(problems)
	return problems
}

func checkImports(t *testing.T, name string, got map[string][]string, allowed map[string]map[string]bool) {
	t.Helper()
	for _, p := range importProblems(got, allowed) {
		t.Errorf("%s %s", name, p)
	}
}

// mapSymbol finds a symbol's address in a GNU ld map file.
func mapSymbol(path string, names ...string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	re := regexp.MustCompile(`^\s+0x([0-9a-fA-F]+)\s+(\S+)\s*$`)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		m := re.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		for _, n := range names {
			if m[2] == n {
				return strconv.ParseUint(m[1], 16, 64)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s: no symbol %v", path, names)
}

const (
	scnMemExecute = 0x20000000
	scnMemWrite   = 0x80000000
)

// checkCommon holds for every image: machine, OS/subsystem version 6.0, a correct
// checksum (signing was the last step), no writable code.
func checkCommon(t *testing.T, name, arch string, p *peInfo) {
	t.Helper()
	if m := p.file.FileHeader.Machine; m != peMachine[arch] {
		t.Errorf("%s: machine %#x, want %#x for %s", name, m, peMachine[arch], arch)
	}
	if p.osMajor != 6 || p.subMajor != 6 {
		t.Errorf("%s: OS version %d / subsystem version %d, want 6 (Vista) for both", name, p.osMajor, p.subMajor)
	}
	if want := peChecksum(p.raw, p.checksumAt); p.checksum != want {
		t.Errorf("%s: PE checksum %#x, computed %#x (was the file changed after signing?)", name, p.checksum, want)
	}
	for _, s := range p.file.Sections {
		if s.Characteristics&scnMemExecute != 0 && s.Characteristics&scnMemWrite != 0 {
			t.Errorf("%s: section %s is writable and executable", name, s.Name)
		}
	}
	if d := p.dir(pe.IMAGE_DIRECTORY_ENTRY_DELAY_IMPORT); d.VirtualAddress != 0 || d.Size != 0 {
		t.Errorf("%s: has delay-load imports", name)
	}
}

func checkDriver(t *testing.T, name, arch, mapFile string, p *peInfo) {
	t.Helper()
	checkCommon(t, name, arch, p)
	if p.subsystem != subsystemNative {
		t.Errorf("%s: subsystem %d, want %d (native)", name, p.subsystem, subsystemNative)
	}
	if d := p.dir(pe.IMAGE_DIRECTORY_ENTRY_EXPORT); d.VirtualAddress != 0 || d.Size != 0 {
		t.Errorf("%s: has an export table (%#x, %d bytes); a plain driver exports nothing", name, d.VirtualAddress, d.Size)
	}
	if d := p.dir(pe.IMAGE_DIRECTORY_ENTRY_BASERELOC); d.VirtualAddress == 0 || d.Size == 0 {
		t.Errorf("%s: no base relocations; the kernel loads drivers at any address", name)
	}
	if d := p.dir(pe.IMAGE_DIRECTORY_ENTRY_TLS); d.VirtualAddress != 0 {
		t.Errorf("%s: has a TLS directory, which drivers cannot use", name)
	}
	if p.file.FileHeader.Characteristics&pe.IMAGE_FILE_RELOCS_STRIPPED != 0 {
		t.Errorf("%s: relocations stripped", name)
	}
	if mapFile != "" {
		addr, err := mapSymbol(mapFile, "DriverEntry", "_DriverEntry@8", "DriverEntry@8")
		if err != nil {
			t.Errorf("%s: %v", name, err)
		} else if rva := addr - p.imageBase; uint64(p.entry) != rva {
			t.Errorf("%s: entry point RVA %#x, DriverEntry is at %#x", name, p.entry, rva)
		}
	}
	imps, err := p.imports()
	if err != nil {
		t.Fatalf("%s: imports: %v", name, err)
	}
	for _, dll := range driverRequiredDLLs {
		if len(imps[dll]) == 0 {
			t.Errorf("%s: imports nothing from %s", name, dll)
		}
	}
	checkImports(t, name, imps, driverAllowed)
}

func checkAgent(t *testing.T, name, arch string, p *peInfo) {
	t.Helper()
	checkCommon(t, name, arch, p)
	if p.subsystem != subsystemConsoleCUI {
		t.Errorf("%s: subsystem %d, want %d (console)", name, p.subsystem, subsystemConsoleCUI)
	}
	imps, err := p.imports()
	if err != nil {
		t.Fatalf("%s: imports: %v", name, err)
	}
	if len(imps["kernel32.dll"]) == 0 {
		t.Errorf("%s: imports nothing from kernel32.dll", name)
	}
	checkImports(t, name, imps, agentAllowed)
}

func TestBuiltDriverPE(t *testing.T) {
	build := requireBuild(t)
	for _, arch := range Arches {
		t.Run(arch, func(t *testing.T) {
			path := filepath.Join(build, arch, DriverFile)
			checkDriver(t, path, arch, filepath.Join(build, arch, "obj", "wfplabcallout.map"), openPE(t, path))
		})
	}
}

func TestBuiltAgentPE(t *testing.T) {
	build := requireBuild(t)
	for _, arch := range Arches {
		t.Run(arch, func(t *testing.T) {
			path := filepath.Join(build, arch, AgentFile)
			checkAgent(t, path, arch, openPE(t, path))
		})
	}
}

// The entry check itself must be able to fail: the agent's entry is not DriverEntry.
func TestEntryPointCheckSeesAWrongEntry(t *testing.T) {
	build := requireBuild(t)
	p := openPE(t, filepath.Join(build, "x64", DriverFile))
	addr, err := mapSymbol(filepath.Join(build, "x64", "obj", "wfplabcallout.map"), "wfplab_read_config")
	if err != nil {
		t.Fatal(err)
	}
	if uint64(p.entry) == addr-p.imageBase {
		t.Fatalf("entry point equals wfplab_read_config's address: the map lookup cannot tell symbols apart")
	}
}

// The allow-list check must be able to fail: a Windows 7-only WFP function, an
// ordinal import and a DLL outside the list are all reported.
func TestImportAllowListRejects(t *testing.T) {
	got := map[string][]string{
		"fwpkclnt.sys": {"FwpsCalloutRegister0", "FwpsCalloutRegister1"},
		"ntoskrnl.exe": {"#12"},
		"ws2_32.dll":   {"socket"},
	}
	problems := importProblems(got, driverAllowed)
	want := []string{"fwpkclnt.sys!FwpsCalloutRegister1", "ntoskrnl.exe!#12", "imports from ws2_32.dll"}
	if len(problems) != len(want) {
		t.Fatalf("got %d problems %q, want %d", len(problems), problems, len(want))
	}
	for _, w := range want {
		found := false
		for _, p := range problems {
			found = found || strings.Contains(p, w)
		}
		if !found {
			t.Errorf("no problem mentions %q in %q", w, problems)
		}
	}
}

// No path of the build machine may end up in a binary (deterministic output).
func TestBuiltBinariesHoldNoBuildPaths(t *testing.T) {
	build := requireBuild(t)
	dir := guestDir(t)
	needles := [][]byte{[]byte(dir), utf16le(dir), []byte("/usr/share/mingw-w64"), []byte("/tmp/")}
	for _, arch := range Arches {
		for _, name := range []string{DriverFile, AgentFile} {
			raw, err := os.ReadFile(filepath.Join(build, arch, name))
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range needles {
				if bytes.Contains(raw, n) {
					t.Errorf("%s/%s contains the build path %q", arch, name, n)
				}
			}
		}
	}
}

func utf16le(s string) []byte {
	b := make([]byte, 0, 2*len(s))
	for _, r := range s {
		b = append(b, byte(r), byte(r>>8))
	}
	return b
}
