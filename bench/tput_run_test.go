package bench

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wfplab/wfplab/scenarios"
	"github.com/wfplab/wfplab/traffic"
)

// modeGuest is a fakeGuest whose driver switches modes, recording each switch.
type modeGuest struct {
	*fakeGuest
	mu        sync.Mutex
	modes     []bool
	failBlock bool
}

func (g *modeGuest) SetDriverMode(ctx context.Context, permit bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.modes = append(g.modes, permit)
	if !permit && g.failBlock {
		return errors.New(g.name + `: "C:\wfplab\wfplab-agent.exe mode block" (exit 2): drv=error:31`)
	}
	return nil
}

func tputFixture(t *testing.T, g *modeGuest) *fixture {
	f := newFixture(t, g.fakeGuest)
	f.runner.Targets[0].Guest = g
	f.sc.Profiles = f.sc.Profiles[:1] // stream-burst: one profile keeps the test short
	f.sc.Throughput = scenarios.Throughput{Windows: 6, Window: 150 * time.Millisecond, Settle: 20 * time.Millisecond,
		Rate: 1000, MaxLoss: 0.05, Alpha: 0.05}
	return f
}

// Each phase ends with its throughput windows in permit mode, and the driver goes back to
// block mode after them, so the next phase measures the bug again.
func TestRunnerThroughputWindows(t *testing.T) {
	g := &modeGuest{fakeGuest: &fakeGuest{name: "g1", k: newFakeKernel(1)}}
	f := tputFixture(t, g)
	if _, err := f.runner.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, false, true, false}; !slices.Equal(g.modes, want) {
		t.Errorf("mode switches %v, want %v", g.modes, want)
	}
	ws, err := f.store.TputWindows("g1")
	// A loaded test machine may under-offer a window, which is then run again.
	if usable := usableWindows(ws); err != nil || usable != 2*6 || len(ws) > 2*12 {
		t.Fatalf("%d throughput windows, %d usable, want 12 usable: %v", len(ws), usable, err)
	}
	for _, w := range ws {
		if w.End.Sub(w.Start) < 150*time.Millisecond || w.AskedPPS != 1000 || w.Sent == 0 || w.Samples == 0 {
			t.Errorf("window %+v: want a whole window at 1000/s with packets sent and figures", w)
		}
	}
	// The leak windows came first, in block mode: their verdicts are as without throughput.
	results, _ := f.store.Results()
	if r := resultMap(results)[CellKey{"g1", "before", "stream-burst"}]; r.Verdict != Leak {
		t.Errorf("before/stream-burst %s, want LEAK", r.Verdict)
	}
}

// A driver that cannot go back to block mode is an error naming the target and what to do.
func TestRunnerThroughputReportsADriverLeftPermitting(t *testing.T) {
	g := &modeGuest{fakeGuest: &fakeGuest{name: "g1", k: newFakeKernel(2)}, failBlock: true}
	f := tputFixture(t, g)
	f.sc.Phases = f.sc.Phases[:1]
	_, err := f.runner.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "target g1") || !strings.Contains(err.Error(), "back to block mode") ||
		!strings.Contains(err.Error(), "restart it") {
		t.Fatalf("err = %v; want the target, the failed switch back and what to do", err)
	}
}

// A window the host could not offer at 90% of the rate is run again, so each profile still
// gets its usable windows; a host that never can gets at most twice as many.
func TestRunnerReRunsUnderOfferedWindows(t *testing.T) {
	for _, c := range []struct {
		starved, want int
	}{{2, 8}, {100, 12}} {
		g := &modeGuest{fakeGuest: &fakeGuest{name: "g1", k: newFakeKernel(3)}}
		f := tputFixture(t, g)
		f.sc.Phases = f.sc.Phases[:1]
		inner, calls := f.runner.Traffic, 0
		f.runner.Traffic = func(ctx context.Context, spec traffic.Spec, to traffic.Addrs, allow traffic.Allow, onTick func(traffic.Tick)) (traffic.Counters, error) {
			cnt, err := inner(ctx, spec, to, allow, onTick)
			if spec.Duration == f.sc.Throughput.Window {
				if calls++; calls <= c.starved {
					cnt.Packets /= 2 // a starved generator
				}
			}
			return cnt, err
		}
		if _, err := f.runner.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		ws, _ := f.store.TputWindows("g1")
		// At least want: a loaded test machine may under-offer a window of its own.
		if len(ws) < c.want || len(ws) > 12 || c.starved == 2 && usableWindows(ws) != 6 {
			t.Errorf("%d starved windows: %d windows run (%d usable), want %d (6 usable), at most 12",
				c.starved, len(ws), usableWindows(ws), c.want)
		}
	}
}

func usableWindows(ws []TputWindow) int {
	n := 0
	for _, w := range ws {
		if !w.UnderOffered() {
			n++
		}
	}
	return n
}

// A resumed run measures again only the throughput of a phase whose windows did not all
// end (here the after phase's first window was cut by a kill); every cell, and the before
// phase's throughput, stays as the first run measured it.
func TestResumeMeasuresOnlyUnfinishedThroughput(t *testing.T) {
	g := &modeGuest{fakeGuest: &fakeGuest{name: "g1", k: newFakeKernel(3)}}
	f := tputFixture(t, g)
	if _, err := f.runner.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	first, err := f.store.TputWindows("g1")
	if err != nil {
		t.Fatal(err)
	}
	cut := first[slices.IndexFunc(first, func(w TputWindow) bool { return w.Phase == "after" })]
	cut.End = time.Time{}
	if err := f.store.RecordTputWindow(cut); err != nil {
		t.Fatal(err)
	}
	cellWindows, err := f.store.Windows("g1")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.Flush(); err != nil {
		t.Fatal(err)
	}

	cells, tput, err := Measured(f.store, f.sc)
	if err != nil {
		t.Fatal(err)
	}
	if !tput[[2]string{"g1", "before"}] || tput[[2]string{"g1", "after"}] || len(cells) != 2 {
		t.Fatalf("Measured: cells %v, throughput %v; want both cells and the before phase's throughput measured", cells, tput)
	}
	g.modes = nil
	g.k = newFakeKernel(4) // a fresh, unpatched guest, as --resume brings up
	resumed := time.Now()
	f.runner.Done = func(k CellKey) bool { return cells[k] }
	f.runner.TputDone = func(target, phase string) bool { return tput[[2]string{target, phase}] }
	if _, err := f.runner.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, false}; !slices.Equal(g.modes, want) {
		t.Errorf("mode switches %v, want %v: only the after phase's throughput runs again", g.modes, want)
	}
	again, err := f.store.Windows("g1")
	if err != nil || len(again) != len(cellWindows) {
		t.Errorf("%d leak windows after the resume, %d before it (%v): a measured cell ran again", len(again), len(cellWindows), err)
	}
	ws, err := f.store.TputWindows("g1")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		redone := w.Start.After(resumed)
		if w.Phase == "before" && redone || w.Phase == "after" && (!redone || w.End.IsZero()) {
			t.Errorf("%s window %d started %v (resumed at %v), ended %v", w.Phase, w.Index, w.Start, resumed, w.End)
		}
	}
	if c := CompareTputFor(ws, f.sc); len(c) == 0 || c[0].Before.N < 6 || c[0].After.N < 6 {
		t.Errorf("comparisons after the resume: %+v; want 6 windows a phase", c)
	}
}
