package lab

import (
	"context"
	"errors"
	"time"

	"github.com/wfplab/wfplab/lab/contract"
)

// probeTimeout bounds one probe while rebooting: a guest on its way down may accept a
// connection and never answer, and the next probe must still happen.
func (g *Session) probeTimeout() time.Duration {
	return min(g.opts.CommandTimeout, max(5*g.opts.RebootPoll, 5*time.Second))
}

// Reboot sends `shutdown /r /f /t 0`, then probes BootTime every RebootPoll until the guest
// answers with a new boot time (seeing it down on the way is noted but not required), all
// within RebootTimeout. As Packer's windows-restart does, it records the boot time first;
// a transport error on the shutdown command itself is expected (the guest may go down
// before it answers).
func (g *Session) Reboot(ctx context.Context) error {
	start := time.Now()
	rctx, cancel := context.WithTimeout(ctx, g.opts.RebootTimeout)
	defer cancel()

	pctx, pcancel := context.WithTimeout(rctx, g.opts.CommandTimeout)
	before, err := g.BootTime(pctx)
	pcancel()
	if err != nil {
		return g.errorf("reboot: cannot read the boot time before rebooting, so a restart could not be told apart: %w", err)
	}
	g.logf("rebooting (boot time %s)", before)

	pctx, pcancel = context.WithTimeout(rctx, g.probeTimeout())
	res, err := g.Run(pctx, cmdReboot)
	pcancel()
	switch {
	case err != nil:
		g.logf("the shutdown command got no answer (expected when the guest goes down at once): %v", err)
	case res.Exit == 0, res.Exit == exitShutdownInProgress, res.Exit == exitShutdownScheduled:
	default:
		return g.errorf("reboot: %q was refused with exit code %d: %s; check that the account may shut the guest down",
			cmdReboot, res.Exit, summary(res))
	}

	down := false
	var lastErr error
	timer := time.NewTimer(g.opts.RebootPoll)
	defer timer.Stop()
	for {
		select {
		case <-rctx.Done():
			return g.rebootTimeout(ctx, start, down, lastErr)
		case <-timer.C:
		}
		pctx, pcancel := context.WithTimeout(rctx, g.probeTimeout())
		bt, err := g.BootTime(pctx)
		pcancel()
		switch {
		case err != nil && rctx.Err() != nil:
			// Cut short by the reboot's own deadline: says nothing about the guest.
			return g.rebootTimeout(ctx, start, down, lastErr)
		case err != nil:
			if !down {
				g.logf("down after %v", time.Since(start).Round(time.Millisecond))
				down = true
			}
			lastErr = err
		case bt != before:
			g.logf("back up after %v (boot time %s)", time.Since(start).Round(time.Millisecond), bt)
			return nil
		}
		timer.Reset(g.opts.RebootPoll)
	}
}

func (g *Session) rebootTimeout(ctx context.Context, start time.Time, down bool, lastErr error) error {
	if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return g.errorf("reboot: cancelled after %v (%w); the guest may still be restarting", time.Since(start).Round(time.Millisecond), ctx.Err())
	}
	if !down {
		return g.errorf("reboot: the guest kept answering with its old boot time for %v: the shutdown did not happen; look at the guest (pending dialog, shutdown blocked) and retry",
			time.Since(start).Round(time.Second))
	}
	return g.errorf("reboot: the guest went down and did not answer again within %v (last probe: %v); check the VM's console, restart it by hand if it hangs, or raise the reboot timeout (now %v)",
		time.Since(start).Round(time.Second), lastErr, g.opts.RebootTimeout)
}

// Revive brings a guest back to measuring after something outside the lab broke its
// sampling (an unexpected reboot, the agent dying): it probes every RebootPoll until the
// guest answers, within ctx and RebootTimeout, then makes sure the driver runs (a reboot
// leaves a demand-start driver stopped) and returns the inventory.
func (g *Session) Revive(ctx context.Context) (contract.Inventory, error) {
	start := time.Now()
	rctx, cancel := context.WithTimeout(ctx, g.opts.RebootTimeout)
	defer cancel()
	var lastErr error
	for {
		pctx, pcancel := context.WithTimeout(rctx, g.probeTimeout())
		_, err := g.BootTime(pctx)
		pcancel()
		if err == nil {
			break
		}
		lastErr = err
		t := time.NewTimer(g.opts.RebootPoll)
		select {
		case <-rctx.Done():
			t.Stop()
			return contract.Inventory{}, g.errorf("revive: the guest did not answer within %v (last probe: %v); check the VM's console, restart it by hand if it hangs, or raise the reboot timeout (now %v)",
				time.Since(start).Round(time.Second), lastErr, g.opts.RebootTimeout)
		case <-t.C:
		}
	}
	if err := g.InstallDriver(rctx); err != nil {
		return contract.Inventory{}, err
	}
	inv, err := g.Inventory(rctx)
	if err != nil {
		return contract.Inventory{}, err
	}
	g.logf("revived after %v: netio %s, driver %s", time.Since(start).Round(time.Millisecond), inv.Netio, inv.DrvService)
	return inv, nil
}
