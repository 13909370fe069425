package bench

import (
	"testing"
	"time"
)

func TestBlockClockStandsStillWhileOff(t *testing.T) {
	start := time.Unix(1000, 0)
	c := newBlockClock(start, 3*time.Second)
	s := func(d float64) time.Time { return start.Add(time.Duration(d * float64(time.Second))) }
	for _, p := range []struct{ wall, on float64 }{
		{0, 0}, {1, 1}, {3, 3}, {4.5, 3}, {6, 3}, {7, 4}, {9, 6}, {11, 6}, {12, 6}, {13, 7}, {-1, 0},
	} {
		if got := c.onAt(s(p.wall)); !got.Equal(s(p.on)) {
			t.Errorf("wall %vs: on-time %v, want %vs", p.wall, got.Sub(start), p.on)
		}
	}
	// Traffic time reached: a boundary is the next block's start (nothing sent while off);
	// a tick ending at a boundary ends with the block before.
	for _, p := range []struct{ on, wall, tick float64 }{
		{0, 0, 0}, {1, 1, 1}, {3, 6, 3}, {4, 7, 7}, {6, 12, 9}, {6.5, 12.5, 12.5},
	} {
		if got := c.wallAt(s(p.on)); !got.Equal(s(p.wall)) {
			t.Errorf("on-time %vs reached at %v, want %vs", p.on, got.Sub(start), p.wall)
		}
		if got := c.tickWall(s(p.on)); !got.Equal(s(p.tick)) {
			t.Errorf("tick at on-time %vs placed at %v, want %vs", p.on, got.Sub(start), p.tick)
		}
	}
}
