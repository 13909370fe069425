package bench

import (
	"fmt"
	"maps"
	"math"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/wfplab/wfplab/lab/contract"
	"github.com/wfplab/wfplab/scenarios"
)

// WarmupWindow names the quiet window at the start of each phase. It is sampled and
// stored but is not a cell.
const WarmupWindow = "warmup"

// DefaultTopTags is how many growing pool tags a result lists.
const DefaultTopTags = 5

// CellKey names one target × phase × profile.
type CellKey struct {
	Target  string
	Phase   string
	Profile string
}

// Analysis says how to turn a run's samples into results.
type Analysis struct {
	Rule scenarios.VerdictRule
	// Settle is the start of each window left out of the estimate.
	Settle time.Duration
	// Expect gives a cell's expected verdict ("" for none). nil expects nothing.
	Expect func(target, phase, profile string) Verdict
	// Cells are the cells the scenario has, in report order. A cell with no window in
	// the store (its target failed first) gets an INCONCLUSIVE result saying so; windows
	// not listed here are analysed after them. Empty: the store's windows, as recorded.
	Cells []CellKey
	// TopTags is how many growing tags to list (0: DefaultTopTags).
	TopTags int
	// Window is a profile window's planned length: one that ended sooner was cut short and
	// is INCOMPLETE. 0: only windows that never ended are.
	Window time.Duration
	// Profiles are the scenario's traffic profiles by name: what each window asked for, so
	// a verdict can be checked against its evidence. Empty: no such check.
	Profiles map[string]scenarios.Profile
	// Block is Timing.Block: traffic on and off in turn from each window's start. Set, the
	// leak is judged in bytes per blocked chain (DoseCI) against Rule.ThresholdPerChain.
	Block time.Duration
}

// AnalysisFor takes the verdict rule, settle time, cells and expectations from a
// scenario. Expectations follow scenarios.Scenario.Expected: an empty field matches
// every value and the last matching expectation wins.
func AnalysisFor(sc *scenarios.Scenario) Analysis {
	a := Analysis{Rule: sc.Verdict, Settle: sc.Timing.Settle, TopTags: DefaultTopTags, Window: sc.Timing.Window,
		Block: sc.Timing.Block}
	a.Expect = func(target, phase, profile string) Verdict {
		v, _ := sc.Expected(target, phase, profile)
		return Verdict(v)
	}
	a.Profiles = map[string]scenarios.Profile{}
	for _, p := range sc.Profiles {
		a.Profiles[p.Name] = p
	}
	for _, c := range sc.Cells() {
		a.Cells = append(a.Cells, CellKey{c.Target.Name, c.Phase.Name, c.Profile.Name})
	}
	return a
}

// Analyze computes every cell's result from the store alone: the leak slope of nonpaged
// bytes over guest time in [window start + settle, window end], its verdict, the rate of
// multi-NBL chains and bytes per chain, traffic achieved, and the tags that grew. It does
// not write; Reanalyze does. A cell that cannot be analysed is INCONCLUSIVE with a note;
// the error is for a store that cannot be read.
func Analyze(st *Store, a Analysis) ([]CellResult, error) {
	if a.TopTags <= 0 {
		a.TopTags = DefaultTopTags
	}
	windows, err := st.Windows("")
	if err != nil {
		return nil, err
	}
	byKey := map[CellKey]Window{}
	var order []CellKey
	seen := map[CellKey]bool{}
	for _, c := range a.Cells {
		if !seen[c] {
			seen[c] = true
			order = append(order, c)
		}
	}
	for _, w := range windows {
		if w.Profile == WarmupWindow {
			continue
		}
		k := CellKey{w.Target, w.Phase, w.Profile}
		byKey[k] = w
		if !seen[k] {
			seen[k] = true
			order = append(order, k)
		}
	}

	// Each target's cells are analysed from its own samples: targets in parallel, each
	// result in its place in order.
	results := make([]CellResult, len(order))
	type job struct {
		target string
		cells  []int // indices into order and results
	}
	var jobs []*job
	jobOf := map[string]*job{}
	for i, k := range order {
		if _, ran := byKey[k]; !ran {
			r := noDataResult(k, "this window never ran (see the target's events for why)")
			r.Verdict = Incomplete
			results[i] = a.finish(r)
			continue
		}
		j := jobOf[k.Target]
		if j == nil {
			j = &job{target: k.Target}
			jobOf[k.Target] = j
			jobs = append(jobs, j)
		}
		j.cells = append(j.cells, i)
	}
	jobErrs := make([]error, len(jobs))
	analyse := func(n int) {
		j := jobs[n]
		td, err := loadTarget(st, j.target)
		if err != nil {
			jobErrs[n] = err
			for _, i := range j.cells {
				results[i] = a.finish(noDataResult(order[i], "the store could not be read for this target"))
			}
			return
		}
		// Bytes per chain: one noise model per phase, fitted to all its windows.
		fits := map[CellKey]doseFit{}
		if a.Block > 0 {
			byPhase := map[string][]Window{}
			var phases []string
			for _, w := range windows {
				if w.Target == j.target {
					if byPhase[w.Phase] == nil {
						phases = append(phases, w.Phase)
					}
					byPhase[w.Phase] = append(byPhase[w.Phase], w)
				}
			}
			for _, ph := range phases {
				maps.Copy(fits, td.phaseDoses(byPhase[ph], a))
			}
		}
		for _, i := range j.cells {
			results[i] = a.finish(td.analyzeWindow(byKey[order[i]], a, fits))
		}
		// Tag growth needs the tag tables at each cell's first and last sample: one pass.
		jobErrs[n] = td.fillTopTags(st, j.target, results, j.cells, a.TopTags)
	}
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(jobs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range next {
				analyse(n)
			}
		}()
	}
	for n := range jobs {
		next <- n
	}
	close(next)
	wg.Wait()
	var errs *multierror.Error
	for _, err := range jobErrs {
		if err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	return results, errs.ErrorOrNil()
}

// Reanalyze runs Analyze and records every result, replacing earlier ones.
func Reanalyze(st *Store, a Analysis) ([]CellResult, error) {
	results, err := Analyze(st, a)
	var errs *multierror.Error
	if err != nil {
		errs = multierror.Append(errs, err)
	}
	for _, r := range results {
		if err := st.RecordResult(r); err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	if err := st.Flush(); err != nil {
		errs = multierror.Append(errs, err)
	}
	return results, errs.ErrorOrNil()
}

func noDataResult(k CellKey, note string) CellResult {
	nan := math.NaN()
	return CellResult{Target: k.Target, Phase: k.Phase, Profile: k.Profile,
		Leak:         Estimate{Slope: nan, Lo: nan, Hi: nan, NEff: nan},
		ChainsPerSec: nan, PacketsPerSec: nan, BytesPerChain: nan,
		Verdict: Inconclusive, Note: note}
}

// finish sets the expectation and whether it is met (a cell with no expectation is met; an
// incomplete one meets none).
func (a Analysis) finish(r CellResult) CellResult {
	if a.Expect != nil {
		r.Expected = a.Expect(r.Target, r.Phase, r.Profile)
	}
	r.Met = r.Expected == "" || r.Verdict != Incomplete && r.Verdict == r.Expected
	return r
}

// TakenTimes places each sample on the host clock at the moment the guest took it.
// A sample's At is when its line reached the host, and WinRM delivers output in bursts
// when it polls, so arrival lags by a varying delay; the guest's clock is exact. Within
// one stretch of a phase on one boot (guest time never going back), the sample that
// arrived soonest after it was taken fixes the offset: taken = guest time + min(At − guest time).
func TakenTimes(pool []PoolPoint) []time.Time {
	out := make([]time.Time, len(pool))
	for start := 0; start < len(pool); {
		end := start + 1
		for end < len(pool) && pool[end].Target == pool[start].Target && pool[end].Phase == pool[start].Phase &&
			pool[end].GuestUS >= pool[end-1].GuestUS {
			end++
		}
		offset := int64(math.MaxInt64)
		for _, p := range pool[start:end] {
			offset = min(offset, p.At.UnixNano()-int64(p.GuestUS)*1000)
		}
		for i := start; i < end; i++ {
			out[i] = time.Unix(0, offset+int64(pool[i].GuestUS)*1000).UTC()
		}
		start = end
	}
	return out
}

// targetData is what one target's cells are computed from.
type targetData struct {
	pool    []PoolPoint
	taken   []time.Time // TakenTimes(pool)
	traffic []TrafficPoint
	// used is each analysed cell's first and last sample time, for tag growth.
	used map[CellKey][2]time.Time
	// scratch holds one window's samples at a time.
	scratch []PoolPoint
}

func loadTarget(st *Store, target string) (*targetData, error) {
	pool, err := st.Pool(target)
	if err != nil {
		return nil, err
	}
	tr, err := st.Traffic(target)
	if err != nil {
		return nil, err
	}
	return &targetData{pool: pool, taken: TakenTimes(pool), traffic: tr, used: map[CellKey][2]time.Time{}}, nil
}

// series is one window's samples as the leak fit takes them.
type series struct {
	x, y       []float64 // guest seconds and pool bytes from the first sample
	multi, all []float64 // cumulative multi-NBL and all blocked chains
	// multiBlocked: multi counts blocked multi-NBL chains (a version 2 driver), not seen.
	multiBlocked bool
	notes        []string
	from         time.Time // the first moment analysed: the window's start + settle
	open         bool      // the window never ended
	first, last  time.Time // the first and last sample's arrival; zero without samples
}

// dose is the chain count the leak is per: all blocked chains for a single-NBL profile,
// multi-NBL ones otherwise.
func (s series) dose(profile string, a Analysis) []float64 {
	if p, ok := a.Profiles[profile]; ok && p.Kind == scenarios.KindSingleNBL {
		return s.all
	}
	return s.multi
}

// series picks w's samples: those taken within [start + settle, end] by the guest's clock
// mapped onto the host's, after a reboot within the window only.
func (td *targetData) series(w Window, a Analysis) series {
	s := series{from: w.Start.Add(a.Settle), open: w.End.IsZero()}
	if s.open {
		s.notes = append(s.notes, "the window never ended (the run stopped early); analysed up to its last sample")
	}
	from, open := s.from, s.open
	// Into a buffer every window of the target reuses (nothing below keeps pts).
	n := 0
	for i := range td.pool {
		if at := td.taken[i]; td.pool[i].Phase == w.Phase && !at.Before(from) && (open || !at.After(w.End)) {
			n++
		}
	}
	if cap(td.scratch) < n {
		td.scratch = make([]PoolPoint, 0, n)
	}
	pts := td.scratch[:0]
	for i := range td.pool {
		at := td.taken[i]
		if td.pool[i].Phase == w.Phase && !at.Before(from) && (open || !at.After(w.End)) {
			pts = append(pts, td.pool[i])
		}
	}
	td.scratch = pts
	// A guest whose clock went back rebooted within the window: keep the part after it.
	for i := len(pts) - 1; i > 0; i-- {
		if pts[i].GuestUS < pts[i-1].GuestUS {
			s.notes = append(s.notes, fmt.Sprintf("guest time went back at sample %d (a reboot?); only the %d samples after it are used",
				pts[i].Seq, len(pts)-i))
			pts = pts[i:]
			break
		}
	}
	if len(pts) > 0 {
		s.first, s.last = pts[0].At, pts[len(pts)-1].At
	}
	s.x, s.y = make([]float64, len(pts)), make([]float64, len(pts))
	// Cumulative multi-NBL and all blocked chains at each sample: the dose.
	s.multi, s.all = make([]float64, len(pts)), make([]float64, len(pts))
	// The leak is per multi-NBL chain blocked. A version 1 driver counts only chains seen
	// (blocked or not): then those, and the note says so.
	s.multiBlocked = len(pts) > 0
	for _, p := range pts {
		s.multiBlocked = s.multiBlocked && p.HasMultiBlocked
	}
	if len(pts) >= 2 && !s.multiBlocked {
		s.notes = append(s.notes, "the driver reports no multi_blocked count (IOCTL version 1): chains per second and bytes per chain use multi-NBL chains seen, blocked or not")
	}
	for i, p := range pts {
		s.x[i] = float64(p.GuestUS-pts[0].GuestUS) / 1e6
		s.y[i] = float64(p.NPBytes) - float64(pts[0].NPBytes)
		if i > 0 {
			if s.multiBlocked {
				s.multi[i] = s.multi[i-1] + float64(counterDelta(pts[i-1].MultiBlocked, p.MultiBlocked))
			} else {
				s.multi[i] = s.multi[i-1] + float64(counterDelta(pts[i-1].MultiChain, p.MultiChain))
			}
			s.all[i] = s.all[i-1] + float64(counterDelta(pts[i-1].Blocked, p.Blocked))
		}
	}
	return s
}

// doseFit is a window's bytes-per-chain fit, or why there is none.
type doseFit struct {
	d   Dose
	err error
}

// phaseDoses fits bytes per chain in every window of a phase (the warm-up too: its quiet
// samples show the noise) with one noise model, as DoseCIs does.
func (td *targetData) phaseDoses(windows []Window, a Analysis) map[CellKey]doseFit {
	var ss []DoseSeries
	var keys []CellKey
	for _, w := range windows {
		s := td.series(w, a)
		ss = append(ss, DoseSeries{T: s.x, Chains: s.dose(w.Profile, a), Pool: s.y})
		keys = append(keys, CellKey{w.Target, w.Phase, w.Profile})
	}
	ds, errs := DoseCIs(ss, confidenceOf(a.Rule))
	out := map[CellKey]doseFit{}
	for i, k := range keys {
		out[k] = doseFit{ds[i], errs[i]}
	}
	return out
}

// analyzeWindow is w's result; fits holds the bytes-per-chain fits of its phase when the
// traffic ran in blocks (a window missing from it is fitted alone).
func (td *targetData) analyzeWindow(w Window, a Analysis, fits map[CellKey]doseFit) CellResult {
	k := CellKey{w.Target, w.Phase, w.Profile}
	r := noDataResult(k, "")
	s := td.series(w, a)
	notes, from, open := s.notes, s.from, s.open
	if !s.first.IsZero() {
		td.used[k] = [2]time.Time{s.first, s.last}
	}
	x, y, multi, all := s.x, s.y, s.multi, s.all
	r.PacketsPerSec = td.packetRate(w)
	r.Leak.N = len(x)
	blockedPerSec := math.NaN()
	if n := len(x); n >= 2 && x[n-1] > 0 {
		// Per second of traffic: with blocks, the analysed stretch's on-time.
		on := x[n-1]
		if a.Block > 0 {
			on = scenarios.OnTime(from.Sub(w.Start), from.Sub(w.Start)+time.Duration(x[n-1]*1e9), a.Block).Seconds()
		}
		if on > 0 {
			r.ChainsPerSec = multi[n-1] / on
			blockedPerSec = all[n-1] / on
		}
	}
	var verdict Verdict
	var why string
	if a.Block > 0 {
		// A single-NBL profile's chains are its blocked ones; the others' are multi-NBL.
		perSec := r.ChainsPerSec
		if p, ok := a.Profiles[w.Profile]; ok && p.Kind == scenarios.KindSingleNBL {
			perSec = blockedPerSec
		}
		fit, ok := fits[k]
		if !ok {
			fit = td.phaseDoses([]Window{w}, a)[k]
		}
		d, err := fit.d, fit.err
		if err != nil && len(x) >= MinSamples {
			notes = append(notes, err.Error())
		}
		if err == nil {
			r.Dose = &d
			r.BytesPerChain = d.PerChain
			// The rate stays the figure users read: bytes per chain at the traffic's chain rate.
			r.Leak = Estimate{Slope: d.PerChain * perSec, Lo: d.Lo * perSec, Hi: d.Hi * perSec, N: d.N, NEff: d.DF}
		}
		verdict, why = DecideDose(d, a.Rule.ThresholdPerChain, confidenceOf(a.Rule))
	} else {
		est, err := SlopeCI(x, y, confidenceOf(a.Rule))
		if err != nil && len(x) >= MinSamples {
			notes = append(notes, err.Error())
		}
		if err == nil {
			r.Leak = est
		}
		if r.ChainsPerSec > 0 && !math.IsNaN(r.Leak.Slope) {
			r.BytesPerChain = r.Leak.Slope / r.ChainsPerSec
		}
		verdict, why = Decide(r.Leak, a.Rule)
	}
	if !(r.PacketsPerSec > 0) {
		// Without traffic the window tested nothing, whatever the pool did.
		verdict, why = Inconclusive, "no traffic was sent in this window (see the target's events)"
	} else if p, ok := a.Profiles[w.Profile]; ok {
		if missing := lacksEvidence(p, r.PacketsPerSec, r.ChainsPerSec, blockedPerSec); missing != "" && (verdict == Leak || verdict == Clean) {
			verdict, why = Inconclusive, missing
		}
		if p.Rate > 0 && r.PacketsPerSec < 0.9*p.Rate {
			notes = append(notes, fmt.Sprintf("traffic achieved %.0f of the %.0f packets/s asked (%.0f%%)", r.PacketsPerSec, p.Rate, 100*r.PacketsPerSec/p.Rate))
		}
	}
	if ran := w.End.Sub(w.Start); open || (a.Window > 0 && ran < a.Window-a.Window/100) {
		// Part of a window proves nothing either way: the estimate stays for the reader.
		verdict, why = Incomplete, "" // an open window's note says so already
		if !open {
			why = fmt.Sprintf("the window ran %s of its %s (interrupted, guest hung or sampler ended)", ran.Round(100*time.Millisecond), a.Window)
		}
	}
	r.Verdict = verdict
	if why != "" {
		notes = append([]string{why}, notes...)
	}
	r.Note = strings.Join(notes, "; ")
	return r
}

// counterDelta is how much a driver counter grew; a counter that went down was reset
// (driver restart) and counted again from zero.
func counterDelta(prev, cur uint64) uint64 {
	if cur >= prev {
		return cur - prev
	}
	return cur
}

// packetRate is the traffic achieved in a window: packets over the time the ticks cover.
func (td *targetData) packetRate(w Window) float64 {
	var packets uint64
	var span time.Duration
	n := 0
	for _, t := range td.traffic {
		if t.Phase == w.Phase && t.Profile == w.Profile {
			packets += t.Packets
			span += t.Span
			n++
		}
	}
	if n == 0 {
		return 0
	}
	if span <= 0 && !w.End.IsZero() {
		span = w.End.Sub(w.Start)
	}
	if span <= 0 {
		return math.NaN()
	}
	return float64(packets) / span.Seconds()
}

// fillTopTags sets TopTags on this target's results (those at cells) from the tag tables
// at each cell's first and last analysed sample.
func (td *targetData) fillTopTags(st *Store, target string, results []CellResult, cells []int, top int) error {
	if len(td.used) == 0 {
		return nil
	}
	type snap struct {
		phase       string
		from, to    time.Time // the cell's first and last analysed sample
		first, last map[string]contract.TagUsage
		version     uint64 // of last
	}
	// A slice, not the map: visit runs for every sample.
	snaps := map[CellKey]*snap{}
	var spans []*snap
	for k, r := range td.used {
		s := &snap{phase: k.Phase, from: r[0], to: r[1]}
		snaps[k] = s
		spans = append(spans, s)
	}
	err := st.walkTags(target, func(_, phase string, pos samplePos, table *tagTable) {
		for _, s := range spans {
			if s.phase != phase || pos.at.Before(s.from) || pos.at.After(s.to) {
				continue
			}
			if s.first == nil {
				s.first, s.version = maps.Clone(table.Tags()), table.version
				s.last = s.first
			} else if table.version != s.version {
				// Copied only when it changed: most samples change no tag.
				s.last, s.version = maps.Clone(table.Tags()), table.version
			}
		}
	})
	if err != nil {
		return err
	}
	for _, i := range cells {
		r := &results[i]
		if s := snaps[CellKey{r.Target, r.Phase, r.Profile}]; r.Target == target && s != nil && s.first != nil {
			r.TopTags = tagGrowth(s.first, s.last, top)
		}
	}
	return nil
}

// TagGrowthOf lists the top tags whose bytes grew most in one phase between from and to,
// from full tag tables as Store.Tags returns them (one point per tag per sample, in time
// order): from the table at the last sample at or before from (the first sample after it
// when none came before) to the table at the last sample at or before to. A zero to means
// up to the last sample, for a window cut short.
func TagGrowthOf(points []TagPoint, phase string, from, to time.Time, top int) []TagGrowth {
	var first, last map[string]contract.TagUsage
	var at time.Time
	var table map[string]contract.TagUsage
	take := func() {
		if table == nil {
			return
		}
		if !at.After(from) || first == nil {
			first = table
		}
		if at.After(from) {
			last = table
		}
	}
	for _, p := range points {
		if p.Phase != phase || (!to.IsZero() && p.At.After(to)) {
			continue
		}
		if table == nil || !p.At.Equal(at) {
			take()
			at, table = p.At, map[string]contract.TagUsage{}
		}
		table[p.Tag] = contract.TagUsage{Allocs: p.Allocs, Frees: p.Frees, Bytes: p.Bytes}
	}
	take()
	if last == nil {
		return nil
	}
	return tagGrowth(first, last, top)
}

// tagGrowth lists the tags whose bytes grew most from first to last, largest first.
func tagGrowth(first, last map[string]contract.TagUsage, top int) []TagGrowth {
	var out []TagGrowth
	for tag, l := range last {
		growth := int64(l.Bytes) - int64(first[tag].Bytes)
		if growth > 0 {
			out = append(out, TagGrowth{Tag: tag, Bytes: growth})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Bytes != out[j].Bytes {
			return out[i].Bytes > out[j].Bytes
		}
		return out[i].Tag < out[j].Tag
	})
	if len(out) > top {
		out = out[:top]
	}
	return out
}

// evidenceShare is the least share of the chains the traffic should have made that the
// driver must have blocked for a LEAK or CLEAN to stand: below it, the window did not test
// what its profile is for (driver not running, traffic not reaching the layer). TCP may
// coalesce several bursts into one receive, so the stream layer's bar is lower: measured
// through QEMU's user-mode network, 30-40% of the bursts arrived as separate chains.
const (
	evidenceShare       = 0.5
	streamEvidenceShare = 0.2
)

// lacksEvidence says why a window's verdict would rest on nothing, or "": a multi-NBL
// profile needs blocked multi-NBL chains at the rate its traffic makes them (one per burst
// at the stream layer, one per datagram on the forward path), single-nbl blocked chains at
// its datagram rate.
func lacksEvidence(p scenarios.Profile, packetsPerSec, multiPerSec, blockedPerSec float64) string {
	want, share := packetsPerSec, evidenceShare
	switch p.Kind {
	case scenarios.KindStreamBurst:
		share = streamEvidenceShare
		if p.BurstSegments > 0 {
			want = packetsPerSec / float64(p.BurstSegments)
		}
	case scenarios.KindFragmentForward, scenarios.KindSingleNBL:
	default:
		return ""
	}
	switch {
	case math.IsNaN(blockedPerSec):
		return "no evidence: too few samples to count the chains the driver blocked"
	case blockedPerSec < share*want:
		return fmt.Sprintf("no evidence: the driver blocked %.0f chains/s where the traffic should make about %.0f (driver not running, or traffic not reaching its layer?)", blockedPerSec, want)
	case p.Kind != scenarios.KindSingleNBL && multiPerSec < share*want:
		return fmt.Sprintf("no evidence: %.0f multi-NBL chains/s reached the driver where the traffic should make about %.0f", multiPerSec, want)
	}
	return ""
}
