package sim

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wfplab/wfplab/lab"
	"github.com/wfplab/wfplab/lab/agent"
)

// TestLabDrivesSim runs the lab's own guest operations (package lab, the code that drives
// real guests) against simulated guests: preflight, tools upload, test signing with its
// reboot, driver install, counters, a sample stream with traffic, and the hotfix with its
// reboot. This is the contract of COMMANDS.md seen from the other side.
func TestLabDrivesSim(t *testing.T) {
	for _, osName := range []string{"win7-x64", "vista-sp1-x86"} {
		t.Run(osName, func(t *testing.T) {
			o, _ := lab.LookupOS(osName)
			p := NewProvider([]GuestSpec{{Name: "t-" + osName, OS: o}}, testConfig())
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			targets, err := p.Up(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Down(context.Background())
			g, err := lab.Dial(targets[0], lab.Options{RebootPoll: 50 * time.Millisecond, RebootTimeout: 30 * time.Second, OperationTimeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()

			machine := uint16(machineAMD64)
			if o.Arch == "x86" {
				machine = machineI386
			}
			tools := lab.Tools{Agent: buildPE(machineI386, false), Driver: buildPE(machine, true), Cert: selfSignedCert(t, "wfplab test")}
			inv, err := g.Prepare(ctx, tools)
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			if inv.DrvService != "running" || inv.Netio != o.NetioStock || inv.TestSigning != (o.Arch == "x64") {
				t.Fatalf("inventory after Prepare: %+v", inv)
			}
			if o.Arch == "x64" && p.Guest("t-"+osName).BootCount() != 2 {
				t.Fatalf("x64 needs one reboot for test signing; boots: %d", p.Guest("t-"+osName).BootCount())
			}

			s, err := g.StartSampler(ctx, 50*time.Millisecond)
			if err != nil {
				t.Fatalf("StartSampler: %v", err)
			}
			sendUDP(t, targets[0].Traffic.Forward, 4000, 50)
			var last agent.Sample
			deadline := time.After(20 * time.Second)
			for last.Driver.Layers[agent.LayerForward].Classify < 50 {
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
			if f := c.Driver.Layers[agent.LayerForward]; f.Blocked != 50 || f.MultiChain != 50 {
				t.Fatalf("counters %+v", f)
			}

			outcome, inv, err := g.InstallHotfix(ctx, HotfixPackage(o.HotfixPackage))
			if err != nil {
				t.Fatalf("InstallHotfix: %v", err)
			}
			if outcome != lab.HotfixInstalled || inv.Netio != o.NetioFixed || lab.NetioState(inv.Netio) != lab.Patched {
				t.Fatalf("after the hotfix: %s %+v", outcome, inv)
			}
			outcome, _, err = g.InstallHotfix(ctx, HotfixPackage(o.HotfixPackage))
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
			bad := targets[0]
			bad.OS.HotfixPackage = other
			g2, err := lab.Dial(bad, lab.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer g2.Close()
			if _, _, err := g2.InstallHotfix(ctx, HotfixPackage(other)); err == nil {
				t.Fatal("a package for another OS installed")
			}
		})
	}
}
