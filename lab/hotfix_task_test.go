package lab_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wfplab/wfplab/lab"
	"github.com/wfplab/wfplab/lab/contract"
	"github.com/wfplab/wfplab/lab/sim"
)

// A guest whose wusa refuses the remote logon still gets the hotfix: wusa runs as SYSTEM
// from a one-shot scheduled task, its exit code is read back (3010, then "already
// installed": 1 on 6.0, 0x240006 on 6.1), and the task is gone afterwards.
func TestHotfixThroughScheduledTaskWhenWusaRefusesRemote(t *testing.T) {
	for _, osName := range []string{"win7-x64", "vista-sp1-x86"} {
		t.Run(osName, func(t *testing.T) {
			o, _ := contract.LookupOS(osName)
			p := sim.NewProvider([]sim.MachineSpec{{Name: "t-" + osName, OS: o}},
				sim.Config{Seed: 3, RebootDown: 300 * time.Millisecond, WusaRefusesRemote: true})
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			targets, err := p.Up(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Down(context.Background())
			var mu sync.Mutex
			var logs []string
			g, err := lab.Dial(targets[0], lab.Options{RebootPoll: 50 * time.Millisecond, RebootTimeout: 30 * time.Second, OperationTimeout: 5 * time.Second,
				Logf: func(f string, a ...any) { mu.Lock(); logs = append(logs, fmt.Sprintf(f, a...)); mu.Unlock() }})
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
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
			mu.Lock()
			joined := strings.Join(logs, "\n")
			mu.Unlock()
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
