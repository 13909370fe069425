package traffic

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"
)

// Run sends spec's traffic to `to` until spec.Duration passes, spec.MaxPackets packets have
// been attempted (a datagram or segment whose send fails still counts), or ctx ends. Every destination is checked against allow before any socket
// is opened. onTick (may be nil) is called from one goroutine, at most once per second of
// the run's clock, with that second's counters, and a last time with Final set.
//
// It returns the totals, with a nil error when the run ended by its bounds, ctx.Err() when
// ctx ended it, and otherwise what stopped it (e.g. a UDP socket that would not open, or
// stream-burst connections that could not connect at all).
func Run(ctx context.Context, spec Spec, to Addrs, allow Allow, onTick func(Tick)) (Counters, error) {
	return run(ctx, spec, to, allow, onTick, defaultDeps, defaultTuning)
}

// tuning holds the timings of stream-burst's connections; tests shorten them.
type tuning struct {
	dialTimeout  time.Duration
	writeTimeout time.Duration // a burst that cannot be written in this long is a "timeout"
	backoffBase  time.Duration
	backoffMax   time.Duration
	maxFailures  int // connections in a row that fail or die before carrying a burst: give up
	// verdictWait bounds the wait for a resetting guest's reset after each burst: well above a
	// round trip through QEMU's user-mode network under TCG, where a reset arrives only after
	// one or two more bursts were written without it. It is spent in full only once per
	// connection, when the guest stops resetting.
	verdictWait time.Duration
}

var defaultTuning = tuning{
	dialTimeout:  3 * time.Second,
	writeTimeout: 5 * time.Second,
	backoffBase:  20 * time.Millisecond,
	backoffMax:   time.Second,
	maxFailures:  10,
	verdictWait:  100 * time.Millisecond,
}

// gen is one run in progress.
type gen struct {
	clock    Clock
	rec      *recorder
	deadline time.Time // zero: no time bound
	send     SendMode
	batch    int
	deps     netDeps
	tune     tuning
	to       Addrs
	parent   context.Context // the caller's: frame links drain past the deadline with it
}

func (g *gen) pastDeadline(now time.Time) bool {
	return !g.deadline.IsZero() && !now.Before(g.deadline)
}

func run(ctx context.Context, spec Spec, to Addrs, allow Allow, onTick func(Tick), deps netDeps, tune tuning) (Counters, error) {
	parts, err := spec.parts()
	if err != nil {
		return Counters{}, err
	}
	var refused *multierror.Error
	dests := make([]netip.AddrPort, len(parts))
	for i, pt := range parts {
		if pt.profile == FragmentForward && to.frameLinks() {
			dest, err := frameTarget(to, allow)
			if err != nil {
				refused = multierror.Append(refused, err)
				continue
			}
			dests[i] = dest
			if pt.payload > maxUDPPayload4 {
				refused = multierror.Append(refused, fmt.Errorf("traffic: Spec.PayloadBytes = %d is above the largest UDP payload over IPv4 (%d) for %s to %s", pt.payload, maxUDPPayload4, pt.profile, dest))
			}
			continue
		}
		dest, field := pt.destination(to)
		if err := allow.Check(dest, field); err != nil {
			refused = multierror.Append(refused, err)
			continue
		}
		dests[i] = netip.AddrPortFrom(dest.Addr().Unmap(), dest.Port())
		if pt.profile != StreamBurst && dests[i].Addr().Is4() && pt.payload > maxUDPPayload4 {
			refused = multierror.Append(refused, fmt.Errorf("traffic: Spec.PayloadBytes = %d is above the largest UDP payload over IPv4 (%d) for %s to %s", pt.payload, maxUDPPayload4, pt.profile, dest))
		}
	}
	if err := refused.ErrorOrNil(); err != nil {
		return Counters{}, err
	}

	clock := spec.Clock
	if clock == nil {
		clock = RealClock{}
	}
	start := clock.Now()
	g := &gen{
		clock:    clock,
		rec:      newRecorder(start, onTick != nil),
		deadline: endOf(start, spec.Duration),
		send:     spec.Send,
		batch:    orDefault(spec.Batch, DefaultBatch),
		deps:     deps,
		tune:     tune,
		to:       to,
		parent:   ctx,
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if !g.deadline.IsZero() {
		go func() {
			due, stop := clock.After(g.deadline)
			defer stop()
			select {
			case <-due:
				cancel()
			case <-runCtx.Done():
			}
		}()
	}

	finish := make(chan time.Time, 1)
	tickDone := make(chan struct{})
	if onTick != nil {
		go func() {
			defer close(tickDone)
			g.rec.tick(clock, onTick, g.deadline, finish)
		}()
	} else {
		close(tickDone)
	}

	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, pt := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = g.runPart(runCtx, pt, dests[i]); errs[i] != nil {
				cancel() // one part failing ends the run: its results would be lopsided
			}
		}()
	}
	wg.Wait()
	cancel()

	end := clock.Now()
	if !g.deadline.IsZero() && end.After(g.deadline) {
		end = g.deadline
	}
	finish <- end
	<-tickDone

	var result *multierror.Error
	for _, err := range errs {
		if err != nil {
			result = multierror.Append(result, err)
		}
	}
	if result == nil && ctx.Err() != nil {
		return g.rec.totals(), ctx.Err()
	}
	return g.rec.totals(), result.ErrorOrNil()
}

// runPart runs one basic profile. Its budget, once spent, stops only this part's pacing
// (paceCtx): a write already under way still finishes.
func (g *gen) runPart(ctx context.Context, pt part, dest netip.AddrPort) error {
	paceCtx, stopPacing := context.WithCancel(ctx)
	defer stopPacing()
	b := newBudget(pt.maxPackets, stopPacing)
	if pt.profile == StreamBurst {
		return g.runStream(ctx, paceCtx, pt, dest, b)
	}
	if pt.profile == FragmentForward && g.to.frameLinks() {
		return g.runFrames(paceCtx, pt, dest, b)
	}
	return g.runUDP(paceCtx, pt, dest, b)
}

// budget is a part's MaxPackets: send attempts still allowed (unlimited when max is 0).
type budget struct {
	mu        sync.Mutex
	unlimited bool
	left      uint64
	onEmpty   func()
}

func newBudget(max uint64, onEmpty func()) *budget {
	return &budget{unlimited: max == 0, left: max, onEmpty: onEmpty}
}

// take grants up to n packets; 0 means the budget is spent (and onEmpty has been called).
func (b *budget) take(n int) int {
	if b.unlimited {
		return n
	}
	b.mu.Lock()
	if b.left == 0 {
		b.mu.Unlock()
		b.onEmpty()
		return 0
	}
	granted := uint64(n)
	if granted > b.left {
		granted = b.left
	}
	b.left -= granted
	b.mu.Unlock()
	return int(granted)
}

// refund gives back packets granted but not attempted.
func (b *budget) refund(n int) {
	if b.unlimited || n <= 0 {
		return
	}
	b.mu.Lock()
	b.left += uint64(n)
	b.mu.Unlock()
}
