package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/wfplab/wfplab/scenarios"
)

// window records one window of the given length with record (as it starts, End zero, and
// as it ends, after body returned), runs body (if any) at its start, and waits out its
// length, reporting progress. It ends early, with an error, when ctx ends or the sampler
// stream closes.
func (t *targetRun) window(ctx context.Context, phase, name string, length time.Duration, samplerEnded <-chan struct{},
	body func(ctx context.Context), record func(Window) error) error {
	w := Window{Target: t.name, Phase: phase, Profile: name, Start: time.Now()}
	if err := record(w); err != nil {
		return err
	}
	end := w.Start.Add(length)
	stopProgress := t.reportProgress(phase, name, w.Start, length)
	// The body (traffic) runs beside the watch, so a guest that hangs under traffic is
	// seen while it happens; the body is bounded on its own (duration + grace).
	bodyCtx, cancelBody := context.WithCancel(ctx)
	bodyDone := make(chan struct{})
	go func() {
		defer close(bodyDone)
		if body != nil {
			body(bodyCtx)
		}
	}()
	err := t.watch(ctx, end, samplerEnded)
	if err != nil {
		cancelBody()
	}
	<-bodyDone
	cancelBody()
	stopProgress()
	w.End = time.Now()
	if rerr := record(w); rerr != nil && err == nil {
		err = rerr
	}
	return err
}

func (t *targetRun) reportProgress(phase, step string, start time.Time, length time.Duration) (stop func()) {
	if t.Runner.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(progressEvery)
		defer tick.Stop()
		for {
			t.progress(Progress{Target: t.name, Phase: phase, Step: step, Elapsed: time.Since(start), Length: length})
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// sampleTimeout is how long the stream may be quiet before the guest is asked whether it
// still answers.
func (t *targetRun) sampleTimeout() time.Duration {
	if d := t.Scenario.Timing.SampleTimeout; d > 0 {
		return d
	}
	return scenarios.DefaultSampleTimeout
}

// watch waits like waitUntil and watches the sample stream meanwhile: quiet for a sample
// timeout, the guest is pinged; quiet for two and not answering, it is hung.
func (t *targetRun) watch(ctx context.Context, deadline time.Time, samplerEnded <-chan struct{}) error {
	timeout := t.sampleTimeout()
	check := timeout / 4
	for {
		next := time.Now().Add(check)
		if next.After(deadline) {
			return waitUntil(ctx, deadline, samplerEnded)
		}
		if err := waitUntil(ctx, next, samplerEnded); err != nil {
			return err
		}
		last := time.Unix(0, t.lastSampleNS.Load())
		silent := time.Since(last)
		if silent < timeout {
			continue
		}
		if p, ok := t.rt.Guest.(Pinger); ok {
			if _, err := bounded(ctx, timeout, "ping", func(ctx context.Context) (struct{}, error) {
				return struct{}{}, p.Ping(ctx)
			}); err == nil {
				continue // the guest answers: a quiet sampler, which its stream's end will tell
			}
		}
		if silent = time.Since(last); silent >= 2*timeout {
			t.hung.Store(true)
			return hungError{silent: silent, lastPool: t.lastPool.Load(), lastAt: last}
		}
	}
}

// waitUntil waits for the deadline, ctx or the sampler stream's end, whichever is first.
func waitUntil(ctx context.Context, deadline time.Time, samplerEnded <-chan struct{}) error {
	// select picks at random among ready cases: an ended stream must win over a deadline
	// that has passed too (the traffic run may have taken the whole window).
	ended := func() bool {
		select {
		case <-samplerEnded:
			return true
		default:
			return false
		}
	}
	if ended() {
		return errSamplerEnded
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-timer.C:
		if ended() {
			return errSamplerEnded
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-samplerEnded:
		return errSamplerEnded
	}
}

// bounded runs f with a deadline and gives up on it (leaving it to finish on its own)
// when it does not return within abandonGrace after that, so no wait is unbounded even
// when f ignores its context.
func bounded[T any](ctx context.Context, limit time.Duration, what string, f func(context.Context) (T, error)) (T, error) {
	cctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	return boundedWait(cctx, cancel, limit, what, f)
}

// boundedWait runs f(ctx) and waits at most limit for it; past that it cancels ctx and
// gives f abandonGrace more. Unlike bounded, ctx stays alive after f returns, for calls
// that start something living on it.
func boundedWait[T any](ctx context.Context, cancel context.CancelFunc, limit time.Duration, what string,
	f func(context.Context) (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f(ctx)
		ch <- result{v, err}
	}()
	limitTimer := time.NewTimer(limit)
	defer limitTimer.Stop()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
	case <-limitTimer.C:
		cancel()
	}
	grace := time.NewTimer(abandonGrace)
	defer grace.Stop()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-grace.C:
		var zero T
		return zero, fmt.Errorf("%s did not return within %s of its deadline (%s); abandoned", what, abandonGrace, context.Cause(ctx))
	}
}
