package sim

import (
	"regexp"
	"strconv"
	"testing"
)

// The lines `check --live` sends (COMMANDS.md #30, #31), answered as wmic answers them.
func TestWmicDataFileAndLogicalDisk(t *testing.T) {
	cfg := testConfig()
	cfg.Patched = true
	tg := startGuest(t, "vista-sp2-x64", cfg)
	check(t, tg.run(`wmic datafile where name="C:\\Windows\\System32\\drivers\\netio.sys" get Version /value`),
		answer{"\r\r\n\r\r\nVersion=6.0.6002.22369\r\r\n\r\r\n\r\r\n", "", 0})
	check(t, tg.run(`wmic datafile where name="C:\\Windows\\System32\\drivers\\nope.sys" get Version /value`),
		answer{"", "No Instance(s) Available.\r\r\n", 0})
	a := tg.must(`wmic logicaldisk where "DeviceID='C:'" get FreeSpace /value`)
	m := regexp.MustCompile(`^\r\r\n\r\r\nFreeSpace=(\d+)\r\r\n\r\r\n\r\r\n$`).FindStringSubmatch(a.out)
	if m == nil {
		t.Fatalf("logicaldisk: %q", a.out)
	}
	before, _ := strconv.ParseInt(m[1], 10, 64)
	tg.must(`if not exist C:\wfplab mkdir C:\wfplab`)
	tg.upload(`C:\wfplab\x.bin`, make([]byte, 4096))
	a = tg.must(`wmic logicaldisk where "DeviceID='C:'" get FreeSpace /value`)
	m = regexp.MustCompile(`FreeSpace=(\d+)`).FindStringSubmatch(a.out)
	if after, _ := strconv.ParseInt(m[1], 10, 64); after != before-4096 {
		t.Errorf("free space %d after a 4096-byte file, was %d", after, before)
	}
}
