package lab_test

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/wfplab/wfplab/lab"
	"github.com/wfplab/wfplab/lab/contract"
	"github.com/wfplab/wfplab/lab/sim"
)

// TestLabDrivesSim runs the lab's own guest operations (package lab, the code that drives
// real guests) against simulated guests: preflight, tools upload, test signing with its
// reboot, driver install, counters, a sample stream with traffic, and the hotfix with its
// reboot. This is the contract of COMMANDS.md seen from the other side.
func TestLabDrivesSim(t *testing.T) {
	for _, osName := range []string{"win7-x64", "vista-sp1-x86"} {
		t.Run(osName, func(t *testing.T) {
			sl := startSim(t, osName, func(c *sim.Config) { c.Seed = 7 })
			o, g := sl.target.OS, sl.guest
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()

			tools := toolsFor(o.Arch, true)
			inv, err := g.Prepare(ctx, tools)
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			if inv.DrvService != "running" || inv.Netio != o.NetioStock || inv.TestSigning != (o.Arch == "x64") {
				t.Fatalf("inventory after Prepare: %+v", inv)
			}
			if o.Arch == "x64" && sl.boots() != 2 {
				t.Fatalf("x64 needs one reboot for test signing; boots: %d", sl.boots())
			}

			s, err := g.StartSampler(ctx, 50*time.Millisecond)
			if err != nil {
				t.Fatalf("StartSampler: %v", err)
			}
			sendDatagrams(t, sl.target.Traffic.Forward, 4000, 50)
			var last contract.Sample
			deadline := time.After(20 * time.Second)
			for last.Driver.Layers[contract.LayerForward].Classify < 50 {
				select {
				case ev, ok := <-s.Events():
					if !ok {
						t.Fatal("sample stream ended")
					}
					if ev.Err != nil {
						t.Fatalf("sample stream: %v (line %q)", ev.Err, ev.Line)
					}
					last = ev.Sample
				case <-deadline:
					t.Fatalf("the stream never showed the 50 datagrams: %+v", last.Driver)
				}
			}
			if err := s.Stop(ctx); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			c, err := g.Counters(ctx, true)
			if err != nil {
				t.Fatal(err)
			}
			if f := c.Driver.Layers[contract.LayerForward]; f.Blocked != 50 || f.MultiChain != 50 {
				t.Fatalf("counters %+v", f)
			}

			outcome, inv, err := g.InstallHotfix(ctx, sim.HotfixPackage(o.HotfixPackage))
			if err != nil {
				t.Fatalf("InstallHotfix: %v", err)
			}
			if outcome != lab.HotfixInstalled || inv.Netio != o.NetioFixed || contract.NetioState(inv.Netio) != contract.Patched {
				t.Fatalf("after the hotfix: %s %+v", outcome, inv)
			}
			outcome, _, err = g.InstallHotfix(ctx, sim.HotfixPackage(o.HotfixPackage))
			if err != nil || outcome != lab.HotfixAlreadyInstalled {
				t.Fatalf("second install: %s %v", outcome, err)
			}
			// A package for another OS is refused as not applicable (on 6.1: 6.0's wusa answers
			// 1 for both "already installed" and "not applicable", and this guest is patched).
			if o.Version != "6.1" {
				return
			}
			other := "Windows6.1-KB979223-x64.msu"
			if strings.EqualFold(o.HotfixPackage, other) {
				other = "Windows6.0-KB979223-x86.msu"
			}
			bad := sl.target
			bad.OS.HotfixPackage = other
			g2, err := lab.Dial(bad, lab.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer g2.Close()
			if _, _, err := g2.InstallHotfix(ctx, sim.HotfixPackage(other)); err == nil {
				t.Fatal("a package for another OS installed")
			}
		})
	}
}

// sendDatagrams sends count datagrams of size bytes to a guest's traffic address.
func sendDatagrams(t *testing.T, to netip.AddrPort, size, count int) {
	t.Helper()
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(to))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < count; i++ {
		if _, err := c.Write(make([]byte, size)); err != nil {
			t.Fatal(err)
		}
		if i%32 == 31 {
			time.Sleep(time.Millisecond) // let the guest's socket drain
		}
	}
}
