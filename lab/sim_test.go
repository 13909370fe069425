package lab_test

// Integration: the lab drives simulated guests (lab/sim) through masterzen/winrm over HTTP
// on loopback, with exactly the command lines a real guest gets.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"maps"
	"math/big"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/wfplab/wfplab/lab"
	"github.com/wfplab/wfplab/lab/agentfmt"
	"github.com/wfplab/wfplab/lab/contract"
	"github.com/wfplab/wfplab/lab/sim"
)

const simPassword = "Sim-Secret-Pa55"

// simLab is one simulated guest and a lab session to it.
type simLab struct {
	prov   *sim.Provider
	target contract.Target
	guest  *lab.Session
	log    *logRecorder
}

// startSim brings up one simulated guest of the catalog OS name, with short reboots.
func startSim(t *testing.T, osName string, tweak func(*sim.Config)) *simLab {
	t.Helper()
	o, err := contract.LookupOS(osName)
	if err != nil {
		t.Fatal(err)
	}
	cfg := sim.DefaultConfig()
	cfg.Noise = false
	cfg.Password = simPassword
	cfg.RebootDown = 200 * time.Millisecond
	cfg.ShutdownDelay = 100 * time.Millisecond
	if tweak != nil {
		tweak(&cfg)
	}
	prov := sim.NewProvider([]sim.MachineSpec{{Name: osName, OS: o}}, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	targets, err := prov.Up(ctx)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := prov.Down(ctx); err != nil {
			t.Errorf("sim down: %v", err)
		}
	})
	if err != nil || len(targets) != 1 {
		t.Fatalf("sim up: %v (%d targets)", err, len(targets))
	}
	log := &logRecorder{}
	g := dial(t, targets[0], lab.Options{
		CommandTimeout: 30 * time.Second,
		RebootPoll:     50 * time.Millisecond,
		RebootTimeout:  time.Minute,
		Logf:           log.logf,
	})
	return &simLab{prov: prov, target: targets[0], guest: g, log: log}
}

func (s *simLab) boots() int { return s.prov.Machine(s.target.Name).BootCount() }

// toolsFor builds the guest binaries for an OS: PE images of its machine type, the driver
// signed when signed is set.
func toolsFor(arch string, signed bool) lab.Tools {
	m := uint16(machineX86)
	if arch == "x64" {
		m = machineX64
	}
	t := lab.Tools{Agent: makePE(m, false, 20<<10, 1), Driver: makePE(m, signed, 12<<10, 2)}
	if signed {
		t.Cert = testCert
	}
	return t
}

// testCert is a self-signed DER certificate like the test-signing one (CN "wfplab test").
var testCert = func() []byte {
	// ECDSA keeps the test fast; the real one is RSA/SHA-1 (docs/windows.md), which the
	// simulated certutil does not tell apart.
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "wfplab test"},
		NotBefore:    time.Unix(0, 0),
		NotAfter:     time.Unix(0, 0).AddDate(100, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	return der
}()

func TestSimPreflight(t *testing.T) {
	t.Parallel()
	s := startSim(t, "win7-x64", nil)
	ctx := context.Background()
	p, err := s.guest.Preflight(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p != (lab.Preflight{Version: "6.1", Build: "7600", Arch: "x64"}) {
		t.Fatalf("preflight %+v", p)
	}
	bt, err := s.guest.BootTime(ctx)
	if err != nil || len(bt) < 14 {
		t.Fatalf("boot time %q, %v", bt, err)
	}

	// The same guest, claimed to be something else.
	vista, _ := contract.LookupOS("vista-sp1-x86")
	wrong := s.target
	wrong.OS = vista
	g := dial(t, wrong, lab.Options{CommandTimeout: 30 * time.Second})
	_, err = g.Preflight(ctx)
	if err == nil {
		t.Fatal("a win7-x64 guest passed preflight as vista-sp1-x86")
	}
	for _, want := range []string{"version 6.1, not 6.0", "build 7600, not 6001", "architecture x64, not x86", "vista-sp1-x86"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

func TestSimPreflightX86(t *testing.T) {
	t.Parallel()
	s := startSim(t, "vista-sp1-x86", nil)
	p, err := s.guest.Preflight(context.Background())
	if err != nil || p != (lab.Preflight{Version: "6.0", Build: "6001", Arch: "x86"}) {
		t.Fatalf("preflight %+v, %v", p, err)
	}
}

func TestSimUploadRoundTrip(t *testing.T) {
	t.Parallel()
	s := startSim(t, "win7-x64", nil)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(7, 7))
	for i, size := range []int{300 << 10, 1, 7600*3/4 + 1} { // multi-chunk, tiny, just over one chunk
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		path := lab.GuestDir + `\blob.bin`
		if err := s.guest.Upload(ctx, data, path); err != nil {
			t.Fatalf("upload %d (%d bytes): %v", i, size, err)
		}
		// Check independently of Upload's own check: hash the file on the guest again.
		res, err := s.guest.Run(ctx, `certutil -hashfile `+path)
		if err != nil || res.Exit != 0 {
			t.Fatalf("hashfile: %+v, %v", res, err)
		}
		sum := sha1.Sum(data)
		want := hex.EncodeToString(sum[:])
		if got := strings.ReplaceAll(strings.ToLower(res.Stdout), " ", ""); !strings.Contains(got, want) {
			t.Fatalf("upload %d: guest hash output %q lacks %s", i, res.Stdout, want)
		}
		res, err = s.guest.Run(ctx, `if exist `+path+`.b64 echo stale`)
		if err != nil || strings.Contains(res.Stdout, "stale") {
			t.Fatalf("the .b64 was left behind: %+v, %v", res, err)
		}
	}
	if err := s.guest.Upload(ctx, nil, lab.GuestDir+`\empty.bin`); err == nil {
		t.Fatal("empty upload accepted")
	}
	if err := s.guest.Upload(ctx, []byte("x"), `C:\with space\x`); err == nil {
		t.Fatal("path with a space accepted")
	}
}

func TestSimPrepareX86(t *testing.T) {
	t.Parallel()
	s := startSim(t, "win7-x86", nil)
	inv, err := s.guest.Prepare(context.Background(), toolsFor("x86", false))
	if err != nil {
		t.Fatalf("prepare: %v\nlog:\n%s", err, s.log.text())
	}
	if inv.Arch != "x86" || inv.OSVersion != "6.1" || inv.DrvService != "running" || inv.TestSigning {
		t.Fatalf("inventory %+v", inv)
	}
	if contract.NetioState(inv.Netio) != contract.Unpatched {
		t.Fatalf("fresh guest netio %s is %s", inv.Netio, contract.NetioState(inv.Netio))
	}
	if n := s.boots(); n != 1 {
		t.Fatalf("x86 needs no reboot, but the guest booted %d times", n)
	}
	st, err := s.guest.DriverState(context.Background())
	if err != nil || st != "RUNNING" {
		t.Fatalf("driver state %q, %v", st, err)
	}
	c, err := s.guest.Counters(context.Background(), false)
	if err != nil || c.Driver.State != "running" {
		t.Fatalf("counters %+v, %v", c, err)
	}
	// Prepare again: the service exists (1073) and runs (1056), both fine.
	if _, err := s.guest.Prepare(context.Background(), toolsFor("x86", false)); err != nil {
		t.Fatalf("second prepare: %v", err)
	}
	// Permit-and-count and back; a stopped driver is an error that says what to do.
	for _, mode := range []string{agentfmt.ModePermit, agentfmt.ModeBlock} {
		if c, err := s.guest.SetDriverMode(context.Background(), mode); err != nil || c.Mode != mode {
			t.Fatalf("SetDriverMode(%s): %+v, %v", mode, c, err)
		}
	}
	if _, err := s.guest.SetDriverMode(context.Background(), "allow"); err == nil || !strings.Contains(err.Error(), "use block or permit") {
		t.Fatalf("SetDriverMode(allow): %v", err)
	}
	if err := s.guest.StopDriver(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err = s.guest.SetDriverMode(context.Background(), agentfmt.ModePermit)
	if err == nil || !strings.Contains(err.Error(), "win7-x86") || !strings.Contains(err.Error(), "driver is not running") {
		t.Fatalf("SetDriverMode with the driver stopped: %v; want an error naming the target and the cause", err)
	}
}

// A target with routed links: Prepare finds NICs 2 and 3 by MAC, gives them their
// addresses and turns forwarding on, with the stock command lines the simulated guest
// answers as Windows does.
func TestSimPrepareConfiguresForwardPath(t *testing.T) {
	t.Parallel()
	in := &contract.FrameLink{GuestMAC: net.HardwareAddr{0x52, 0x54, 0, 0x77, 0, 2}, GuestIP: netip.MustParsePrefix("198.51.100.1/24"),
		HostMAC: net.HardwareAddr{2, 0x77, 0x66, 0, 0, 0x0a}, HostIP: netip.MustParseAddr("198.51.100.2")}
	out := &contract.FrameLink{GuestMAC: net.HardwareAddr{0x52, 0x54, 0, 0x77, 0, 3}, GuestIP: netip.MustParsePrefix("203.0.113.1/24"),
		HostMAC: net.HardwareAddr{2, 0x77, 0x66, 0, 0, 0x0b}, HostIP: netip.MustParseAddr("203.0.113.2")}
	s := startSim(t, "vista-sp1-x86", func(c *sim.Config) {
		c.ExtraNICs = []sim.NIC{{MAC: out.GuestMAC, Name: "Local Area Connection 3"}, {MAC: in.GuestMAC}}
	})
	tgt := s.target
	tgt.Traffic.ForwardIn, tgt.Traffic.ForwardOut = in, out
	g := dial(t, tgt, lab.Options{CommandTimeout: 30 * time.Second, RebootPoll: 50 * time.Millisecond, RebootTimeout: time.Minute})
	if _, err := g.Prepare(context.Background(), toolsFor("x86", false)); err != nil {
		t.Fatalf("prepare: %v", err)
	}
	nics := s.prov.Machine(tgt.Name).NICs()
	byMAC := map[string]sim.NICState{}
	for _, n := range nics {
		byMAC[n.MAC.String()] = n
	}
	for _, l := range []*contract.FrameLink{in, out} {
		n := byMAC[l.GuestMAC.String()]
		if n.Addr != l.GuestIP || !n.Forwarding {
			t.Errorf("NIC %s (%q): address %v, forwarding %v; want %v, on", l.GuestMAC, n.Name, n.Addr, n.Forwarding, l.GuestIP)
		}
	}
	if n := byMAC[nics[0].MAC.String()]; n.Addr.IsValid() || n.Forwarding {
		t.Errorf("the WinRM NIC was touched: %+v", n)
	}

	// A link whose NIC the guest does not have is an error naming the MAC.
	tgt.Traffic.ForwardOut = &contract.FrameLink{GuestMAC: net.HardwareAddr{0x52, 0x54, 0, 9, 9, 9}, GuestIP: out.GuestIP}
	g2 := dial(t, tgt, lab.Options{CommandTimeout: 30 * time.Second})
	err := g2.ConfigureForwarding(context.Background())
	if err == nil || !strings.Contains(err.Error(), "52:54:00:09:09:09") || !strings.Contains(err.Error(), "Local Area Connection 3") {
		t.Errorf("missing NIC: %v", err)
	}
	// Only one link is a provider bug.
	tgt.Traffic.ForwardOut = nil
	if err := dial(t, tgt, lab.Options{CommandTimeout: 30 * time.Second}).ConfigureForwarding(context.Background()); err == nil {
		t.Error("a target with only ForwardIn was accepted")
	}
}

func TestSimPrepareX64NeedsTestSigningReboot(t *testing.T) {
	t.Parallel()
	s := startSim(t, "win7-x64", nil)
	inv, err := s.guest.Prepare(context.Background(), toolsFor("x64", true))
	if err != nil {
		t.Fatalf("prepare: %v\nlog:\n%s", err, s.log.text())
	}
	if !inv.TestSigning || inv.DrvService != "running" || inv.Arch != "x64" {
		t.Fatalf("inventory %+v", inv)
	}
	if n := s.boots(); n != 2 {
		t.Fatalf("want exactly one reboot (2 boots), got %d boots", n)
	}
	if l := s.log.text(); !strings.Contains(l, "test signing is off") || !strings.Contains(l, "back up after") {
		t.Fatalf("log:\n%s", l)
	}
	// Already on: no second reboot.
	rebooted, err := s.guest.EnsureTestSigning(context.Background())
	if err != nil || rebooted || s.boots() != 2 {
		t.Fatalf("EnsureTestSigning again: rebooted %v, %v, boots %d", rebooted, err, s.boots())
	}
}

func TestSimInstallDriverWithoutTestSigning(t *testing.T) {
	t.Parallel()
	s := startSim(t, "2008r2-x64", nil)
	ctx := context.Background()
	if err := s.guest.InstallTools(ctx, toolsFor("x64", true)); err != nil {
		t.Fatal(err)
	}
	err := s.guest.InstallDriver(ctx)
	if err == nil {
		t.Fatal("a test-signed driver loaded on x64 without test signing")
	}
	for _, want := range []string{s.target.Name + ": ", "577", "test signing", "reboot"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

func TestSimInstallDriverWrongMachine(t *testing.T) {
	t.Parallel()
	s := startSim(t, "win7-x86", nil)
	ctx := context.Background()
	tools := toolsFor("x86", false)
	tools.Driver = makePE(machineX64, false, 4<<10, 3)
	if err := s.guest.InstallTools(ctx, tools); err != nil {
		t.Fatal(err)
	}
	err := s.guest.InstallDriver(ctx)
	if err == nil || !strings.Contains(err.Error(), "193") || !strings.Contains(err.Error(), "built for x86") {
		t.Fatalf("error %v", err)
	}
}

func TestSimInstallHotfix(t *testing.T) {
	t.Parallel()
	s := startSim(t, "win7-x64", nil)
	ctx := context.Background()
	if _, err := s.guest.Prepare(ctx, toolsFor("x64", true)); err != nil {
		t.Fatal(err)
	}
	before := s.boots()
	msu := makeMSU(64<<10, 9)
	outcome, inv, err := s.guest.InstallHotfix(ctx, msu)
	if err != nil {
		t.Fatalf("hotfix: %v\nlog:\n%s", err, s.log.text())
	}
	if outcome != lab.HotfixInstalled {
		t.Fatalf("outcome %s", outcome)
	}
	if contract.NetioState(inv.Netio) != contract.Patched || inv.Netio != s.target.OS.NetioFixed {
		t.Fatalf("netio after hotfix %s (%s), want %s", inv.Netio, contract.NetioState(inv.Netio), s.target.OS.NetioFixed)
	}
	if inv.DrvService != "running" {
		t.Fatalf("driver not restarted after the hotfix reboot: %+v", inv)
	}
	if s.boots() != before+1 {
		t.Fatalf("boots %d, want %d", s.boots(), before+1)
	}
	// The inventory agrees when read again.
	again, err := s.guest.Inventory(ctx)
	if err != nil || again.Netio != inv.Netio {
		t.Fatalf("inventory %+v, %v", again, err)
	}

	// A second install: already installed, no reboot.
	outcome, inv, err = s.guest.InstallHotfix(ctx, msu)
	if err != nil || outcome != lab.HotfixAlreadyInstalled || contract.NetioState(inv.Netio) != contract.Patched {
		t.Fatalf("second install: %s %+v %v", outcome, inv, err)
	}
	if s.boots() != before+1 {
		t.Fatalf("already installed, yet rebooted (boots %d)", s.boots())
	}
}

func TestSimHotfixNotApplicable(t *testing.T) {
	t.Parallel()
	s := startSim(t, "win7-x86", nil)
	// Claim the x64 package for this x86 guest: wusa says not applicable.
	target := s.target
	target.OS.HotfixPackage = "Windows6.1-KB979223-x64.msu"
	g := dial(t, target, lab.Options{CommandTimeout: 30 * time.Second})
	_, _, err := g.InstallHotfix(context.Background(), makeMSU(4<<10, 1))
	if err == nil || !strings.Contains(err.Error(), "does not apply") || !strings.Contains(err.Error(), "0x80240017") {
		t.Fatalf("error %v", err)
	}
}

func TestSimRebootBoundedWhenGuestNeverReturns(t *testing.T) {
	t.Parallel()
	s := startSim(t, "win7-x86", func(c *sim.Config) { c.RebootDown = time.Hour })
	g := dial(t, s.target, lab.Options{CommandTimeout: 30 * time.Second, RebootPoll: 50 * time.Millisecond, RebootTimeout: 3 * time.Second})
	errc := make(chan error, 1)
	go func() { errc <- g.Reboot(context.Background()) }()
	// Once the guest is down, power the whole provider off: it never comes back.
	deadline := time.Now().Add(30 * time.Second)
	for s.prov.Machine(s.target.Name).Up() {
		if time.Now().After(deadline) {
			t.Fatal("the guest never went down")
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.prov.Down(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "did not answer again") {
			t.Fatalf("error %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Reboot did not return")
	}
}

func TestSimFailedLoginKeepsPasswordSecret(t *testing.T) {
	t.Parallel()
	s := startSim(t, "win7-x86", nil)
	target := s.target
	const wrong = "Not-The-Sim-Password-42"
	target.Creds.Password = wrong
	var log logRecorder
	g := dial(t, target, lab.Options{CommandTimeout: 30 * time.Second, Logf: log.logf})
	_, err := g.Prepare(context.Background(), toolsFor("x86", false))
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("error %v", err)
	}
	for _, secret := range []string{wrong, simPassword} {
		if strings.Contains(err.Error(), secret) || strings.Contains(log.text(), secret) {
			t.Fatalf("password in error or log: %v\n%s", err, log.text())
		}
	}
}

func TestSimSampler(t *testing.T) {
	t.Parallel()
	s := startSim(t, "win7-x86", func(c *sim.Config) { c.Noise = true })
	ctx := context.Background()
	if _, err := s.guest.Prepare(ctx, toolsFor("x86", false)); err != nil {
		t.Fatal(err)
	}
	sm, err := s.guest.StartSampler(ctx, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if h := sm.Header(); h.Agent != "wfplab-agent" || h.IntervalMS != 50 || h.Arch != "x86" {
		t.Fatalf("header %+v", h)
	}
	var tr contract.TagTable
	var samples []contract.Sample
	var tags map[string]contract.TagUsage
	for ev := range sm.Events() {
		if ev.Err != nil {
			t.Fatalf("event error: %v (line %q)", ev.Err, ev.Line)
		}
		samples = append(samples, ev.Sample)
		tr.Apply(ev.Sample.Seq, ev.Sample.ChangedTags)
		tags = maps.Clone(tr.Tags())
		if len(samples) == 6 {
			break
		}
	}
	if err := sm.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for ev := range sm.Events() {
		if ev.Err != nil {
			t.Fatalf("error after stop: %v", ev.Err)
		}
		samples = append(samples, ev.Sample)
	}
	for i, smp := range samples {
		if smp.Seq != uint64(i) {
			t.Fatalf("sample %d has seq %d", i, smp.Seq)
		}
		if i > 0 && smp.TimeUS <= samples[i-1].TimeUS {
			t.Fatalf("guest time went back: %d then %d", samples[i-1].TimeUS, smp.TimeUS)
		}
		if smp.NPBytes == 0 || smp.Driver.State != "running" || len(smp.Driver.Layers) != 3 {
			t.Fatalf("sample %d: %+v", i, smp)
		}
	}
	if len(tags) == 0 || tr.Gaps() != 0 {
		t.Fatalf("tag table %v, gaps %d", tags, tr.Gaps())
	}
}

// A driver that is gone after the hotfix reboot would make the whole after phase a CLEAN
// that tested nothing: the hotfix step fails instead, saying so.
func TestSimHotfixRefusesAnAbsentDriver(t *testing.T) {
	t.Parallel()
	s := startSim(t, "win7-x86", nil)
	ctx := context.Background()
	if err := s.guest.InstallTools(ctx, toolsFor("x86", false)); err != nil {
		t.Fatal(err)
	}
	_, _, err := s.guest.InstallHotfix(ctx, makeMSU(64<<10, 9))
	if err == nil || !strings.Contains(err.Error(), "absent") || !strings.Contains(err.Error(), "win7-x86") {
		t.Fatalf("hotfix with no driver installed: %v; want an error naming the target and the absent driver", err)
	}
}
