package lab_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wfplab/wfplab/lab"
	"github.com/wfplab/wfplab/lab/sim"
)

// A guest whose wusa refuses the remote logon still gets the hotfix: wusa runs as SYSTEM
// from a one-shot scheduled task, its exit code is read back (3010, then "already
// installed": 1 on 6.0, 0x240006 on 6.1), and the task is gone afterwards.
func TestHotfixThroughScheduledTaskWhenWusaRefusesRemote(t *testing.T) {
	for _, osName := range []string{"win7-x64", "vista-sp1-x86"} {
		t.Run(osName, func(t *testing.T) {
			s := startSim(t, osName, func(c *sim.Config) { c.Seed, c.WusaRefusesRemote = 3, true })
			o, g := s.target.OS, s.guest
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if _, err := g.Prepare(ctx, toolsFor(o.Arch, true)); err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			msu := sim.HotfixPackage(o.HotfixPackage)
			// Over WinRM, wusa itself is refused.
			if err := g.Upload(ctx, msu, `C:\wfplab\direct.msu`); err != nil {
				t.Fatal(err)
			}
			if res, err := g.Run(ctx, `wusa C:\wfplab\direct.msu /quiet /norestart`); err != nil || res.Exit != -2147024891 {
				t.Fatalf("direct wusa: %+v %v, want 0x80070005", res, err)
			}
			outcome, inv, err := g.InstallHotfix(ctx, msu)
			if err != nil || outcome != lab.HotfixInstalled || inv.Netio != o.NetioFixed {
				t.Fatalf("InstallHotfix: %s %+v %v", outcome, inv, err)
			}
			joined := s.log.text()
			if !strings.Contains(joined, "running it as SYSTEM from a scheduled task") {
				t.Errorf("no fallback in the log:\n%s", joined)
			}
			if outcome, _, err := g.InstallHotfix(ctx, msu); err != nil || outcome != lab.HotfixAlreadyInstalled {
				t.Fatalf("second install: %s %v", outcome, err)
			}
			if res, err := g.Run(ctx, `schtasks /query /tn wfplab-kb979223 /fo list /v`); err != nil || res.Exit == 0 {
				t.Errorf("the task is still there: %+v %v", res, err)
			}
		})
	}
}
