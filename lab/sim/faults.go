package sim

import (
	"sync/atomic"
	"time"

	"github.com/wfplab/wfplab/lab/sim/wsman"
)

// Injected faults (Config.Faults): misbehaviour on purpose, so tests can check that the lab
// survives what real guests and networks do now and then. A machine counts requests across
// boots, so "every Nth" stays periodic through reboots.

// faultCounters counts what the injector has seen.
type faultCounters struct {
	requests, receives atomic.Uint64
}

// injector is the WinRM server's Inject for this machine, or nil without WinRM faults.
func (g *Machine) injector() func(string) wsman.Injection {
	f := g.cfg.Faults
	if f.DropReceiveEvery == 0 && f.HTTP500Every == 0 && f.SlowEvery == 0 {
		return nil
	}
	return func(action string) wsman.Injection {
		var in wsman.Injection
		n := g.faultCount.requests.Add(1)
		if f.SlowEvery > 0 && n%uint64(f.SlowEvery) == 0 {
			in.Delay = f.SlowBy
		}
		if f.HTTP500Every > 0 && n%uint64(f.HTTP500Every) == 0 {
			in.Fail = true
			g.logf("fault: HTTP 500 for request %d (%s)", n, action)
		}
		if action == wsman.ActionReceive && f.DropReceiveEvery > 0 {
			if r := g.faultCount.receives.Add(1); r%uint64(f.DropReceiveEvery) == 0 {
				in.Drop = true
				g.logf("fault: dropping the connection of Receive %d", r)
			}
		}
		return in
	}
}

// crashEvery reboots the guest unexpectedly once this boot has been up RebootEvery, down
// for RebootDown (the usual reboot time when 0).
func (g *Machine) crashEvery(b *boot) {
	f := g.cfg.Faults
	t := time.NewTimer(f.RebootEvery - b.uptime() + b.offset)
	defer t.Stop()
	select {
	case <-b.down:
		return
	case <-g.stop:
		return
	case <-t.C:
	}
	down := f.RebootDown
	if down <= 0 {
		down = g.cfg.RebootDown
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cur != b || g.closed || g.shutdown.phase == shutdownInProgress {
		return
	}
	g.logf("fault: unexpected reboot after %v up; down for %v", f.RebootEvery, down)
	if g.shutdown.timer != nil {
		g.shutdown.timer.Stop()
	}
	g.shutdown.phase = shutdownInProgress
	g.wg.Add(1)
	go g.powerCycleFor(true, 0, down)
}
