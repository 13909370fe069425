package bench

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"
	"golang.org/x/perf/benchmath"

	"github.com/wfplab/wfplab/lab/contract"
	"github.com/wfplab/wfplab/scenarios"
)

// minTputSamples is the fewest samples a throughput window's figures may span: a rate
// needs at least two intervals of guest time.
const minTputSamples = 3

// ProfileLayer is the layer whose classified packets are a profile kind's throughput.
func ProfileLayer(kind string) contract.Layer {
	switch kind {
	case scenarios.KindStreamBurst:
		return contract.LayerStream
	case scenarios.KindFragmentForward:
		return contract.LayerForward
	}
	return contract.LayerTransport
}

// layerIndex is l's place in TputWindow.Classified.
func layerIndex(l contract.Layer) int { return slices.Index(contract.Layers, l) }

// TputFigures computes every throughput window's figures from the store's samples: per
// second of guest time between the first and last sample taken in [start + settle, end],
// packets (NBLs) classified at each layer and CPU busy; and sent and forwarded per second of the
// window. A window that did not run to within 90% of its planned length, or spans fewer
// than minTputSamples samples, keeps NaN figures.
func TputFigures(st *Store, tp scenarios.Throughput) ([]TputWindow, error) {
	windows, err := st.TputWindows("")
	if err != nil {
		return nil, err
	}
	var errs *multierror.Error
	byTarget := map[string]*tputData{}
	for i := range windows {
		w := &windows[i]
		td, ok := byTarget[w.Target]
		if !ok {
			td, err = loadTputData(st, w.Target)
			if err != nil {
				errs = multierror.Append(errs, fmt.Errorf("throughput of target %s: %w", w.Target, err))
			}
			byTarget[w.Target] = td
		}
		*w = td.figures(*w, tp)
	}
	return windows, errs.ErrorOrNil()
}

// tputData is one target's samples, index-aligned: pool (for guest time), CPU, and the
// driver's per-layer counts of packets (NBLs) classified: packets, not chains, since how
// many segments TCP coalesces into one chain varies with the receiver's load.
type tputData struct {
	pool     []PoolPoint
	taken    []time.Time
	cpu      []CPUPoint
	classify []map[contract.Layer]uint64 // nil where the driver was not running
}

func loadTputData(st *Store, target string) (*tputData, error) {
	pool, err := st.Pool(target)
	if err != nil {
		return nil, err
	}
	cpu, err := st.CPU(target)
	if err != nil {
		return nil, err
	}
	if len(cpu) != len(pool) {
		return nil, fmt.Errorf("the store changed while it was read (%d samples, %d CPU readings); analyse again", len(pool), len(cpu))
	}
	layers, err := st.Layers(target)
	if err != nil {
		return nil, err
	}
	td := &tputData{pool: pool, taken: TakenTimes(pool), cpu: cpu, classify: make([]map[contract.Layer]uint64, len(pool))}
	index := make(map[int64]int, len(pool))
	for i, p := range pool {
		index[p.At.UnixNano()] = i
	}
	for _, l := range layers {
		i, ok := index[l.At.UnixNano()]
		if !ok {
			continue
		}
		if td.classify[i] == nil {
			td.classify[i] = map[contract.Layer]uint64{}
		}
		td.classify[i][contract.Layer(l.Layer)] = l.NBLs
	}
	return td, nil
}

func (td *tputData) figures(w TputWindow, tp scenarios.Throughput) TputWindow {
	nan := math.NaN()
	w.Samples, w.SentPPS, w.FwdPPS, w.CPUPct = 0, nan, nan, nan
	w.Classified = [3]float64{nan, nan, nan}
	if td == nil || w.End.IsZero() || w.End.Sub(w.Start) < tp.Window*9/10 {
		return w
	}
	secs := w.End.Sub(w.Start).Seconds()
	w.SentPPS = float64(w.Sent) / secs
	if w.FrameLinks {
		w.FwdPPS = float64(w.ForwardedFrames) / secs
	}
	from := w.Start.Add(tp.Settle)
	first, last := -1, -1
	for i, p := range td.pool {
		if p.Phase != w.Phase || td.taken[i].Before(from) || td.taken[i].After(w.End) || td.classify[i] == nil {
			continue
		}
		if first < 0 {
			first = i
		}
		last = i
	}
	if first < 0 || last-first+1 < minTputSamples {
		return w
	}
	a, b := td.pool[first], td.pool[last]
	if b.GuestUS <= a.GuestUS {
		return w // a reboot inside the window: no rate
	}
	w.Samples = last - first + 1
	guestSecs := float64(b.GuestUS-a.GuestUS) / 1e6
	for li, l := range contract.Layers {
		w.Classified[li] = float64(counterDelta(td.classify[first][l], td.classify[last][l])) / guestSecs
	}
	ca, cb := td.cpu[first], td.cpu[last]
	busy := float64(counterDelta(ca.KernelMS+ca.UserMS, cb.KernelMS+cb.UserMS))
	if total := busy + float64(counterDelta(ca.IdleMS, cb.IdleMS)); total > 0 {
		w.CPUPct = 100 * busy / total
	}
	return w
}

// minOffered is the share of the asked rate a window must have been offered: one the host
// could not drive measures the host, not the guest (issue 9's 90% rule).
const minOffered = 0.9

// UnderOffered says the generator sent less than minOffered of the asked rate over the
// window; false for a window that has not ended.
func (w TputWindow) UnderOffered() bool {
	secs := w.End.Sub(w.Start).Seconds()
	return w.AskedPPS > 0 && !w.End.IsZero() && secs > 0 && float64(w.Sent)/secs < minOffered*w.AskedPPS
}

// Throughput verdicts of a before/after comparison.
const (
	// TputRegressed: after the hotfix the median fell by more than max_loss, significantly.
	TputRegressed = "REGRESSED"
	// TputOK: no significant fall beyond max_loss.
	TputOK = "OK"
	// TputIncomplete: too few usable windows in a phase to compare.
	TputIncomplete = "INCOMPLETE"
)

// TputMetric is one figure compared before and after.
type TputMetric struct {
	Name string // as in bench.txt: a unit benchstat shows
	// Judged metrics decide REGRESSED; the others are reported only.
	Judged bool
	value  func(w TputWindow, layer int) float64
}

// TputMetrics are the compared figures: packets classified per second at the profile's own
// layer (judged), packets sent per second, guest CPU, and forwarded frames per second.
var TputMetrics = []TputMetric{
	{Name: "classified/s", Judged: true, value: func(w TputWindow, l int) float64 { return w.Classified[l] }},
	{Name: "sent/s", value: func(w TputWindow, _ int) float64 { return w.SentPPS }},
	{Name: "cpu-%", value: func(w TputWindow, _ int) float64 { return w.CPUPct }},
	{Name: "fwd/s", value: func(w TputWindow, _ int) float64 { return w.FwdPPS }},
}

// Value is the metric's figure for one window of a profile of kind.
func (m TputMetric) Value(w TputWindow, kind string) float64 {
	return m.value(w, layerIndex(ProfileLayer(kind)))
}

// TputSummary is a phase's windows of one metric: the median and its confidence
// interval (benchmath.AssumeNothing, as benchstat); Lo and Hi are NaN when too few windows
// give one.
type TputSummary struct {
	N              int
	Center, Lo, Hi float64
}

// TputComparison is one target × profile × metric before and after the hotfix.
type TputComparison struct {
	Target, Profile, Metric string
	Judged                  bool
	Before, After           TputSummary
	P                       float64 // Mann-Whitney U, two-sided; NaN when not compared
	Change                  float64 // (after − before) / before of the medians; NaN when not compared
	Verdict                 string  // TputOK, TputRegressed or TputIncomplete (judged metrics only)
	Note                    string
}

// CompareTput compares each target's throughput windows before and after the hotfix,
// metric by metric, as benchstat does: median and confidence interval per phase, and
// the Mann-Whitney U test's p-value. A judged metric is REGRESSED when its median fell by
// more than tp.MaxLoss with p < tp.Alpha; with fewer than scenarios.MinThroughputWindows
// usable windows in a phase it is INCOMPLETE. Metrics with no value in either phase (fwd/s
// without frame links) are left out. kinds maps profile names to their kinds.
func CompareTput(windows []TputWindow, tp scenarios.Throughput, kinds map[string]string) []TputComparison {
	type key struct{ target, profile string }
	var order []key
	byKey := map[key]map[string][]TputWindow{}
	for _, w := range windows {
		k := key{w.Target, w.Profile}
		if byKey[k] == nil {
			byKey[k] = map[string][]TputWindow{}
			order = append(order, k)
		}
		byKey[k][w.Phase] = append(byKey[k][w.Phase], w)
	}
	thresholds := benchmath.DefaultThresholds
	if tp.Alpha > 0 {
		thresholds.CompareAlpha = tp.Alpha
	}
	var out []TputComparison
	for _, k := range order {
		phases := byKey[k]
		for _, m := range TputMetrics {
			short := 0
			values := func(phase string) []float64 {
				var v []float64
				for _, w := range phases[phase] {
					if w.UnderOffered() {
						short++
						continue
					}
					if x := m.Value(w, kinds[k.profile]); !math.IsNaN(x) && !math.IsInf(x, 0) {
						v = append(v, x)
					}
				}
				return v
			}
			before, after := values(scenarios.PhaseBefore), values(scenarios.PhaseAfter)
			var notes []string
			if short > 0 {
				notes = append(notes, fmt.Sprintf("%d windows left out: the host sent under %.0f%% of the asked rate",
					short, 100*minOffered))
			}
			if len(before) == 0 && len(after) == 0 && !m.Judged {
				continue
			}
			c := TputComparison{Target: k.target, Profile: k.profile, Metric: m.Name, Judged: m.Judged,
				P: math.NaN(), Change: math.NaN()}
			sb, sa := benchmath.NewSample(before, &thresholds), benchmath.NewSample(after, &thresholds)
			c.Before, c.After = summarize(sb), summarize(sa)
			if len(before) < scenarios.MinThroughputWindows || len(after) < scenarios.MinThroughputWindows {
				notes = append(notes, fmt.Sprintf("%d usable windows before, %d after; a comparison needs %d in each",
					len(before), len(after), scenarios.MinThroughputWindows))
				c.Note = strings.Join(notes, "; ")
				if m.Judged {
					c.Verdict = TputIncomplete
				}
				out = append(out, c)
				continue
			}
			cmp := benchmath.AssumeNothing.Compare(sb, sa)
			c.P = cmp.P
			if c.Before.Center != 0 {
				c.Change = (c.After.Center - c.Before.Center) / c.Before.Center
			}
			if m.Judged {
				c.Verdict = TputOK
				if cmp.P < thresholds.CompareAlpha && c.After.Center < c.Before.Center*(1-tp.MaxLoss) {
					c.Verdict = TputRegressed
					notes = append([]string{fmt.Sprintf("median fell %.1f%% (more than max_loss %.1f%%), p=%.3f < alpha %.3g",
						-100*c.Change, 100*tp.MaxLoss, cmp.P, thresholds.CompareAlpha)}, notes...)
				}
			}
			c.Note = strings.Join(notes, "; ")
			out = append(out, c)
		}
	}
	return out
}

func summarize(s *benchmath.Sample) TputSummary {
	if len(s.Values) == 0 {
		return TputSummary{Center: math.NaN(), Lo: math.NaN(), Hi: math.NaN()}
	}
	sum := benchmath.AssumeNothing.Summary(s, 0.95)
	// Too few values for a 95% interval come back as ±Inf: say "unknown" rather than infinite.
	lo, hi := sum.Lo, sum.Hi
	if math.IsInf(lo, 0) || math.IsInf(hi, 0) {
		lo, hi = math.NaN(), math.NaN()
	}
	return TputSummary{N: len(s.Values), Center: sum.Center, Lo: lo, Hi: hi}
}

// Tput is the throughput analysis of a run: every window's figures and the comparisons.
type Tput struct {
	Windows     []TputWindow
	Comparisons []TputComparison
}

// AnalyzeTput computes the throughput figures and comparisons of a scenario's run from
// the store alone.
func AnalyzeTput(st *Store, sc *scenarios.Scenario) (Tput, error) {
	windows, err := TputFigures(st, sc.Throughput)
	return Tput{Windows: windows, Comparisons: CompareTputFor(windows, sc)}, err
}

// StoredTput compares the throughput figures the store holds (as ReanalyzeTput stored them).
func StoredTput(st *Store, sc *scenarios.Scenario) (Tput, error) {
	windows, err := st.TputWindows("")
	return Tput{Windows: windows, Comparisons: CompareTputFor(windows, sc)}, err
}

// CompareTputFor is CompareTput with a scenario's settings and profiles, in its order.
func CompareTputFor(windows []TputWindow, sc *scenarios.Scenario) []TputComparison {
	return inScenarioOrder(CompareTput(windows, sc.Throughput, profileKinds(sc)), sc)
}

// inScenarioOrder orders comparisons as the scenario lists targets and profiles (the store
// has them as the targets' goroutines happened to record them); sorting is stable.
func inScenarioOrder(cs []TputComparison, sc *scenarios.Scenario) []TputComparison {
	rank := func(c TputComparison) (int, int) {
		ti := slices.IndexFunc(sc.Targets, func(t scenarios.TargetSpec) bool { return t.Name == c.Target })
		pi := slices.IndexFunc(sc.Profiles, func(p scenarios.Profile) bool { return p.Name == c.Profile })
		return ti, pi
	}
	slices.SortStableFunc(cs, func(a, b TputComparison) int {
		at, ap := rank(a)
		bt, bp := rank(b)
		if at != bt {
			return at - bt
		}
		return ap - bp
	})
	return cs
}

func profileKinds(sc *scenarios.Scenario) map[string]string {
	kinds := map[string]string{}
	for _, p := range sc.Profiles {
		kinds[p.Name] = p.Kind
	}
	return kinds
}

// ReanalyzeTput runs AnalyzeTput and stores every window's figures.
func ReanalyzeTput(st *Store, sc *scenarios.Scenario) (Tput, error) {
	t, err := AnalyzeTput(st, sc)
	var errs *multierror.Error
	if err != nil {
		errs = multierror.Append(errs, err)
	}
	for _, w := range t.Windows {
		if err := st.RecordTputFigures(w); err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	if err := st.Flush(); err != nil {
		errs = multierror.Append(errs, err)
	}
	return t, errs.ErrorOrNil()
}
