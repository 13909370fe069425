package bench

import (
	"context"
	"time"

	"github.com/wfplab/wfplab/traffic"
)

// blockClock is traffic's clock for a window whose traffic runs in blocks: on for block,
// off for as long, in turn, from start. Its time stands still while traffic is off, so one
// traffic run paces its packets into the on-blocks only, keeps its TCP connections across
// the pauses (a reconnect each block would change how TCP coalesces, and so the chains)
// and counts its ticks and rate over time on.
type blockClock struct {
	start time.Time
	block time.Duration
	wall  traffic.Clock
}

func newBlockClock(start time.Time, block time.Duration) *blockClock {
	return &blockClock{start: start, block: block, wall: traffic.RealClock{}}
}

// onAt is the traffic time (on-time since start) at wall time w.
func (c *blockClock) onAt(w time.Time) time.Time {
	e := max(w.Sub(c.start), 0)
	k := e / (2 * c.block)
	return c.start.Add(k*c.block + min(e-k*2*c.block, c.block))
}

// wallAt is the wall time at which traffic time t is reached: the off-blocks before it
// added, a block boundary taken as the next block's start so nothing is sent while off.
func (c *blockClock) wallAt(t time.Time) time.Time {
	on := max(t.Sub(c.start), 0)
	return t.Add(on / c.block * c.block)
}

// tickWall is wallAt for a moment that ends something (a tick): a block boundary is the
// end of the block before it.
func (c *blockClock) tickWall(t time.Time) time.Time {
	on := t.Sub(c.start)
	if on <= 0 {
		return t
	}
	return t.Add((on - 1) / c.block * c.block)
}

func (c *blockClock) Now() time.Time { return c.onAt(c.wall.Now()) }

func (c *blockClock) SleepUntil(ctx context.Context, t time.Time) error {
	return c.wall.SleepUntil(ctx, c.wallAt(t))
}

func (c *blockClock) After(t time.Time) (<-chan time.Time, func()) {
	return c.wall.After(c.wallAt(t))
}
