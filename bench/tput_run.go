package bench

import (
	"context"
	"errors"
	"fmt"

	"github.com/wfplab/wfplab/scenarios"
)

// ModeSetter is a Guest whose driver can switch between blocking and permit-and-count
// (lab.Session.SetDriverMode); throughput windows need one.
type ModeSetter interface {
	SetDriverMode(ctx context.Context, permit bool) error
}

// EventThroughput records the throughput windows' mode switches and skips.
const EventThroughput = "throughput"

// TputStep is the progress step of a throughput window: "<profile> throughput".
func TputStep(profile string) string { return profile + " throughput" }

// throughput switches the driver to permit-and-count, offers each profile in the
// scenario's repeated throughput windows, and switches it back to block, also when a
// window failed: a phase after this one must measure the bug again.
func (t *targetRun) throughput(ctx context.Context, phase string, samplerEnded <-chan struct{}) (err error) {
	tp := t.Scenario.Throughput
	ms, ok := t.rt.Guest.(ModeSetter)
	if !ok {
		t.event(phase, EventThroughput, "skipped: this guest cannot switch its driver to permit mode")
		return nil
	}
	setMode := func(ctx context.Context, permit bool) error {
		_, err := bounded(ctx, t.guestTimeout(), "set driver mode", func(ctx context.Context) (struct{}, error) {
			return struct{}{}, ms.SetDriverMode(ctx, permit)
		})
		return err
	}
	if err := setMode(ctx, true); err != nil {
		return fmt.Errorf("throughput: driver to permit mode: %w", err)
	}
	t.event(phase, EventThroughput, "driver in permit-and-count mode")
	defer func() {
		// Even when ctx ended: a driver left permitting would hide the bug.
		if berr := setMode(context.WithoutCancel(ctx), false); berr != nil {
			err = errors.Join(err, fmt.Errorf("throughput: driver back to block mode: %w; restart it (sc stop, sc start) before measuring a leak", berr))
			return
		}
		t.event(phase, EventThroughput, "driver back in block mode")
	}()
	var errs []error
	for _, p := range t.Scenario.Profiles {
		// A window the host could not offer at 90% of the rate is left out of the analysis,
		// so it is run again, up to as many extra windows as asked (a bound on a starved host).
		for i, usable := 0, 0; usable < tp.Windows && i < 2*tp.Windows; i++ {
			tw, werr := t.tputWindow(ctx, phase, p, i, samplerEnded)
			if werr == nil {
				if !tw.UnderOffered() {
					usable++
				}
				continue
			}
			if errors.Is(werr, errSamplerEnded) || ctx.Err() != nil {
				return errors.Join(append(errs, werr)...)
			}
			t.event(phase, EventError, werr.Error())
			errs = append(errs, werr)
		}
	}
	return errors.Join(errs...)
}

// tputWindow runs one throughput window of profile p and records it with what was sent.
func (t *targetRun) tputWindow(ctx context.Context, phase string, p scenarios.Profile, idx int, samplerEnded <-chan struct{}) (TputWindow, error) {
	tp := t.Scenario.Throughput
	tw := TputWindow{Target: t.name, Phase: phase, Profile: p.Name, Index: idx, AskedPPS: tp.RateFor(p),
		FrameLinks: t.rt.Traffic.ForwardIn != nil && t.rt.Traffic.ForwardOut != nil}
	var terr error
	record := func(w Window) error {
		tw.Start, tw.End = w.Start, w.End
		return t.Store.RecordTputWindow(tw)
	}
	err := t.window(ctx, phase, TputStep(p.Name), tp.Window, samplerEnded, func(ctx context.Context) {
		c, err := t.send(ctx, p, tw.AskedPPS, tp.Window, 0, nil)
		tw.Sent, tw.ForwardedFrames, terr = c.Packets, c.ForwardedFrames, err
	}, record)
	if terr != nil {
		terr = fmt.Errorf("throughput window %d of %s: %w", idx+1, p.Name, terr)
	}
	return tw, errors.Join(terr, err)
}
