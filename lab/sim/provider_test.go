package sim

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/masterzen/winrm"
	"github.com/wfplab/wfplab/lab/contract"
)

// TestRebootAnswersBeforeGoingDown: exit 0 arrives, WinRM and the traffic sockets refuse
// while down, and the guest comes back on the same addresses with a new boot.
func TestRebootAnswersBeforeGoingDown(t *testing.T) {
	cfg := testConfig()
	cfg.ShutdownDelay = time.Second
	tg := startGuest(t, "win7-x64", cfg)
	before := tg.g.Target()
	bt := tg.bootTime()
	check(t, tg.run(`shutdown /r /f /t 0`), answer{"", "", 0})
	winrmAddr := net.JoinHostPort(before.Endpoint.Host, itoa(before.Endpoint.Port))
	eventually(t, 10*time.Second, "WinRM to refuse", func() bool { return refused(winrmAddr) })
	if !refused(before.Traffic.Stream.String()) {
		t.Fatal("the stream socket accepts while the guest is down")
	}
	if tg.g.Up() {
		t.Fatal("guest says it is up while WinRM refuses")
	}
	eventually(t, 10*time.Second, "WinRM to answer again", func() bool { return !refused(winrmAddr) })
	after := tg.g.Target()
	if after.Endpoint.Port != before.Endpoint.Port || after.Traffic != before.Traffic {
		t.Fatalf("addresses changed across the reboot: %+v -> %+v", before, after)
	}
	if tg.bootTime() == bt || tg.g.BootCount() != 2 {
		t.Fatal("no new boot")
	}
	if refused(after.Traffic.Stream.String()) {
		t.Fatal("the stream socket did not come back")
	}
}

func TestProviderUpDown(t *testing.T) {
	var specs []MachineSpec
	for _, o := range contract.Catalog() {
		specs = append(specs, MachineSpec{Name: o.Name, OS: o})
	}
	specs = append(specs, MachineSpec{Name: "win7-x64", OS: specs[0].OS}) // duplicate name
	bad := specs[0].OS
	bad.Arch = "ia64"
	specs = append(specs, MachineSpec{Name: "itanium", OS: bad})
	p := NewProvider(specs, testConfig())
	if p.Name() != "sim" {
		t.Fatal(p.Name())
	}
	targets, err := p.Up(context.Background())
	if err == nil || !strings.Contains(err.Error(), "used twice") || !strings.Contains(err.Error(), "ia64") {
		t.Fatalf("want errors for the duplicate and the ia64 guest, got %v", err)
	}
	if len(targets) != len(contract.Catalog()) {
		t.Fatalf("%d targets up, want %d", len(targets), len(contract.Catalog()))
	}
	seen := map[int]bool{}
	for _, tgt := range targets {
		if seen[tgt.Endpoint.Port] || tgt.Endpoint.Host != "127.0.0.1" || tgt.Creds.User != "vagrant" || tgt.Creds.Password != "vagrant" {
			t.Fatalf("target %+v", tgt)
		}
		seen[tgt.Endpoint.Port] = true
		if tgt.Traffic.ForwardPrefix.String() != "127.0.0.1/32" || !tgt.Traffic.Stream.IsValid() || !tgt.Traffic.Control.IsValid() || !tgt.Traffic.Forward.IsValid() {
			t.Fatalf("traffic %+v", tgt.Traffic)
		}
		o, _ := contract.LookupOS(tgt.Name)
		if tgt.OS != o {
			t.Fatalf("target %s claims %+v", tgt.Name, tgt.OS)
		}
	}
	if strings.Contains(err.Error(), "vagrant") {
		t.Fatal("an error mentions the password")
	}
	if _, err := p.Up(context.Background()); err == nil {
		t.Fatal("Up twice")
	}
	if err := p.Down(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, tgt := range targets {
		if !refused(tgt.Endpoint.Host + ":" + itoa(tgt.Endpoint.Port)) {
			t.Fatalf("%s still listening after Down", tgt.Name)
		}
	}
}

func TestServe(t *testing.T) {
	t.Setenv(PasswordEnv, "s3cret-pw")
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, "win7-x86", "127.0.0.1:0", testConfig(), pw); pw.Close() }()
	sc := bufio.NewScanner(pr)
	var url string
	for sc.Scan() {
		l := sc.Text()
		if strings.Contains(l, "s3cret") {
			t.Fatal("Serve printed the password")
		}
		if i := strings.Index(l, "http://"); i >= 0 {
			url = strings.Fields(l[i:])[0]
		}
		if strings.Contains(l, "control") {
			break
		}
	}
	go io.Copy(io.Discard, pr)
	hostPort := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/wsman")
	ap, err := netip.ParseAddrPort(hostPort)
	if err != nil {
		t.Fatalf("url %q: %v", url, err)
	}
	ep := winrm.NewEndpoint(ap.Addr().String(), int(ap.Port()), false, false, nil, nil, nil, 30*time.Second)
	c, err := winrm.NewClientWithParameters(ep, "vagrant", "s3cret-pw", winrm.NewParameters("PT20S", "en-US", 153600))
	if err != nil {
		t.Fatal(err)
	}
	out, _, code, err := c.RunWithContextWithString(context.Background(), "ver", "")
	if err != nil || code != 0 || !strings.Contains(out, "6.1.7600") {
		t.Fatalf("ver: %q %d %v", out, code, err)
	}
	cancel()
	waitServed(t, done)
	if !refused(hostPort) {
		t.Fatal("still listening after Serve returned")
	}
	if err := Serve(context.Background(), "win7-x86", "192.0.2.1:5985", testConfig(), nil); err == nil {
		t.Fatal("Serve on a non-loopback address")
	}
	if err := Serve(context.Background(), "win95", "127.0.0.1:0", testConfig(), nil); err == nil {
		t.Fatal("Serve of an unknown OS")
	}
}

func TestHotfixPackagesFS(t *testing.T) {
	fsys := HotfixPackages()
	seen := 0
	for _, o := range contract.Catalog() {
		data := mustRead(t, fsys, o.HotfixPackage)
		if !strings.HasPrefix(string(data), "MSCF") || !strings.Contains(string(data), "SIMULATED") {
			t.Fatalf("%s: %q", o.HotfixPackage, data)
		}
		seen++
	}
	if seen != 6 {
		t.Fatal(seen)
	}
}

// The per-guest seed is stable and distinct.
func TestGuestSeeds(t *testing.T) {
	a1, a1again := guestSeed(1, "a"), guestSeed(1, "a")
	if a1 != a1again || a1 == guestSeed(1, "b") || a1 == guestSeed(2, "a") {
		t.Fatal("guest seeds")
	}
	if computerName("win7-x64") != "win7-x64" || computerName("a_very_long_guest_name_here") != "a-very-long-gue" || computerName("!!") != "WFPLAB-SIM" {
		t.Fatal(computerName("a_very_long_guest_name_here"))
	}
}

// TestIPv6Loopback: a guest on ::1 works end to end, traffic included.
func TestIPv6Loopback(t *testing.T) {
	if l, err := net.Listen("tcp", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	} else {
		l.Close()
	}
	cfg := testConfig()
	cfg.ListenHost = "::1"
	tg := startGuest(t, "win7-x86", cfg)
	tgt := tg.g.Target()
	if tgt.Traffic.ForwardPrefix.String() != "::1/128" || !tgt.Traffic.Forward.Addr().Is6() {
		t.Fatalf("traffic %+v", tgt.Traffic)
	}
	installDriver(t, tg)
	sendUDP(t, tgt.Traffic.Forward, 3000, 20)
	eventually(t, 10*time.Second, "forward datagrams over ::1", func() bool {
		return counters(t, tg, "counters").Layers[contract.LayerForward].Blocked == 20
	})
}
