package traffic

import (
	"context"
	"sort"
	"sync"
	"time"
)

// Clock is the time source of a run: the pacer sleeps on it and the run's Duration and
// per-second ticks are measured on it. Tests inject a FakeClock.
type Clock interface {
	Now() time.Time
	// SleepUntil blocks until the clock reaches t, or ctx is done (it then returns ctx.Err()).
	SleepUntil(ctx context.Context, t time.Time) error
	// After returns a channel that receives once the clock reaches t; stop releases it.
	// Waiting on it never moves a fake clock: only SleepUntil does.
	After(t time.Time) (c <-chan time.Time, stop func())
}

// RealClock is the wall clock.
type RealClock struct{}

func (RealClock) Now() time.Time { return time.Now() }

func (RealClock) SleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (RealClock) After(t time.Time) (<-chan time.Time, func()) {
	timer := time.NewTimer(time.Until(t))
	return timer.C, func() { timer.Stop() }
}

// FakeClock is a Clock for tests. Time stands still until someone calls SleepUntil (which
// jumps to the wake-up time at once, as if the sleep had happened) or Advance. Several
// sleepers each move it to their own wake-up time, so it never goes backwards.
type FakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []*fakeWaiter
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

// NewFakeClock returns a fake clock reading start.
func NewFakeClock(start time.Time) *FakeClock { return &FakeClock{now: start} }

func (f *FakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *FakeClock) SleepUntil(ctx context.Context, t time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.set(t)
	return nil
}

// Advance moves the clock forward by d.
func (f *FakeClock) Advance(d time.Duration) { f.set(f.Now().Add(d)) }

func (f *FakeClock) After(t time.Time) (<-chan time.Time, func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := &fakeWaiter{at: t, ch: make(chan time.Time, 1)}
	if !t.After(f.now) {
		w.ch <- f.now
		return w.ch, func() {}
	}
	f.waiters = append(f.waiters, w)
	stop := func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		for i, x := range f.waiters {
			if x == w {
				f.waiters = append(f.waiters[:i], f.waiters[i+1:]...)
				return
			}
		}
	}
	return w.ch, stop
}

// set moves the clock to t if t is later, and fires the waiters it passed, earliest first.
func (f *FakeClock) set(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !t.After(f.now) {
		return
	}
	f.now = t
	sort.SliceStable(f.waiters, func(i, j int) bool { return f.waiters[i].at.Before(f.waiters[j].at) })
	kept := f.waiters[:0]
	for _, w := range f.waiters {
		if w.at.After(t) {
			kept = append(kept, w)
			continue
		}
		w.ch <- t // capacity 1, sent once: never blocks
	}
	f.waiters = kept
}
