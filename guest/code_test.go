package guest

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

const objdump = "x86_64-w64-mingw32-objdump" // binutils-mingw-w64-x86-64 reads both PE widths

// Kernel code on x86 may not touch x87/MMX/SSE state without saving it first, and the
// driver never needs to: no such instruction may appear in either driver.
func TestDriverUsesNoFloatingPointOrVectorRegisters(t *testing.T) {
	build := requireBuild(t)
	requireTools(t, objdump)
	fp := regexp.MustCompile(`%[xyz]mm[0-9]|%mm[0-7]|%st\b|\bf(ld|st|stp|ild|ist|istp|nstcw|ldcw|xsave|xrstor|nsave|rstor)[a-z]*\s|\bemms\b`)
	for _, arch := range Arches {
		image := filepath.Join(build, arch, "obj", "wfplabcallout.sys")
		out, err := run(t, time.Minute, objdump, "-d", image)
		if err != nil {
			t.Fatalf("%s -d %s: %v\n%s", objdump, image, err, lastLines(out, 10))
		}
		if !strings.Contains(out, "Disassembly of section .text") {
			t.Fatalf("%s: no .text disassembly", image)
		}
		for _, line := range strings.Split(out, "\n") {
			if fp.MatchString(line) {
				t.Errorf("%s: floating-point or vector instruction: %s", arch, strings.TrimSpace(line))
			}
		}
	}
}

// On x86 every callback Windows calls is __stdcall: the callee pops its arguments, so
// each must return with `ret $N`, N the documented argument size. classifyFn0 takes
// four pointers, a UINT64 and a pointer: 28 bytes.
func TestDriverCallbacksAreStdcallWithDocumentedArgumentSizes(t *testing.T) {
	build := requireBuild(t)
	requireTools(t, objdump)
	want := map[string]int{
		"_DriverEntry@8":             8,  // DRIVER_OBJECT*, UNICODE_STRING*
		"_driver_unload@4":           4,  // DRIVER_OBJECT*
		"_dispatch_open_close@8":     8,  // DEVICE_OBJECT*, IRP*
		"_dispatch_device_control@8": 8,  // DEVICE_OBJECT*, IRP*
		"_classify_stream@28":        28, // classifyFn0
		"_classify_forward@28":       28,
		"_classify_transport@28":     28,
		"_notify@12":                 12, // notifyFn0: enum, GUID*, FWPS_FILTER0*
	}
	objs := []string{"driver.o", "callouts.o"}
	found := map[string]bool{}
	fn := regexp.MustCompile(`^[0-9a-f]+ <(.+)>:$`)
	ret := regexp.MustCompile(`\tret\s+\$0x([0-9a-f]+)|\tret\s*$`)
	for _, o := range objs {
		path := filepath.Join(build, "x86", "obj", "driver", o)
		out, err := run(t, time.Minute, objdump, "-d", path)
		if err != nil {
			t.Fatalf("%s -d %s: %v", objdump, path, err)
		}
		current := ""
		for _, line := range strings.Split(out, "\n") {
			if m := fn.FindStringSubmatch(line); m != nil {
				current = m[1]
				if _, ok := want[current]; ok {
					found[current] = true
				}
				continue
			}
			size, ok := want[current]
			if !ok {
				continue
			}
			if m := ret.FindStringSubmatch(line); m != nil {
				got := 0
				if m[1] != "" {
					for _, c := range m[1] {
						got = got*16 + strings.IndexRune("0123456789abcdef", c)
					}
				}
				if got != size {
					t.Errorf("%s returns with ret $%d, want %d", current, got, size)
				}
			}
		}
	}
	for name := range want {
		if !found[name] {
			t.Errorf("no function %s in the x86 driver objects (wrong calling convention or argument size?)", name)
		}
	}
}
