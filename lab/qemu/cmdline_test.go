package qemu

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/wfplab/wfplab/lab/contract"
)

// value returns the argument after flag, failing when flag is absent or repeated.
func value(t *testing.T, argv []string, flag string) string {
	t.Helper()
	var vals []string
	for i, a := range argv {
		if a == flag && i+1 < len(argv) {
			vals = append(vals, argv[i+1])
		}
	}
	if len(vals) != 1 {
		t.Fatalf("%s appears %d times in %q", flag, len(vals), argv)
	}
	return vals[0]
}

func values(argv []string, flag string) []string {
	var vals []string
	for i, a := range argv {
		if a == flag && i+1 < len(argv) {
			vals = append(vals, argv[i+1])
		}
	}
	return vals
}

func testPorts(links bool) vmPorts {
	v := vmPorts{Host: HostPorts{WinRM: 40001, Stream: 40002, Control: 40003}}
	if links {
		l := newForwardLinks(3, 41001, 41002, 41003, 41004)
		v.Links = &l
	}
	return v
}

func TestArgsApplianceWithLinks(t *testing.T) {
	m := Machine{Name: "win7-x64", OS: "win7-x64", Kernel: "/k/vmlinuz", Initrd: "/k/initrd.gz",
		Append: "console=ttyS0 quiet", StateDiskMB: 64, ForwardLinks: true,
		Creds: contract.Credentials{User: "Administrator", Password: "S3cret!pw"}}.withDefaults()
	paths := newVMPaths("/r/run-1", m.Name)
	argv := args(m, 3, AccelTCG, paths, testPorts(true))

	for _, a := range argv {
		if strings.Contains(a, "S3cret") || strings.Contains(a, "Administrator") {
			t.Errorf("credentials on QEMU's command line: %q", a)
		}
	}
	checks := map[string]string{
		"-accel":   "tcg",
		"-m":       "512",
		"-smp":     "1",
		"-display": "none",
		"-kernel":  "/k/vmlinuz",
		"-initrd":  "/k/initrd.gz",
		"-append":  "console=ttyS0 quiet",
		"-pidfile": "/r/run-1/vm/win7-x64/qemu.pid",
		"-qmp":     "unix:qmp.sock,server=on,wait=off",
		"-chardev": "file,id=con0,path=/r/run-1/vm/win7-x64/console.log",
		"-serial":  "chardev:con0",
	}
	for flag, want := range checks {
		if got := value(t, argv, flag); got != want {
			t.Errorf("%s %q, want %q", flag, got, want)
		}
	}
	for _, f := range []string{"-nodefaults", "-no-user-config"} {
		if !slices.Contains(argv, f) {
			t.Errorf("%s missing", f)
		}
	}
	if slices.Contains(argv, "-no-reboot") {
		t.Errorf("-no-reboot would turn a guest reboot into QEMU's exit")
	}
	netdevs := values(argv, "-netdev")
	wantNet := []string{
		"user,id=n0,hostfwd=tcp:127.0.0.1:40001-:5985,hostfwd=tcp:127.0.0.1:40002-:5001,hostfwd=udp:127.0.0.1:40003-:5002",
		"dgram,id=n1,local.type=inet,local.host=127.0.0.1,local.port=41001,remote.type=inet,remote.host=127.0.0.1,remote.port=41002",
		"dgram,id=n2,local.type=inet,local.host=127.0.0.1,local.port=41003,remote.type=inet,remote.host=127.0.0.1,remote.port=41004",
	}
	if !slices.Equal(netdevs, wantNet) {
		t.Errorf("netdevs:\n%q\nwant\n%q", netdevs, wantNet)
	}
	devices := values(argv, "-device")
	wantDev := []string{
		"virtio-blk-pci,drive=state,serial=wfplab-state",
		"virtio-net-pci,netdev=n0,mac=52:54:00:76:03:01",
		"virtio-net-pci,netdev=n1,mac=52:54:00:77:03:02",
		"virtio-net-pci,netdev=n2,mac=52:54:00:77:03:03",
	}
	if !slices.Equal(devices, wantDev) {
		t.Errorf("devices:\n%q\nwant\n%q", devices, wantDev)
	}
	if d := values(argv, "-drive"); len(d) != 1 || d[0] != "file=/r/run-1/vm/win7-x64/state.raw,format=raw,if=none,id=state" {
		t.Errorf("drives %q: want only the state disk (no image given)", d)
	}
}

func TestArgsImageWithoutLinksAndCommasInPaths(t *testing.T) {
	m := Machine{Name: "vista", OS: "vista-sp1-x86", Image: "/img/vista.qcow2", MemoryMB: 1024, CPUs: 2,
		CPU: "qemu64", NICModel: "e1000", Creds: contract.Credentials{User: "u"}}.withDefaults()
	paths := newVMPaths("/r/a,b", m.Name)
	argv := args(m, 0, AccelKVM, paths, testPorts(false))
	if got := value(t, argv, "-drive"); got != "file=/r/a,,b/vm/vista/disk.qcow2,format=qcow2,if=ide,index=0,media=disk" {
		t.Errorf("-drive %q: the overlay (never the base) with the comma doubled", got)
	}
	if got := value(t, argv, "-chardev"); got != "file,id=con0,path=/r/a,,b/vm/vista/console.log" {
		t.Errorf("-chardev %q", got)
	}
	if got := value(t, argv, "-pidfile"); got != "/r/a,b/vm/vista/qemu.pid" {
		t.Errorf("-pidfile %q is a plain path, not an option string", got)
	}
	for flag, want := range map[string]string{"-accel": "kvm", "-m": "1024", "-smp": "2", "-cpu": "qemu64"} {
		if got := value(t, argv, flag); got != want {
			t.Errorf("%s %q, want %q", flag, got, want)
		}
	}
	if n := len(values(argv, "-netdev")); n != 1 {
		t.Errorf("%d netdevs without forward links, want 1", n)
	}
	if got := value(t, argv, "-device"); got != "e1000,netdev=n0,mac=52:54:00:76:00:01" {
		t.Errorf("-device %q", got)
	}
	for _, f := range []string{"-kernel", "-initrd", "-append"} {
		if slices.Contains(argv, f) {
			t.Errorf("%s without a kernel", f)
		}
	}
}

func TestForwardLinksLayout(t *testing.T) {
	l := newForwardLinks(7, 1, 2, 3, 4)
	if l.A.GuestSock != netip.MustParseAddrPort("127.0.0.1:1") || l.A.HostSock != netip.MustParseAddrPort("127.0.0.1:2") ||
		l.B.GuestSock != netip.MustParseAddrPort("127.0.0.1:3") || l.B.HostSock != netip.MustParseAddrPort("127.0.0.1:4") {
		t.Errorf("sockets: %+v", l)
	}
	for _, c := range []struct {
		link              contract.FrameLink
		prefix, guest, nb string
		gmac, hmac        string
	}{
		{l.A, "198.51.100.0/24", "198.51.100.1", "198.51.100.2", "52:54:00:77:07:02", "52:54:00:78:07:02"},
		{l.B, "203.0.113.0/24", "203.0.113.1", "203.0.113.2", "52:54:00:77:07:03", "52:54:00:78:07:03"},
	} {
		if c.link.GuestIP.Masked().String() != c.prefix || c.link.GuestIP.Addr().String() != c.guest || c.link.HostIP.String() != c.nb ||
			c.link.GuestMAC.String() != c.gmac || c.link.HostMAC.String() != c.hmac {
			t.Errorf("link %+v, want %s guest %s neighbour %s, MACs %s/%s", c.link, c.prefix, c.guest, c.nb, c.gmac, c.hmac)
		}
	}
}

func TestTargetFromVM(t *testing.T) {
	m := Machine{Name: "w7", OS: "win7-x64", Kernel: "k", ForwardLinks: true,
		Creds: contract.Credentials{User: "u", Password: "p"}}.withDefaults()
	v := &vm{m: m, ports: testPorts(true)}
	tg, err := target(v)
	if err != nil {
		t.Fatal(err)
	}
	if tg.Name != "w7" || tg.OS.Name != "win7-x64" || tg.Endpoint.String() != "http://127.0.0.1:40001/wsman" || tg.Creds != m.Creds {
		t.Errorf("target %+v", tg)
	}
	tr := tg.Traffic
	if tr.Stream.String() != "127.0.0.1:40002" || tr.Control.String() != "127.0.0.1:40003" ||
		tr.Forward.String() != "203.0.113.2:5003" || tr.ForwardPrefix.String() != "203.0.113.0/24" {
		t.Errorf("traffic %+v", tr)
	}
	v.m.ForwardLinks, v.ports.Links = false, nil
	if tg, _ := target(v); tg.Traffic.Forward.IsValid() || tg.Traffic.ForwardPrefix.IsValid() {
		t.Errorf("forward addresses without links: %+v", tg.Traffic)
	}
	v.m.OS = "win95"
	if _, err := target(v); err == nil {
		t.Errorf("an unknown OS should fail")
	}
}
