package traffic

import (
	"context"
	"sort"
	"sync"
	"time"
)

// fakeClock is a Clock for the tests. Time stands still until someone calls SleepUntil (which
// jumps to the wake-up time at once, as if the sleep had happened) or Advance. Several
// sleepers each move it to their own wake-up time, so it never goes backwards.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []*fakeWaiter
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

// newFakeClock returns a fake clock reading start.
func newFakeClock(start time.Time) *fakeClock { return &fakeClock{now: start} }

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) SleepUntil(ctx context.Context, t time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.set(t)
	return nil
}

// Advance moves the clock forward by d.
func (f *fakeClock) Advance(d time.Duration) { f.set(f.Now().Add(d)) }

func (f *fakeClock) After(t time.Time) (<-chan time.Time, func()) {
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
func (f *fakeClock) set(t time.Time) {
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
