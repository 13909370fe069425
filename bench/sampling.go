package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wfplab/wfplab/lab/contract"
)

// againAfterRevive runs op, and once more after the guest answers again when op failed
// because the guest did not answer at all (contract.ErrNoAnswer: an unexpected reboot
// between windows, as the soak's faults make) and the guest can be revived. A failure the
// guest answered (wusa's exit code, a refused password) is returned at once.
func againAfterRevive[T any](ctx context.Context, t *targetRun, phase, kind, what string, op func() (T, error)) (T, error) {
	v, err := op()
	r, revivable := t.rt.Guest.(Reviver)
	if err == nil || !revivable || !errors.Is(err, contract.ErrNoAnswer) || ctx.Err() != nil {
		return v, err
	}
	t.event(phase, kind, fmt.Sprintf("%s: the guest stopped answering (%v); waiting for it, then trying once more", what, err))
	inv, rerr := bounded(ctx, t.guestTimeout(), "revive", r.Revive)
	if rerr != nil {
		var zero T
		return zero, guestError{fmt.Errorf("%w; then waiting for the guest to answer again: %v", err, rerr)}
	}
	if inv.Netio != "" {
		t.inv = inv
	}
	return op()
}

// maxReruns bounds how often one window is run again after cuts in a row. The bound is per
// window, not per phase: a long phase on a guest that fails now and then (the soak's
// fault every minute) must not use up its reruns on windows that later ran whole.
const maxReruns = 3

// EventGap records a window cut short and run again: the samples have a gap there.
const EventGap = "gap"

// Reviver is a Guest that can be brought back to measuring after its sample stream broke
// (a reboot, the agent dying): wait until it answers, make sure the driver runs.
type Reviver interface {
	Revive(ctx context.Context) (contract.Inventory, error)
}

// liveSampler is a phase's running sampler and what ends it.
type liveSampler struct {
	s      Sampler
	ended  chan struct{}
	cancel context.CancelFunc
}

// startSampler starts a sampler and the goroutine that records its events.
func (t *targetRun) startSampler(ctx context.Context, phase string) (liveSampler, error) {
	interval := t.Scenario.Timing.SampleInterval
	// The sampler lives on samplerCtx until it is stopped, so the start is bounded by a
	// wait of its own rather than by a context that would end with it.
	samplerCtx, cancelSampler := context.WithCancel(ctx)
	sampler, err := boundedWait(samplerCtx, cancelSampler, t.guestTimeout(), "start sampler", func(ctx context.Context) (Sampler, error) {
		return t.rt.Guest.StartSampler(ctx, interval)
	})
	if err != nil {
		cancelSampler()
		return liveSampler{}, guestError{fmt.Errorf("start sampler: %w", err)}
	}
	t.event(phase, EventSampler, fmt.Sprintf("sampling every %s", interval))
	t.lastSampleNS.Store(time.Now().UnixNano())
	ended := make(chan struct{})
	go t.consume(phase, sampler, ended)
	return liveSampler{s: sampler, ended: ended, cancel: cancelSampler}, nil
}

// revive brings a guest whose stream broke back to measuring: it waits (bounded) for the
// guest to answer with its driver running, then starts a new sampler.
func (t *targetRun) revive(ctx context.Context, phase string) (liveSampler, error) {
	r := t.rt.Guest.(Reviver)
	start := time.Now()
	inv, err := bounded(ctx, t.guestTimeout(), "revive", r.Revive)
	if err != nil {
		return liveSampler{}, guestError{fmt.Errorf("revive after the sample stream broke: %w", err)}
	}
	if inv.Netio != "" {
		t.inv = inv
	}
	t.event(phase, EventGap, fmt.Sprintf("guest answers again after %s: %s", time.Since(start).Round(100*time.Millisecond), describe(inv)))
	return t.startSampler(ctx, phase)
}

// endedSampler stands in for a sampler that could not be restarted: stopping it is a no-op.
type endedSampler struct{}

func (endedSampler) Events() <-chan contract.SampleEvent {
	ch := make(chan contract.SampleEvent)
	close(ch)
	return ch
}
func (endedSampler) Stop(context.Context) error { return nil }

func closedChan() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}

// consume records every sample and sampler error as it arrives, until the stream closes.
// It keeps the last error in streamErr, which is read only after ended is closed.
func (t *targetRun) consume(phase string, s Sampler, ended chan<- struct{}) {
	defer close(ended)
	t.streamErr = nil
	for ev := range s.Events() {
		at := ev.At
		if at.IsZero() {
			at = time.Now()
		}
		if ev.Err != nil {
			t.streamErr = ev.Err
			t.Store.RecordEvent(Event{Target: t.name, Phase: phase, At: at, Kind: EventSampler, Message: ev.Err.Error()})
			continue
		}
		t.Store.RecordSample(t.name, phase, at, ev.Sample)
		t.lastPool.Store(ev.Sample.NPBytes)
		t.lastSampleNS.Store(at.UnixNano())
	}
}

func (t *targetRun) stopSampler(ctx context.Context, phase string, s Sampler, ended <-chan struct{}) error {
	// Stop even when ctx is done: the guest's sampler must not run on. A hung guest will
	// not answer: try once, briefly.
	stopCtx := context.WithoutCancel(ctx)
	limit := t.guestTimeout()
	if t.hung.Load() {
		limit = t.sampleTimeout()
	}
	_, err := bounded(stopCtx, limit, "stop sampler", func(ctx context.Context) (struct{}, error) {
		return struct{}{}, s.Stop(ctx)
	})
	if err != nil {
		err = fmt.Errorf("stop sampler: %w", err)
		t.event(phase, EventError, err.Error())
	}
	select {
	case <-ended:
	case <-time.After(drainTimeout):
		derr := fmt.Errorf("sampler events did not end within %s of stopping it", drainTimeout)
		t.event(phase, EventError, derr.Error())
		return errors.Join(err, derr)
	}
	t.event(phase, EventSampler, "stopped")
	return err
}
