package traffic

import (
	"context"
	"math"
	"sync"
	"time"
)

const (
	// pacerWindow is how much unused send time the bucket keeps: enough to ride out a GC
	// pause or a scheduler stall of the sender without losing rate (stalls of 50–100 ms were
	// seen on a loaded 2-core machine), short enough that catching up stays one burst.
	pacerWindow = 250 * time.Millisecond
	// pacerMinSleep batches wake-ups: waking once per packet at 200k/s would cost more CPU than
	// the sends. So a second's count may differ from the rate by at most rate × 1 ms at start.
	pacerMinSleep = time.Millisecond
	// tokenEpsilon absorbs float rounding so that 0.9999999 tokens count as one.
	tokenEpsilon = 1e-9
)

// Pacer is a token bucket: tokens (packets) accrue at a fixed rate on a Clock, up to a
// capacity of pacerWindow's worth; senders take them before sending. Safe for concurrent use.
type Pacer struct {
	clock    Clock
	rate     float64 // tokens per second; 0 = unpaced
	capacity float64

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// NewPacer returns a pacer of rate tokens per second (0: unpaced). unit is the largest
// single Wait (a burst's segment count, or 1): the bucket starts with that much, or one
// minimum sleep's worth if more, so the first send goes out at once.
func NewPacer(clock Clock, rate float64, unit int) *Pacer {
	if clock == nil {
		clock = RealClock{}
	}
	if unit < 1 {
		unit = 1
	}
	p := &Pacer{clock: clock, rate: rate, last: clock.Now()}
	if rate > 0 {
		p.capacity = math.Max(float64(unit), rate*pacerWindow.Seconds())
		p.tokens = math.Min(p.capacity, math.Max(float64(unit), rate*pacerMinSleep.Seconds()))
	}
	return p
}

// Rate is the pacer's rate in tokens per second (0: unpaced).
func (p *Pacer) Rate() float64 { return p.rate }

// refill adds the tokens accrued since the last call; p.mu is held.
func (p *Pacer) refill() {
	now := p.clock.Now()
	if elapsed := now.Sub(p.last); elapsed > 0 {
		p.tokens = math.Min(p.capacity, p.tokens+elapsed.Seconds()*p.rate)
		p.last = now
	}
}

// Wait takes n tokens, sleeping until the bucket has paid for them. Callers are served in
// the order they call (each reserves its tokens at once), so concurrent connections share the
// rate fairly. It returns ctx.Err() if ctx ends first; the tokens are then spent.
func (p *Pacer) Wait(ctx context.Context, n int) error {
	if p.rate <= 0 {
		return ctx.Err()
	}
	p.mu.Lock()
	p.refill()
	p.tokens -= float64(n)
	var until time.Time
	if p.tokens < -tokenEpsilon {
		until = p.last.Add(secondsCeil(-p.tokens / p.rate))
	}
	p.mu.Unlock()
	if until.IsZero() {
		return ctx.Err()
	}
	return p.clock.SleepUntil(ctx, until)
}

// Refund gives back n tokens taken for packets that never left (a write the peer reset
// before it went out), so a sender that must reconnect does not lose that share of the rate.
func (p *Pacer) Refund(n int) {
	if p.rate <= 0 || n <= 0 {
		return
	}
	p.mu.Lock()
	p.tokens = math.Min(p.capacity, p.tokens+float64(n))
	p.mu.Unlock()
}

// Take waits until at least one whole token is there and takes as many as are, up to max.
// The bucket is refilled at most once per pacerMinSleep: the caller drains what one refill
// gave in batches of up to max, then sleeps out the rest of pacerMinSleep. Refilling on every
// call instead would hand a sender that is still busy sending the few tokens accrued during
// its last send: at 200k/s, a send call for every 5–10 datagrams instead of every max. A
// caller that takes longer than pacerMinSleep to drain a refill gets the next one at once,
// so time spent sending is never lost: tokens accrue by the clock whatever the refills.
func (p *Pacer) Take(ctx context.Context, max int) (int, error) {
	if max < 1 {
		max = 1
	}
	if p.rate <= 0 {
		return max, ctx.Err()
	}
	// Each pass either returns or sleeps until a token is due: bounded by ctx and the rate.
	for {
		p.mu.Lock()
		if p.wholeTokens() < 1 && !p.clock.Now().Before(p.last.Add(pacerMinSleep)) {
			p.refill()
		}
		if whole := p.wholeTokens(); whole >= 1 {
			n := int(math.Min(whole, float64(max)))
			p.tokens -= float64(n)
			p.mu.Unlock()
			return n, nil
		}
		wait := secondsCeil((1 - p.tokens) / p.rate)
		if wait < pacerMinSleep {
			wait = pacerMinSleep
		}
		until := p.last.Add(wait)
		p.mu.Unlock()
		if err := p.clock.SleepUntil(ctx, until); err != nil {
			return 0, err
		}
	}
}

// wholeTokens is the whole tokens in the bucket as of the last refill; p.mu is held.
func (p *Pacer) wholeTokens() float64 { return math.Floor(p.tokens + tokenEpsilon) }

// secondsCeil converts seconds to a Duration rounded up, so a sleep never ends a hair early.
func secondsCeil(s float64) time.Duration {
	return time.Duration(math.Ceil(s * float64(time.Second)))
}

// PacketsPerSecond turns a payload bit rate into packets per second for a payload size.
func PacketsPerSecond(bitsPerSecond float64, payloadBytes int) float64 {
	if payloadBytes <= 0 || bitsPerSecond <= 0 {
		return 0
	}
	return bitsPerSecond / (8 * float64(payloadBytes))
}
