package bench

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wfplab/wfplab/lab/contract"
)

// revivingGuest is a fakeGuest that comes back after its stream broke (bench.Reviver).
type revivingGuest struct {
	*fakeGuest
	revived atomic.Int32
}

func (g *revivingGuest) Revive(ctx context.Context) (contract.Inventory, error) {
	g.revived.Add(1)
	return g.inventory(), nil
}

func gapEvents(t *testing.T, st *Store, target string) []Event {
	t.Helper()
	evs, err := st.Events(target)
	if err != nil {
		t.Fatal(err)
	}
	var gaps []Event
	for _, e := range evs {
		if e.Kind == EventGap {
			gaps = append(gaps, e)
		}
	}
	return gaps
}

// A window cut by the sample stream's end is marked as a gap and run again once the guest
// is revived: every cell gets its verdict, and the target does not fail.
func TestRunnerRerunsACutWindow(t *testing.T) {
	t.Parallel()
	g := &revivingGuest{fakeGuest: &fakeGuest{name: "agent-dies-once", k: newFakeKernel(5), samplerDiesIn: "before"}}
	f := newFixture(t, g.fakeGuest, &fakeGuest{name: "healthy", k: newFakeKernel(6)})
	f.runner.Targets[0].Guest = g
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	results, err := f.runner.Run(ctx)
	if err != nil {
		t.Fatalf("a revived guest must not fail the run: %v", err)
	}
	for _, r := range results {
		if !r.Met {
			t.Errorf("%s/%s/%s: %s (%s), expected %s", r.Target, r.Phase, r.Profile, r.Verdict, r.Note, r.Expected)
		}
	}
	if g.revived.Load() != 1 {
		t.Errorf("revived %d times, want 1", g.revived.Load())
	}
	gaps := gapEvents(t, f.store, "agent-dies-once")
	if len(gaps) != 2 || !strings.Contains(gaps[0].Message, "cut after") || !strings.Contains(gaps[0].Message, "rerun 1 of 3") ||
		!strings.Contains(gaps[1].Message, "answers again") {
		t.Errorf("gap events %+v", gaps)
	}
	if len(gapEvents(t, f.store, "healthy")) != 0 {
		t.Error("the healthy target has gaps")
	}
}

// A window that keeps being cut is given up after maxReruns, naming the target; the other
// target goes on.
func TestRunnerGivesUpAfterBoundedReruns(t *testing.T) {
	t.Parallel()
	g := &revivingGuest{fakeGuest: &fakeGuest{name: "always-dies", k: newFakeKernel(5), diesAlways: true}}
	f := newFixture(t, g.fakeGuest, &fakeGuest{name: "healthy", k: newFakeKernel(6)})
	f.runner.Targets[0].Guest = g
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	results, err := f.runner.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "target always-dies: phase before:") || !strings.Contains(err.Error(), "cut 4 times in a row, given up") {
		t.Fatalf("want the given-up window naming its target, got %v", err)
	}
	if strings.Contains(err.Error(), "healthy") {
		t.Errorf("the healthy target failed: %v", err)
	}
	if n := g.revived.Load(); n != 2*maxReruns { // each phase has its own bound
		t.Errorf("revived %d times, want %d", n, 2*maxReruns)
	}
	for _, r := range results {
		if r.Target == "healthy" && !r.Met {
			t.Errorf("healthy/%s/%s: %s (%s)", r.Phase, r.Profile, r.Verdict, r.Note)
		}
		if r.Target == "always-dies" && r.Phase == "before" && r.Profile == "stream-burst" && r.Verdict != Incomplete {
			t.Errorf("the given-up window got verdict %s", r.Verdict)
		}
	}
}

// A guest that fails now and then over a long phase has more cuts than maxReruns, but
// each window runs whole when run again: the phase goes on and every cell gets its
// verdict (a per-phase bound gave up in the soak's 30-minute run).
func TestRunnerBoundsRerunsPerWindowNotPerPhase(t *testing.T) {
	t.Parallel()
	g := &revivingGuest{fakeGuest: &fakeGuest{name: "fails-now-and-then", k: newFakeKernel(5), diesInSecondWindow: true}}
	f := newFixture(t, g.fakeGuest)
	f.runner.Targets[0].Guest = g
	single := f.sc.Profiles[2]
	for _, name := range []string{"single-nbl-2", "single-nbl-3", "single-nbl-4"} {
		p := single
		p.Name = name
		f.sc.Profiles = append(f.sc.Profiles, p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	results, err := f.runner.Run(ctx)
	if err != nil {
		t.Fatalf("windows that ran whole on their rerun must not fail the phase: %v", err)
	}
	if len(results) != 2*len(f.sc.Profiles) {
		t.Errorf("%d results, want %d", len(results), 2*len(f.sc.Profiles))
	}
	for _, r := range results {
		if !r.Met {
			t.Errorf("%s/%s: %s (%s), expected %s", r.Phase, r.Profile, r.Verdict, r.Note, r.Expected)
		}
	}
	// Each phase: every window after the first with traffic is cut once.
	if n, want := int(g.revived.Load()), 2*(len(f.sc.Profiles)-1); n != want || n <= 2*maxReruns {
		t.Errorf("revived %d times, want %d (more than the %d a per-phase bound allows)", n, want, 2*maxReruns)
	}
}

// A guest that restarts unexpectedly between windows does not answer when the hotfix is
// installed or the next phase's sampler starts: the step runs once more after the guest
// answers again, so the target goes on. A failure the guest answered is not retried.
func TestRunnerWaitsOutARestartBetweenPhases(t *testing.T) {
	t.Parallel()
	for _, step := range []string{"hotfix", "sampler"} {
		t.Run(step, func(t *testing.T) {
			t.Parallel()
			g := &revivingGuest{fakeGuest: &fakeGuest{name: "restarts", k: newFakeKernel(5), noAnswerOnce: step}}
			refused := &revivingGuest{fakeGuest: &fakeGuest{name: "not-applicable", k: newFakeKernel(6), failHotfix: true}}
			f := newFixture(t, g.fakeGuest, refused.fakeGuest)
			f.runner.Targets[0].Guest, f.runner.Targets[1].Guest = g, refused
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			results, err := f.runner.Run(ctx)
			if err == nil || strings.Contains(err.Error(), "restarts") {
				t.Fatalf("want only not-applicable to fail, got %v", err)
			}
			if !g.noAnswerSeen.Load() {
				t.Fatalf("the %s step never found the guest restarting", step)
			}
			if g.revived.Load() != 1 {
				t.Errorf("revived %d times, want 1", g.revived.Load())
			}
			if refused.revived.Load() != 0 {
				t.Errorf("a hotfix wusa refused was retried after %d revives", refused.revived.Load())
			}
			n := 0
			for _, r := range results {
				if r.Target != "restarts" {
					continue
				}
				n++
				if !r.Met {
					t.Errorf("%s/%s: %s (%s), expected %s", r.Phase, r.Profile, r.Verdict, r.Note, r.Expected)
				}
			}
			if n == 0 {
				t.Fatal("no results for the restarting target")
			}
			evs, err := f.store.Events("restarts")
			if err != nil {
				t.Fatal(err)
			}
			said := false
			for _, e := range evs {
				said = said || strings.Contains(e.Message, "the guest stopped answering")
			}
			if !said {
				t.Error("no event says the guest stopped answering and the step was tried again")
			}
		})
	}
}
