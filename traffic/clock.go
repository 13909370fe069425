package traffic

import (
	"context"
	"time"
)

// Clock is the time source of a run: the pacer sleeps on it and the run's Duration and
// per-second ticks are measured on it. Tests inject a fake one.
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
