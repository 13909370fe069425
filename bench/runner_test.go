package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/wfplab/wfplab/lab/contract"
	"github.com/wfplab/wfplab/scenarios"
	"github.com/wfplab/wfplab/traffic"
)

// fakeKernel is a guest's pool as a function of time: it leaks fakeLeakBps for every
// second a multi-NBL profile runs on an unpatched netio since boot, plus seeded noise.
// Samples are computed for the moment they are due, not when a busy test machine gets
// round to them, so the verdicts do not depend on scheduling.
type fakeKernel struct {
	// failTraffic makes every run of that profile fail at once.
	failTraffic traffic.Profile

	mu      sync.Mutex
	rng     *rand.Rand
	boot    time.Time
	patched bool
	base    float64
	runs    []trafficRun
}

type trafficRun struct {
	profile  traffic.Profile
	from, to time.Time // to is zero while running
}

const (
	fakeLeakBps   = 2e6   // what an unpatched guest leaks under multi-NBL traffic
	fakeChainsPS  = 10000 // multi-NBL chains per second that traffic makes
	fakeSinglesPS = 2000  // single-NBL chains per second (the single-nbl profile's rate)
	fakeNoiseSD   = 2000  // bytes
	fakeThreshold = 50000 // the scenario's threshold, B/s
	stockNetio    = "6.1.7600.16385"
	fixedNetio    = "6.1.7600.20611"
)

func newFakeKernel(seed int64) *fakeKernel {
	return &fakeKernel{rng: rand.New(rand.NewSource(seed)), boot: time.Now().Add(-time.Minute), base: 60e6}
}

func multiNBL(p traffic.Profile) bool {
	return p == traffic.StreamBurst || p == traffic.FragmentForward
}

func (k *fakeKernel) startTraffic(p traffic.Profile) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.runs = append(k.runs, trafficRun{profile: p, from: time.Now()})
}

func (k *fakeKernel) runCount() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.runs)
}

func (k *fakeKernel) stopTraffic() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.runs[len(k.runs)-1].to = time.Now()
}

func (k *fakeKernel) reboot() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.patched, k.boot, k.base = true, time.Now(), 55e6
}

// restart is an unexpected reboot: a fresh pool and clock, the patch state unchanged.
func (k *fakeKernel) restart() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.boot, k.base = time.Now(), 55e6
}

// multiSeconds is how long multi-NBL traffic ran between boot and at; the caller holds mu.
func (k *fakeKernel) multiSeconds(at time.Time) float64 { return k.secondsOf(at, multiNBL) }

// secondsOf is how long traffic of the profiles that match ran between boot and at; the
// caller holds mu.
func (k *fakeKernel) secondsOf(at time.Time, match func(traffic.Profile) bool) float64 {
	var d time.Duration
	for _, r := range k.runs {
		if !match(r.profile) {
			continue
		}
		from, to := r.from, r.to
		if from.Before(k.boot) {
			from = k.boot
		}
		if to.IsZero() || to.After(at) {
			to = at
		}
		if to.After(from) {
			d += to.Sub(from)
		}
	}
	return d.Seconds()
}

func (k *fakeKernel) sample(seq uint64, at time.Time) contract.Sample {
	k.mu.Lock()
	defer k.mu.Unlock()
	secs := k.multiSeconds(at)
	leaked := 0.0
	if !k.patched {
		leaked = fakeLeakBps * secs
	}
	chains := uint64(fakeChainsPS * secs)
	// Single-NBL datagrams are blocked one chain each at the transport layer.
	singles := uint64(fakeSinglesPS * k.secondsOf(at, func(p traffic.Profile) bool { return p == traffic.SingleNBL }))
	s := contract.Sample{Seq: seq, TimeUS: uint64(at.Sub(k.boot) / time.Microsecond),
		NPBytes: uint64(k.base + leaked + k.rng.NormFloat64()*fakeNoiseSD),
		Driver: contract.Driver{State: "running", Layers: map[contract.Layer]contract.LayerCounters{
			contract.LayerStream:    {MultiChain: chains, Blocked: chains},
			contract.LayerTransport: {Blocked: singles}}},
		ChangedTags: map[string]contract.TagUsage{"Nnbl": {Bytes: 4096 + uint64(leaked)}},
	}
	if seq == 0 {
		s.ChangedTags["Ntf "] = contract.TagUsage{Bytes: 512}
	}
	return s
}

// fakeGuest fails where told to.
type fakeGuest struct {
	name string
	k    *fakeKernel
	// failPrepare, failHotfix: those steps fail. samplerDiesIn: the sampler of that phase
	// ("before"/"after", counted by StartSampler calls) closes its stream early.
	failPrepare bool
	failHotfix  bool
	// noAnswerOnce: the first call of that step ("hotfix" or "sampler") finds the guest
	// restarting unexpectedly: it does not answer (contract.ErrNoAnswer) and reboots.
	noAnswerOnce  string
	noAnswerSeen  atomic.Bool
	samplerDiesIn string
	// diesAlways: every sampler closes its stream early.
	diesAlways bool
	// diesInSecondWindow: every sampler closes its stream once the second window with
	// traffic since it started has begun, so each rerun runs whole and the next is cut.
	diesInSecondWindow bool
	// hangsIn: in that phase the guest stops answering after 15 samples: the stream goes
	// quiet without closing and Ping fails, as a guest whose pool ran out does.
	hangsIn string
	hung    atomic.Bool
	starts  int
	// prepareDelay holds Prepare back, so targets start in another order than given.
	prepareDelay time.Duration
}

func (g *fakeGuest) Ping(ctx context.Context) error {
	if g.hung.Load() {
		<-ctx.Done() // a hung guest never answers: the caller's deadline ends the wait
		return fmt.Errorf("WinRM at %s: %w", g.name, ctx.Err())
	}
	return nil
}

func (g *fakeGuest) Name() string { return g.name }

func (g *fakeGuest) inventory() contract.Inventory {
	netio := stockNetio
	g.k.mu.Lock()
	defer g.k.mu.Unlock()
	if g.k.patched {
		netio = fixedNetio
	}
	return contract.Inventory{OSVersion: "6.1", OSBuild: "7600.16385", Arch: "x64", Netio: netio, TestSigning: true, DrvService: "running"}
}

func (g *fakeGuest) Prepare(ctx context.Context) (contract.Inventory, error) {
	select {
	case <-time.After(g.prepareDelay):
	case <-ctx.Done():
		return contract.Inventory{}, ctx.Err()
	}
	if g.failPrepare {
		return contract.Inventory{}, errors.New("WinRM refused the password (401)")
	}
	return g.inventory(), nil
}

func (g *fakeGuest) InstallHotfix(ctx context.Context) (contract.Inventory, error) {
	if g.failHotfix {
		return contract.Inventory{}, errors.New("wusa exit -2145124329: not applicable")
	}
	if err := g.restartsOnce("hotfix"); err != nil {
		return contract.Inventory{}, err
	}
	g.k.reboot() // a fresh pool and clock
	return g.inventory(), nil
}

// restartsOnce fails the first call of step as a guest in an unexpected reboot does.
func (g *fakeGuest) restartsOnce(step string) error {
	if g.noAnswerOnce != step || g.noAnswerSeen.Swap(true) {
		return nil
	}
	g.k.restart()
	return fmt.Errorf("%s: nothing answers at 127.0.0.1:5985 (%w)", g.name, contract.ErrNoAnswer)
}

func (g *fakeGuest) StartSampler(ctx context.Context, interval time.Duration) (Sampler, error) {
	if err := g.restartsOnce("sampler"); err != nil {
		return nil, err
	}
	g.starts++
	phase := "before"
	if g.starts > 1 {
		phase = "after"
	}
	s := &fakeSampler{events: make(chan contract.SampleEvent, 16), stop: make(chan struct{})}
	dies := g.samplerDiesIn == phase || g.diesAlways
	hangs := g.hangsIn == phase
	runsAtStart := g.k.runCount()
	go func() {
		defer close(s.events)
		// Samples are due every interval; a late wake-up catches up, as a real agent's
		// lines wait in the pipe until WinRM delivers them.
		due := time.Now()
		timer := time.NewTimer(0)
		defer timer.Stop()
		for seq := uint64(0); seq < 1e6; seq++ {
			select {
			case <-s.stop:
				return
			case <-ctx.Done(): // like lab's sampler, it lives on ctx
				return
			case <-timer.C:
			}
			var ev contract.SampleEvent
			if g.diesInSecondWindow && g.k.runCount() >= runsAtStart+2 {
				ev = contract.SampleEvent{At: time.Now(), Err: errors.New("winrm: shell closed")}
				select {
				case <-s.stop:
				case s.events <- ev:
				}
				return
			}
			switch {
			case dies && seq == 15:
				ev = contract.SampleEvent{At: time.Now(), Err: errors.New("winrm: shell closed")}
			case seq == 5:
				ev = contract.SampleEvent{At: time.Now(), Line: "S1 seq=x", Err: errors.New(`bad seq "x"`)}
			default:
				ev = contract.SampleEvent{At: time.Now(), Sample: g.k.sample(seq, due)}
			}
			select {
			case <-s.stop:
				return
			case s.events <- ev:
			}
			if dies && seq == 15 {
				return
			}
			if hangs && seq == 15 {
				g.hung.Store(true)
				select { // quiet, not closed, until stopped
				case <-s.stop:
				case <-ctx.Done():
				}
				return
			}
			due = due.Add(interval)
			timer.Reset(time.Until(due))
		}
	}()
	return s, nil
}

type fakeSampler struct {
	events chan contract.SampleEvent
	stop   chan struct{}
	once   sync.Once
}

func (s *fakeSampler) Events() <-chan contract.SampleEvent { return s.events }
func (s *fakeSampler) Stop(ctx context.Context) error {
	s.once.Do(func() { close(s.stop) })
	return nil
}

// fakeTraffic turns the addressed guest's traffic on for the run's duration, ticking
// every 100 ms.
func fakeTraffic(kernels map[netip.AddrPort]*fakeKernel) TrafficFunc {
	return func(ctx context.Context, spec traffic.Spec, to traffic.Addrs, allow traffic.Allow, onTick func(traffic.Tick)) (traffic.Counters, error) {
		k := kernels[to.Stream]
		if k == nil {
			return traffic.Counters{}, fmt.Errorf("no guest at %s", to.Stream)
		}
		if spec.Duration <= 0 || spec.Rate <= 0 {
			return traffic.Counters{}, fmt.Errorf("bad spec %+v", spec)
		}
		if spec.Profile == k.failTraffic {
			return traffic.Counters{}, fmt.Errorf("send to %s: network is unreachable", to.Forward)
		}
		k.startTraffic(spec.Profile)
		defer k.stopTraffic()
		var total traffic.Counters
		end := time.Now().Add(spec.Duration)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < 1e6; i++ {
			select {
			case <-ctx.Done():
				return total, ctx.Err()
			case now := <-tick.C:
				d := traffic.Counters{Packets: uint64(spec.Rate / 10), Bytes: uint64(spec.Rate/10) * uint64(spec.PayloadBytes)}
				total.Packets += d.Packets
				total.Bytes += d.Bytes
				onTick(traffic.Tick{At: now, Delta: d, Span: 100 * time.Millisecond})
				if !now.Before(end) {
					return total, nil
				}
			}
		}
		return total, nil
	}
}

func testScenario(targets ...string) *scenarios.Scenario {
	sc := &scenarios.Scenario{
		Name:   "fake",
		Phases: []scenarios.Phase{{Name: "before"}, {Name: "after", InstallHotfix: true}},
		Timing: scenarios.Timing{Warmup: 150 * time.Millisecond, Window: 600 * time.Millisecond,
			Settle: 100 * time.Millisecond, SampleInterval: 20 * time.Millisecond},
		Profiles: []scenarios.Profile{
			{Name: "stream-burst", Kind: "stream-burst", Rate: 2000, PayloadBytes: 1460, BurstSegments: 8, Conns: 4},
			{Name: "fragment-forward", Kind: "fragment-forward", Rate: 500, PayloadBytes: 4000},
			{Name: "single-nbl", Kind: "single-nbl", Rate: 2000, PayloadBytes: 64},
		},
		Verdict: scenarios.VerdictRule{ThresholdBps: fakeThreshold, Confidence: 0.95},
		Expect: []scenarios.Expectation{
			{Verdict: "CLEAN"},
			{Phase: "before", Profile: "stream-burst", Verdict: "LEAK"},
			{Phase: "before", Profile: "fragment-forward", Verdict: "LEAK"},
		},
	}
	for _, t := range targets {
		sc.Targets = append(sc.Targets, scenarios.TargetSpec{Name: t, OS: "win7-x64"})
	}
	return sc
}

type fixture struct {
	sc      *scenarios.Scenario
	store   *Store
	dir     string
	guests  []*fakeGuest
	runner  *Runner
	mu      sync.Mutex
	updates map[string][]Progress
}

func newFixture(t *testing.T, guests ...*fakeGuest) *fixture {
	t.Helper()
	f := &fixture{guests: guests, updates: map[string][]Progress{}}
	var names []string
	kernels := map[netip.AddrPort]*fakeKernel{}
	var targets []RunTarget
	for i, g := range guests {
		names = append(names, g.name)
		addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(40000+i))
		kernels[addr] = g.k
		targets = append(targets, RunTarget{Info: TargetInfo{Name: g.name, OS: "win7-x64", Product: "Windows 7"},
			Guest: g, Traffic: traffic.Addrs{Stream: addr}})
	}
	f.sc = testScenario(names...)
	f.dir = filepath.Join(t.TempDir(), "run")
	st, err := Create(f.dir, RunInfo{ID: "test", Scenario: "fake", Started: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f.store = st
	f.runner = &Runner{Scenario: f.sc, Store: st, Targets: targets, Traffic: fakeTraffic(kernels),
		Progress: func(p Progress) {
			f.mu.Lock()
			f.updates[p.Target] = append(f.updates[p.Target], p)
			f.mu.Unlock()
		}}
	return f
}

func resultMap(rs []CellResult) map[CellKey]CellResult {
	m := map[CellKey]CellResult{}
	for _, r := range rs {
		m[CellKey{r.Target, r.Phase, r.Profile}] = r
	}
	return m
}

func TestRunnerVerdictsAndStoredRows(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &fakeGuest{name: "win7-a", k: newFakeKernel(1)}, &fakeGuest{name: "win7-b", k: newFakeKernel(2)})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	results, err := f.runner.Run(ctx)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(results) != 12 {
		t.Fatalf("%d results, want 2 targets × 2 phases × 3 profiles", len(results))
	}
	for _, r := range results {
		want := Clean
		if r.Phase == "before" && r.Profile != "single-nbl" {
			want = Leak
		}
		if r.Verdict != want || r.Expected != want || !r.Met {
			t.Errorf("%s/%s/%s: verdict %s expected %s met %v (%s) slope %.0f [%.0f, %.0f] n=%d",
				r.Target, r.Phase, r.Profile, r.Verdict, r.Expected, r.Met, r.Note, r.Leak.Slope, r.Leak.Lo, r.Leak.Hi, r.Leak.N)
		}
		if r.Verdict == Leak {
			// The fake leaks 2 MB/s: the interval must hold it and bytes per chain must follow.
			if !(r.Leak.Lo <= fakeLeakBps*1.1 && r.Leak.Hi >= fakeLeakBps*0.9) {
				t.Errorf("%s/%s/%s: interval [%.0f, %.0f] far from the %.0f B/s leak", r.Target, r.Phase, r.Profile, r.Leak.Lo, r.Leak.Hi, fakeLeakBps)
			}
			if bpc := r.BytesPerChain; math.Abs(bpc-fakeLeakBps/fakeChainsPS) > 0.1*fakeLeakBps/fakeChainsPS {
				t.Errorf("%s/%s/%s: %.1f bytes per chain, want about %.0f", r.Target, r.Phase, r.Profile, bpc, fakeLeakBps/fakeChainsPS)
			}
			if len(r.TopTags) == 0 || r.TopTags[0].Tag != "Nnbl" || r.TopTags[0].Bytes < 500000 {
				t.Errorf("%s/%s/%s: top tags %+v, want Nnbl growing", r.Target, r.Phase, r.Profile, r.TopTags)
			}
		}
		if r.Profile == "single-nbl" && !math.IsNaN(r.BytesPerChain) {
			t.Errorf("%s/%s/single-nbl: bytes per chain %v with no multi-NBL chains, want NaN", r.Target, r.Phase, r.BytesPerChain)
		}
		rate := map[string]float64{"stream-burst": 2000, "fragment-forward": 500, "single-nbl": 2000}[r.Profile]
		if math.Abs(r.PacketsPerSec-rate) > 0.05*rate {
			t.Errorf("%s/%s/%s: %.0f packets/s, the fake sent %.0f", r.Target, r.Phase, r.Profile, r.PacketsPerSec, rate)
		}
		if r.Leak.N < 15 { // about 25 are due
			t.Errorf("%s/%s/%s: only %d samples", r.Target, r.Phase, r.Profile, r.Leak.N)
		}
	}

	st := f.store
	for _, g := range f.guests {
		phases, err := st.Phases(g.name)
		must(t, err)
		if len(phases) != 2 || phases[0].Netio != stockNetio || phases[0].Hotfix != "unpatched" ||
			phases[1].Netio != fixedNetio || phases[1].Hotfix != "patched" || phases[1].Ended.IsZero() {
			t.Errorf("%s phases %+v", g.name, phases)
		}
		windows, err := st.Windows(g.name)
		must(t, err)
		var names []string
		for _, w := range windows {
			names = append(names, w.Phase+"/"+w.Profile)
			if w.End.Before(w.Start.Add(f.sc.Timing.Window)) && w.Profile != WarmupWindow {
				t.Errorf("%s window %s/%s lasted %s, want the full %s", g.name, w.Phase, w.Profile, w.End.Sub(w.Start), f.sc.Timing.Window)
			}
		}
		want := "before/warmup before/stream-burst before/fragment-forward before/single-nbl after/warmup after/stream-burst after/fragment-forward after/single-nbl"
		if strings.Join(names, " ") != want {
			t.Errorf("%s windows %v", g.name, names)
		}
		pool, _ := st.Pool(g.name)
		if len(pool) < 150 { // about 195 are due
			t.Errorf("%s: %d samples stored", g.name, len(pool))
		}
		tr, _ := st.Traffic(g.name)
		if len(tr) < 6*5 {
			t.Errorf("%s: %d traffic seconds stored", g.name, len(tr))
		}
		events, _ := st.Events(g.name)
		kinds := map[string]int{}
		for _, e := range events {
			kinds[e.Kind]++
		}
		if kinds[EventPrepare] != 1 || kinds[EventHotfix] != 2 || kinds[EventTraffic] != 6 || kinds[EventSampler] < 2+2+2 || kinds[EventError] != 0 {
			t.Errorf("%s event kinds %v", g.name, kinds)
		}
		f.mu.Lock()
		ups := f.updates[g.name]
		f.mu.Unlock()
		if len(ups) < 10 || ups[0].Step != StepPrepare || ups[len(ups)-1].Step != StepDone {
			t.Errorf("%s progress: %d updates, first %+v last %+v", g.name, len(ups), ups[0], ups[len(ups)-1])
		}
	}
	stored, err := st.Results()
	must(t, err)
	if len(stored) != len(results) {
		t.Fatalf("%d results stored, %d returned", len(stored), len(results))
	}
	if run, _ := st.Run(); run.Finished.IsZero() {
		t.Error("run not marked finished")
	}

	// The store alone rebuilds the same verdicts.
	must(t, st.Close())
	re, err := Open(f.dir)
	must(t, err)
	defer re.Close()
	rebuilt, err := Analyze(re, AnalysisFor(f.sc))
	must(t, err)
	got := resultMap(rebuilt)
	for _, r := range results {
		b := got[CellKey{r.Target, r.Phase, r.Profile}]
		if b.Verdict != r.Verdict || b.Leak.Slope != r.Leak.Slope || b.Leak.N != r.Leak.N || b.Met != r.Met {
			t.Errorf("rebuilt %s/%s/%s: %s %.0f n=%d, run gave %s %.0f n=%d", r.Target, r.Phase, r.Profile,
				b.Verdict, b.Leak.Slope, b.Leak.N, r.Verdict, r.Leak.Slope, r.Leak.N)
		}
	}
}

func TestRunnerCollectsEveryFailureAndKeepsData(t *testing.T) {
	t.Parallel()
	f := newFixture(t,
		&fakeGuest{name: "no-login", k: newFakeKernel(3), failPrepare: true},
		&fakeGuest{name: "no-hotfix", k: newFakeKernel(4), failHotfix: true},
		&fakeGuest{name: "agent-dies", k: newFakeKernel(5), samplerDiesIn: "after"},
		&fakeGuest{name: "healthy", k: newFakeKernel(6)},
		&fakeGuest{name: "no-route", k: &fakeKernel{rng: rand.New(rand.NewSource(7)), boot: time.Now(), base: 60e6,
			failTraffic: traffic.FragmentForward}},
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	results, err := f.runner.Run(ctx)
	var me *multierror.Error
	if !errors.As(err, &me) || len(me.Errors) != 4 {
		t.Fatalf("want a multierror with 4 failing targets, got %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"target no-login: prepare: WinRM refused", "target no-hotfix: phase after: install hotfix: wusa",
		"target agent-dies: phase after:", "target no-route: phase before: traffic fragment-forward: send to",
		"target no-route: phase after: traffic fragment-forward"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not contain %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "healthy") {
		t.Errorf("the healthy target must not fail:\n%s", msg)
	}

	byCell := resultMap(results)
	if len(results) != 5*2*3 {
		t.Fatalf("%d results, want every cell of the scenario (30)", len(results))
	}
	// Failed traffic spoils its own cells only: the other profiles and the next phase ran.
	for _, ph := range []string{"before", "after"} {
		if r := byCell[CellKey{"no-route", ph, "fragment-forward"}]; r.Met || r.PacketsPerSec != 0 || !strings.Contains(r.Note, "no traffic") {
			t.Errorf("no-route/%s/fragment-forward (no traffic) met its expectation: %+v", ph, r)
		}
		if r := byCell[CellKey{"no-route", ph, "single-nbl"}]; r.Verdict != Clean || !r.Met {
			t.Errorf("no-route/%s/single-nbl: %s (%s)", ph, r.Verdict, r.Note)
		}
	}
	if r := byCell[CellKey{"no-route", "before", "stream-burst"}]; r.Verdict != Leak {
		t.Errorf("no-route/before/stream-burst: %s (%s)", r.Verdict, r.Note)
	}
	// Nothing measured: every cell says so and misses its expectation.
	for _, ph := range []string{"before", "after"} {
		r := byCell[CellKey{"no-login", ph, "stream-burst"}]
		if r.Verdict != Incomplete || r.Met || !strings.Contains(r.Note, "never ran") {
			t.Errorf("no-login/%s: %+v", ph, r)
		}
	}
	// The phase before the failure keeps its data and verdicts.
	for _, target := range []string{"no-hotfix", "agent-dies", "healthy"} {
		if r := byCell[CellKey{target, "before", "stream-burst"}]; r.Verdict != Leak || !r.Met {
			t.Errorf("%s/before/stream-burst: %s (%s)", target, r.Verdict, r.Note)
		}
		if r := byCell[CellKey{target, "before", "single-nbl"}]; r.Verdict != Clean || !r.Met {
			t.Errorf("%s/before/single-nbl: %s (%s)", target, r.Verdict, r.Note)
		}
	}
	if r := byCell[CellKey{"no-hotfix", "after", "stream-burst"}]; r.Met || r.Verdict != Incomplete {
		t.Errorf("no-hotfix/after: %+v", r)
	}
	if r := byCell[CellKey{"healthy", "after", "stream-burst"}]; r.Verdict != Clean || !r.Met {
		t.Errorf("healthy/after/stream-burst: %s (%s)", r.Verdict, r.Note)
	}
	// The agent died 30 samples (~0.3 s) into "after": the warm-up window holds its samples,
	// the phase and the cut window are closed, and the sampler's last error is an event.
	pool, _ := f.store.Pool("agent-dies")
	after := 0
	for _, p := range pool {
		if p.Phase == "after" {
			after++
		}
	}
	if after < 10 || after > 16 {
		t.Errorf("agent-dies kept %d samples of phase after, want the ~15 sent", after)
	}
	phases, _ := f.store.Phases("agent-dies")
	if len(phases) != 2 || phases[1].Ended.IsZero() {
		t.Errorf("agent-dies phases %+v", phases)
	}
	events, _ := f.store.Events("agent-dies")
	var sawShell, sawErr bool
	for _, e := range events {
		sawShell = sawShell || e.Kind == EventSampler && strings.Contains(e.Message, "shell closed")
		sawErr = sawErr || e.Kind == EventError && strings.Contains(e.Message, "stream ended")
	}
	if !sawShell || !sawErr {
		t.Errorf("agent-dies events %+v", events)
	}
	// A failed target still reports progress, ending in "failed".
	f.mu.Lock()
	ups := f.updates["no-login"]
	f.mu.Unlock()
	if len(ups) == 0 || ups[len(ups)-1].Step != StepFailed || ups[len(ups)-1].Err == nil {
		t.Errorf("no-login progress %+v", ups)
	}
	// Arch comes from the inventory, which the target that never logged in lacks.
	tg, _ := f.store.Targets()
	for _, ti := range tg {
		if (ti.Arch == "x64") == (ti.Name == "no-login") {
			t.Errorf("target %+v", ti)
		}
	}
	if len(tg) != 5 {
		t.Errorf("%d targets recorded, want 5", len(tg))
	}
}

func TestRunnerRejectsBadSetup(t *testing.T) {
	f := newFixture(t, &fakeGuest{name: "a", k: newFakeKernel(1)})
	ctx := context.Background()
	r := *f.runner
	r.Targets = append(r.Targets, r.Targets[0])
	if _, err := r.Run(ctx); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("duplicate target: %v", err)
	}
	r = *f.runner
	r.Scenario = nil
	if _, err := r.Run(ctx); err == nil {
		t.Error("no scenario must fail")
	}
	r = *f.runner
	r.Targets = []RunTarget{{Info: TargetInfo{Name: "x"}}}
	if _, err := r.Run(ctx); err == nil || !strings.Contains(err.Error(), "no guest") {
		t.Errorf("target without guest: %v", err)
	}
}

func TestBoundedAbandonsACallThatIgnoresItsContext(t *testing.T) {
	saved := abandonGrace
	abandonGrace = 100 * time.Millisecond
	defer func() { abandonGrace = saved }()
	release := make(chan struct{})
	defer close(release)
	start := time.Now()
	_, err := bounded(context.Background(), 50*time.Millisecond, "stuck call", func(ctx context.Context) (int, error) {
		<-release // ignores ctx
		return 1, nil
	})
	if err == nil || !strings.Contains(err.Error(), "stuck call did not return") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("gave up only after %s", d)
	}
	v, err := bounded(context.Background(), time.Second, "quick", func(ctx context.Context) (int, error) { return 7, nil })
	if v != 7 || err != nil {
		t.Fatalf("quick call: %v %v", v, err)
	}
}

// A guest that stops answering in a phase is GUEST_HUNG with its last pool figure, is
// reset through Recover with its evidence recorded, and the other target goes on.
func TestRunnerDetectsAHungGuestAndRecoversIt(t *testing.T) {
	t.Parallel()
	hung := &fakeGuest{name: "hangs", k: newFakeKernel(3), hangsIn: "before"}
	fine := &fakeGuest{name: "fine", k: newFakeKernel(4)}
	f := newFixture(t, hung, fine)
	f.sc.Timing.SampleTimeout = 100 * time.Millisecond
	var recovered atomic.Int32
	f.runner.Targets[0].Recover = func(ctx context.Context) (contract.Evidence, error) {
		recovered.Add(1)
		return contract.Evidence{At: time.Now(), Status: "running", ConsoleLog: "vm/hangs/console.log",
			Screenshot: "vm/hangs/hung.png", ConsoleTail: "wfplab-sim: pool limit passed"}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	results, err := f.runner.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "hangs") || !strings.Contains(err.Error(), "GUEST_HUNG") {
		t.Fatalf("run error %v: want GUEST_HUNG naming the target", err)
	}
	if recovered.Load() != 1 {
		t.Fatalf("Recover called %d times, want 1", recovered.Load())
	}
	evs, rerr := f.store.Events("hangs")
	if rerr != nil {
		t.Fatal(rerr)
	}
	var hungMsg, evidence string
	for _, e := range evs {
		if e.Kind == EventGuestHung && strings.HasPrefix(e.Message, "GUEST_HUNG") {
			hungMsg = e.Message
		} else if e.Kind == EventGuestHung {
			evidence = e.Message
		}
	}
	var files []string
	for _, e := range evs {
		if e.Kind == EventFile {
			files = append(files, e.Message)
		}
	}
	if want := []string{"console log: vm/hangs/console.log", "screenshot when hung: vm/hangs/hung.png"}; !slices.Equal(files, want) {
		t.Errorf("file events %q, want %q", files, want)
	}
	if !strings.Contains(hungMsg, "last nonpaged pool") || !strings.Contains(evidence, "vm/hangs/console.log") ||
		!strings.Contains(evidence, "vm/hangs/hung.png") {
		t.Fatalf("hang events: %q / %q", hungMsg, evidence)
	}
	m := resultMap(results)
	if r, ok := m[CellKey{"fine", "after", "single-nbl"}]; !ok || r.Verdict != "CLEAN" {
		t.Fatalf("the other target did not go on: %+v", r)
	}
	phases, perr := f.store.Phases("hangs")
	if perr != nil || len(phases) != 1 {
		t.Fatalf("the hung target's phases: %+v, %v; want only the one it hung in", phases, perr)
	}
}

// The store lists targets in the order the runner was given them (the scenario's), however
// their goroutines start: the first here prepares last.
func TestRunnerStoresTargetsInTheGivenOrder(t *testing.T) {
	var guests []*fakeGuest
	for i, name := range []string{"c-first", "a-second", "b-third"} {
		guests = append(guests, &fakeGuest{name: name, k: newFakeKernel(int64(i)), prepareDelay: time.Duration(2-i) * 150 * time.Millisecond})
	}
	f := newFixture(t, guests...)
	f.sc.Phases = f.sc.Phases[:1]
	f.sc.Profiles = f.sc.Profiles[:1]
	// All three fail, the first last: the error lists them in the given order all the same.
	for _, g := range guests {
		g.failPrepare = true
	}
	results, err := f.runner.Run(t.Context())
	if err == nil {
		t.Fatal("no error from three failed prepares")
	}
	var order []string
	for _, e := range err.(*multierror.Error).Errors {
		order = append(order, strings.TrimSuffix(strings.Fields(e.Error())[1], ":"))
	}
	infos, err := f.store.Targets()
	if err != nil {
		t.Fatal(err)
	}
	var stored, analysed []string
	for _, i := range infos {
		stored = append(stored, i.Name)
	}
	for _, r := range results {
		analysed = append(analysed, r.Target)
	}
	want := []string{"c-first", "a-second", "b-third"}
	if !slices.Equal(stored, want) || !slices.Equal(analysed, want) || !slices.Equal(order, want) {
		t.Errorf("store lists %v, results %v, errors %v; want %v", stored, analysed, order, want)
	}
}

// A guest whose netio.sys is fixed before phase before is stopped with ALREADY_PATCHED
// before anything is measured, its cells are incomplete (never "the bug does not
// reproduce"), and the other target runs on.
func TestRunnerStopsAnAlreadyPatchedGuest(t *testing.T) {
	patched := &fakeGuest{name: "patched", k: newFakeKernel(1)}
	patched.k.patched = true
	f := newFixture(t, patched, &fakeGuest{name: "fresh", k: newFakeKernel(2)})
	results, err := f.runner.Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "target patched") || !strings.Contains(err.Error(), AlreadyPatched+": netio.sys "+fixedNetio) {
		t.Fatalf("Run: %v", err)
	}
	if strings.Contains(err.Error(), "target fresh") {
		t.Errorf("the unpatched target failed too: %v", err)
	}
	if patched.starts != 0 {
		t.Errorf("the patched guest was sampled %d times", patched.starts)
	}
	for _, r := range results {
		switch {
		case r.Target == "patched" && (r.Verdict != Incomplete || r.Met):
			t.Errorf("patched %s/%s: %s met=%v, want INCOMPLETE and not met", r.Phase, r.Profile, r.Verdict, r.Met)
		case r.Target == "fresh" && !r.Met:
			t.Errorf("fresh %s/%s: %s, want %s", r.Phase, r.Profile, r.Verdict, r.Expected)
		}
	}
	events, _ := f.store.Events("patched")
	found := false
	for _, e := range events {
		found = found || e.Kind == EventError && strings.Contains(e.Message, AlreadyPatched)
	}
	if !found {
		t.Errorf("no %s event for the patched target: %+v", AlreadyPatched, events)
	}
}
