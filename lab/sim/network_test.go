package sim

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/wfplab/wfplab/lab/contract"
)

var (
	nic2MAC = net.HardwareAddr{0x52, 0x54, 0x00, 0x77, 0x00, 0x02}
	nic3MAC = net.HardwareAddr{0x52, 0x54, 0x00, 0x77, 0x00, 0x03}
)

func withNICs(cfg Config) Config {
	cfg.ExtraNICs = []NIC{{MAC: nic2MAC}, {Name: "wfplab out", MAC: nic3MAC}}
	return cfg
}

// getmac lists every adapter with its connection name and MAC, in the CSV the lab reads.
func TestGetmacListsNICs(t *testing.T) {
	tg := startGuest(t, "win7-x64", withNICs(testConfig()))
	a := tg.must(`getmac /fo csv /nh /v`)
	lines := strings.Split(strings.TrimSuffix(a.out, "\r\n"), "\r\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), a.out)
	}
	for i, want := range []string{`"Local Area Connection","Intel(R) PRO/1000 MT Network Connection","52-54-00-`,
		`"Local Area Connection 2","Intel(R) PRO/1000 MT Network Connection #2","52-54-00-77-00-02","\Device\Tcpip_{`,
		`"wfplab out","Intel(R) PRO/1000 MT Network Connection #3","52-54-00-77-00-03","\Device\Tcpip_{`} {
		if !strings.HasPrefix(lines[i], want) || !strings.HasSuffix(lines[i], `}"`) {
			t.Errorf("line %d: %s\nwant it to start %s", i, lines[i], want)
		}
	}
	if a := tg.must(`getmac /fo csv`); !strings.HasPrefix(a.out, `"Physical Address","Transport Name"`+"\r\n") || strings.Count(a.out, "\r\n") != 4 {
		t.Errorf("csv with header, not verbose:\n%s", a.out)
	}
	if a := tg.run(`getmac /fo xml`); a.code != 1 || !strings.Contains(a.err, "Invalid value 'xml'") {
		t.Errorf("bad format: %+v", a)
	}
	// The loopback guest has only its first NIC.
	one := startGuest(t, "vista-sp2-x64", testConfig())
	if a := one.must(`getmac /fo csv /nh /v`); strings.Count(a.out, "\r\n") != 1 || !strings.HasPrefix(a.out, `"Local Area Connection",`) {
		t.Errorf("guest without extra NICs:\n%s", a.out)
	}
}

func TestNetshConfiguresRoutedLinks(t *testing.T) {
	tg := startGuest(t, "vista-sp1-x86", withNICs(testConfig()))
	a := tg.must(`netsh interface ipv4 set address name="Local Area Connection 2" static 198.51.100.1 255.255.255.0`)
	if strings.TrimSpace(a.out) != "" {
		t.Errorf("set address printed %q", a.out)
	}
	tg.must(`netsh interface ipv4 set address name="wfplab out" source=static address=203.0.113.1 mask=255.255.255.0`)
	if a := tg.must(`netsh interface ipv4 set interface "Local Area Connection 2" forwarding=enabled`); a.out != "Ok.\r\n\r\n" {
		t.Errorf("set interface printed %q", a.out)
	}
	tg.must(`netsh int ipv4 set interface interface="WFPLAB OUT" forwarding=enabled`)
	tg.must(`reg add HKLM\SYSTEM\CurrentControlSet\Services\Tcpip\Parameters /v IPEnableRouter /t REG_DWORD /d 1 /f`)

	check := func(when string) {
		t.Helper()
		nics := tg.g.NICs()
		if len(nics) != 3 || nics[0].Addr.IsValid() || nics[0].Forwarding {
			t.Fatalf("%s: %+v", when, nics)
		}
		if nics[1].Addr != netip.MustParsePrefix("198.51.100.1/24") || !nics[1].Forwarding ||
			nics[2].Addr != netip.MustParsePrefix("203.0.113.1/24") || !nics[2].Forwarding {
			t.Errorf("%s: NIC 2 %v forwarding %v, NIC 3 %v forwarding %v", when, nics[1].Addr, nics[1].Forwarding, nics[2].Addr, nics[2].Forwarding)
		}
		if v, ok := tg.g.reg.dword(`HKLM\SYSTEM\CurrentControlSet\Services\Tcpip\Parameters`, "IPEnableRouter"); !ok || v != 1 {
			t.Errorf("%s: IPEnableRouter %d %v", when, v, ok)
		}
	}
	check("before reboot")
	tg.reboot()
	check("after reboot") // Windows keeps netsh's persistent store and the registry

	for _, c := range []struct {
		line, out string
	}{
		{`netsh interface ipv4 set address name="Local Area Connection 9" static 198.51.100.1 255.255.255.0`, "The filename, directory name, or volume label syntax is incorrect."},
		{`netsh interface ipv4 set interface "nope" forwarding=enabled`, "Element not found."},
		{`netsh interface ipv4 set address name="wfplab out" static 203.0.113.300 255.255.255.0`, "Invalid address parameter"},
		{`netsh interface ipv4 set address name="wfplab out" static 203.0.113.1 255.0.255.0`, "Invalid mask parameter"},
		{`netsh interface ipv4 set interface "wfplab out" forwarding=maybe`, "The parameter is incorrect."},
		{`netsh interface ipv4 frobnicate`, "The following command was not found"},
	} {
		a := tg.run(c.line)
		if a.code != 1 || !strings.Contains(a.out, c.out) {
			t.Errorf("%s: exit %d, %q; want exit 1 and %q", c.line, a.code, a.out, c.out)
		}
	}
	// A failed command changed nothing; DHCP clears the static address.
	tg.must(`netsh interface ipv4 set address name="wfplab out" source=dhcp`)
	if n := tg.g.NICs()[2]; n.Addr.IsValid() || !n.Forwarding {
		t.Errorf("after dhcp: %+v", n)
	}
}

func TestExtraNICsValidated(t *testing.T) {
	for _, nics := range [][]NIC{
		{{MAC: net.HardwareAddr{1, 2, 3}}},
		{{MAC: nic2MAC}, {MAC: nic2MAC}},
		{{Name: "local area connection", MAC: nic2MAC}},
	} {
		cfg := testConfig()
		cfg.ExtraNICs = nics
		if _, err := NewMachine(MachineSpec{Name: "x", OS: mustOS(t, "win7-x64")}, cfg); err == nil {
			t.Errorf("NICs %+v accepted", nics)
		}
	}
}

func mustOS(t *testing.T, name string) contract.OS {
	t.Helper()
	o, err := contract.LookupOS(name)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// With Linux interfaces behind NICs 2 and 3 (the appliance), configuring both links starts
// the kernel model's frame forwarder from NIC 2 to NIC 3 with the addresses netsh set. The
// interfaces do not exist here, so the attempt is what the log shows (the forwarder itself
// is tested in a network namespace in lab/sim/kernel).
func TestNetshStartsFrameForwarderOnAppliance(t *testing.T) {
	var mu sync.Mutex
	var logs []string
	cfg := testConfig()
	cfg.ExtraNICs = []NIC{{MAC: nic2MAC, Interface: "wfplab-nx1"}, {MAC: nic3MAC, Interface: "wfplab-nx2"}}
	cfg.Logf = func(format string, args ...any) {
		mu.Lock()
		logs = append(logs, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	tg := startGuest(t, "win7-x86", cfg)
	attempts := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, l := range logs {
			if strings.Contains(l, "forward path wfplab-nx1 -> wfplab-nx2 not started: kernel: frame forwarder: interface wfplab-nx1") {
				n++
			}
		}
		return n
	}
	tg.must(`netsh interface ipv4 set address name="Local Area Connection 2" static 198.51.100.1 255.255.255.0`)
	tg.must(`netsh interface ipv4 set address name="Local Area Connection 3" static 203.0.113.1 255.255.255.0`)
	tg.must(`netsh interface ipv4 set interface "Local Area Connection 2" forwarding=enabled`)
	if n := attempts(); n != 0 {
		t.Fatalf("forwarder tried with NIC 3 not forwarding yet (%d attempts)", n)
	}
	tg.must(`netsh interface ipv4 set interface "Local Area Connection 3" forwarding=enabled`)
	if n := attempts(); n != 1 {
		t.Fatalf("%d forwarder attempts after both links were configured, want 1; log:\n%s", n, strings.Join(logs, "\n"))
	}
	tg.reboot() // and again at every boot
	if n := attempts(); n != 2 {
		t.Fatalf("%d forwarder attempts after a reboot, want 2", n)
	}
}

// Fragment grouping is off on a new guest, as on Windows; netsh's set global turns it on
// at once in the running kernel, show global says so, and a reboot keeps it.
func TestNetshFragmentGrouping(t *testing.T) {
	tg := startGuest(t, "win7-x64", testConfig())
	grouping := func() string {
		t.Helper()
		for _, l := range strings.Split(tg.must(`netsh interface ipv4 show global`).out, "\r\n") {
			if name, val, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(name) == "Group Forwarded Fragments" {
				return strings.TrimSpace(val)
			}
		}
		t.Fatal("show global has no Group Forwarded Fragments line")
		return ""
	}
	if g := grouping(); g != "disabled" || tg.kern().FragmentGrouping() {
		t.Fatalf("a new guest: show global says %q, kernel grouping %v; want disabled", g, tg.kern().FragmentGrouping())
	}
	if a := tg.must(`netsh interface ipv4 set global groupforwardedfragments=enabled`); a.out != "Ok.\r\n\r\n" {
		t.Errorf("set global printed %q", a.out)
	}
	if g := grouping(); g != "enabled" || !tg.kern().FragmentGrouping() {
		t.Fatalf("after set global: show global says %q, kernel grouping %v", g, tg.kern().FragmentGrouping())
	}
	tg.reboot()
	if g := grouping(); g != "enabled" || !tg.kern().FragmentGrouping() {
		t.Fatalf("after a reboot: show global says %q, kernel grouping %v", g, tg.kern().FragmentGrouping())
	}
	if a := tg.run(`netsh interface ipv4 set global groupforwardedfragments=sometimes`); a.code != 1 || !strings.Contains(a.out, "The parameter is incorrect.") {
		t.Errorf("a bad value: exit %d, %q", a.code, a.out)
	}
	tg.must(`netsh int ipv4 set global groupforwardedfragments=disabled`)
	if tg.kern().FragmentGrouping() {
		t.Error("disabled did not turn grouping off")
	}
}
