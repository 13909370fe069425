package main

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wfplab/wfplab/internal/freeport"
	"github.com/wfplab/wfplab/lab/sim"
	"github.com/wfplab/wfplab/lab/sim/kernel"
	"github.com/wfplab/wfplab/scenarios"
)

// servedGuest is one `sim serve` guest on fixed loopback ports.
type servedGuest struct{ winrm, stream, control, forward uint16 }

// serveGuest runs sim.Serve as `wfplab sim serve` does, on free fixed ports, until the test ends.
func serveGuest(t *testing.T, osName string, patched bool) servedGuest {
	t.Helper()
	return serveGuestCfg(t, osName, patched, nil)
}

// serveGuestCfg is serveGuest with the guest's configuration tweaked (nil: none).
func serveGuestCfg(t *testing.T, osName string, patched bool, tweak func(*sim.Config)) servedGuest {
	t.Helper()
	var g servedGuest
	for _, p := range []struct {
		port    *uint16
		network string
	}{{&g.winrm, "tcp"}, {&g.stream, "tcp"}, {&g.control, "udp"}, {&g.forward, "udp"}} {
		var err error
		if *p.port, err = freeport.Get(p.network); err != nil {
			t.Fatal(err)
		}
	}
	cfg := sim.DefaultConfig()
	cfg.Noise, cfg.Seed, cfg.RebootDown, cfg.Patched = false, 5, 300*time.Millisecond, patched
	cfg.TrafficPorts = kernel.Ports{Stream: g.stream, Forward: g.forward, Control: g.control}
	if tweak != nil {
		tweak(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	addr := fmt.Sprintf("127.0.0.1:%d", g.winrm)
	go func() { done <- sim.Serve(ctx, osName, addr, cfg, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("sim serve did not stop")
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return g
		}
		if time.Now().After(deadline) {
			t.Fatalf("sim serve %s: WinRM on %s did not answer within 10 s", osName, addr)
		}
	}
}

// The static provider drives `sim serve` guests as it drives a real lab, from the example
// scenario with the guests' ports: the unpatched guest meets every expectation through the
// packages `sim hotfixes` wrote; the one already patched is stopped before phase before
// with ALREADY_PATCHED, and its cells are errors, not failed expectations.
func TestStaticProviderDrivesServedGuests(t *testing.T) {
	sc, err := scenarios.Load(filepath.Join("..", "..", "scenarios", "examples", "static-sim.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if code, out, errs := runCLI(t, "sim", "hotfixes", "--out", filepath.Join(dir, "hotfixes")); code != exitOK {
		t.Fatalf("sim hotfixes: %d %s %s", code, out, errs)
	}
	sc.Lab.HotfixDir = filepath.Join(dir, "hotfixes")
	sc.Timing.Warmup, sc.Timing.Window, sc.Timing.Settle = time.Second, 4*time.Second, 500*time.Millisecond
	sc.Timing.Block = 1500 * time.Millisecond // on, off, on: still judged per blocked chain
	for i, patched := range []bool{false, true} {
		tg := &sc.Targets[i]
		g := serveGuest(t, tg.OS, patched)
		lo := netip.MustParseAddr("127.0.0.1")
		tg.Host, tg.Port, tg.StreamPort, tg.ControlPort = "127.0.0.1", int(g.winrm), int(g.stream), int(g.control)
		tg.ForwardDest, tg.ForwardPrefix = netip.AddrPortFrom(lo, g.forward), netip.PrefixFrom(lo, 32)
	}
	text, err := sc.YAML()
	if err != nil {
		t.Fatal(err)
	}
	file := writeFile(t, dir, "static-sim.yaml", string(text))
	t.Setenv("WFPLAB_USER", "")
	t.Setenv("WFPLAB_PASSWORD", "vagrant")
	out := filepath.Join(dir, "results")
	code, stdout, stderr := runCLI(t, "run", "--scenario", file, "--out", out, "--quiet")
	if code != exitFailure {
		t.Fatalf("exit %d, want 2 (one target could not run)\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "target vista-sp1-x86: phase before: ALREADY_PATCHED: netio.sys 6.0.6001.22659") {
		t.Errorf("the patched target's stop is not explained:\n%s", stderr)
	}
	for _, p := range []string{"stream-burst", "fragment-forward"} {
		if !regexp.MustCompile(`win7-x64\s+before\s+` + p + `\s.*LEAK\s+LEAK ok`).MatchString(stdout) {
			t.Errorf("win7-x64 before %s did not leak as expected:\n%s", p, stdout)
		}
	}
	if n := strings.Count(stdout, "CLEAN ok") + strings.Count(stdout, "LEAK ok"); n != 6 {
		t.Errorf("%d expectations met, want win7-x64's 6:\n%s", n, stdout)
	}
	var js struct {
		Suites []struct {
			Name     string `xml:"name,attr"`
			Failures int    `xml:"failures,attr"`
			Errors   int    `xml:"errors,attr"`
			Skipped  int    `xml:"skipped,attr"`
		} `xml:"testsuite"`
	}
	data, err := os.ReadFile(filepath.Join(onlyRun(t, out), "junit.xml"))
	if err == nil {
		err = xml.Unmarshal(data, &js)
	}
	if err != nil || len(js.Suites) != 2 || js.Suites[1].Name != "vista-sp1-x86" || js.Suites[1].Failures != 0 ||
		js.Suites[1].Errors+js.Suites[1].Skipped != 6 || js.Suites[0].Failures+js.Suites[0].Errors != 0 {
		t.Errorf("junit.xml: %+v, %v; want the patched target's 6 cells as errors or skipped, none failed", js, err)
	}
}
