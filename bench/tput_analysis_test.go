package bench

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/wfplab/wfplab/lab/contract"
	"github.com/wfplab/wfplab/scenarios"
)

var testTput = scenarios.Throughput{Windows: 6, Window: time.Second, Settle: 100 * time.Millisecond, MaxLoss: 0.05, Alpha: 0.05}

// tputWindows makes n windows per phase whose classified/s at the transport layer scatter
// by 1% around before and after.
func tputWindows(rng *rand.Rand, n int, before, after float64) []TputWindow {
	var out []TputWindow
	for _, ph := range []struct {
		name string
		rate float64
	}{{scenarios.PhaseBefore, before}, {scenarios.PhaseAfter, after}} {
		for i := range n {
			start := time.Unix(int64(100*i), 0)
			w := TputWindow{Target: "g", Phase: ph.name, Profile: "single-nbl", Index: i, SentPPS: 2000, FwdPPS: math.NaN(),
				Start: start, End: start.Add(time.Second), Sent: 2000,
				CPUPct: 5 + rng.Float64(), Classified: [3]float64{0, 0, ph.rate * (1 + 0.01*rng.NormFloat64())}}
			out = append(out, w)
		}
	}
	return out
}

func judged(t *testing.T, cs []TputComparison) TputComparison {
	t.Helper()
	var found []TputComparison
	for _, c := range cs {
		if c.Judged {
			found = append(found, c)
		}
		if c.Metric == "fwd/s" {
			t.Errorf("fwd/s compared without frame links: %+v", c)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d judged comparisons, want 1: %+v", len(found), cs)
	}
	return found[0]
}

// A hotfix that costs throughput beyond max_loss is REGRESSED; one that costs nothing, or
// less than max_loss, is not: over many seeds, so a rule that flags noise would fail.
func TestCompareTputFlagsOnlyARealLoss(t *testing.T) {
	kinds := map[string]string{"single-nbl": scenarios.KindSingleNBL}
	counts := map[string]map[string]int{}
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 9))
		for _, c := range []struct {
			name  string
			after float64
		}{{"same", 2000}, {"2% loss", 1960}, {"20% loss", 1600}, {"faster", 2200}} {
			got := judged(t, CompareTput(tputWindows(rng, 6, 2000, c.after), testTput, kinds))
			if counts[c.name] == nil {
				counts[c.name] = map[string]int{}
			}
			counts[c.name][got.Verdict]++
			if c.name == "20% loss" && got.Verdict == TputRegressed && !strings.Contains(got.Note, "fell") {
				t.Errorf("a regression's note does not say what fell: %q", got.Note)
			}
		}
	}
	if counts["20% loss"][TputRegressed] != 200 {
		t.Errorf("a 20%% loss was flagged in %d of 200 runs, want all: %v", counts["20% loss"][TputRegressed], counts)
	}
	for _, name := range []string{"same", "2% loss", "faster"} {
		if n := counts[name][TputRegressed]; n != 0 {
			t.Errorf("%s was flagged REGRESSED in %d of 200 runs: %v", name, n, counts)
		}
	}
}

// The summaries are benchstat's: median and its interval; p from the U test; with fewer
// windows than the minimum a phase is INCOMPLETE, not OK.
// A window the host could not offer at 90% of the asked rate measures the host: it is left
// out, and the note says so.
func TestCompareTputLeavesOutUnderOfferedWindows(t *testing.T) {
	kinds := map[string]string{"single-nbl": scenarios.KindSingleNBL}
	ws := tputWindows(rand.New(rand.NewPCG(3, 4)), 7, 2000, 2000)
	for i := range ws {
		ws[i].AskedPPS = 2000
		if ws[i].Phase == scenarios.PhaseAfter && ws[i].Index < 3 {
			ws[i].Sent, ws[i].Classified[2] = 1000, 1000 // a starved generator, not a slower guest
		}
	}
	c := judged(t, CompareTput(ws, testTput, kinds))
	if c.Verdict != TputIncomplete || c.After.N != 4 || !strings.Contains(c.Note, "3 windows left out") {
		t.Fatalf("%+v: want the 3 starved windows left out (INCOMPLETE with 4 left), said in the note", c)
	}
	ws[7].Sent, ws[7].Classified[2] = 1900, 2000 // 95%: kept
	ws[8].Sent, ws[8].Classified[2] = 2000, 2000
	if c := judged(t, CompareTput(ws, testTput, kinds)); c.Verdict != TputOK || c.After.N != 6 {
		t.Fatalf("%+v: want OK over 6 windows after", c)
	}
}

func TestCompareTputSummariesAndIncomplete(t *testing.T) {
	kinds := map[string]string{"single-nbl": scenarios.KindSingleNBL}
	ws := tputWindows(rand.New(rand.NewPCG(1, 2)), 6, 2000, 1000)
	for i := range ws {
		ws[i].Classified[2] = float64(1000 * (i%6 + 1)) // 1000..6000 before, the same after
		if ws[i].Phase == scenarios.PhaseAfter {
			ws[i].Classified[2] /= 2
		}
	}
	c := judged(t, CompareTput(ws, testTput, kinds))
	if c.Before.N != 6 || c.Before.Center != 3500 || c.After.Center != 1750 || !(c.Before.Lo <= 1000 && c.Before.Hi >= 6000) {
		t.Errorf("summaries %+v / %+v: want medians 3500 and 1750 and the before interval over the whole sample", c.Before, c.After)
	}
	if !(c.P > 0 && c.P < 1) || math.Abs(c.Change+0.5) > 1e-9 {
		t.Errorf("p %v, change %v; want 0 < p < 1 and -50%%", c.P, c.Change)
	}
	short := tputWindows(rand.New(rand.NewPCG(1, 2)), 5, 2000, 1000)
	if c := judged(t, CompareTput(short, testTput, kinds)); c.Verdict != TputIncomplete || !strings.Contains(c.Note, "needs 6") {
		t.Errorf("5 windows a phase: %+v, want INCOMPLETE saying 6 are needed", c)
	}
}

// Figures come from the samples taken inside a window after its settle: classify calls
// and CPU per second of guest time; a window cut short has none.
func TestTputFiguresFromStoredSamples(t *testing.T) {
	st, err := Create(t.TempDir(), RunInfo{ID: "tput", Started: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	t0 := time.Unix(1_800_000_000, 0)
	// 20 samples 100 ms apart: the transport layer classifies 1500 packets/s, CPU is 25% busy.
	for i := range 20 {
		at := t0.Add(time.Duration(i) * 100 * time.Millisecond)
		ms := uint64(i * 100 * 2) // two processors
		smp := contract.Sample{Seq: uint64(i), TimeUS: uint64(i) * 100_000, CPUKernelMS: ms / 5, CPUUserMS: ms / 20,
			CPUIdleMS: ms - ms/5 - ms/20, Driver: contract.Driver{State: "running", Layers: map[contract.Layer]contract.LayerCounters{
				contract.LayerTransport: {Classify: uint64(i) * 150, NBLs: uint64(i) * 150}, contract.LayerStream: {}, contract.LayerForward: {}}}}
		if err := st.RecordSample("g", "before", at, smp); err != nil {
			t.Fatal(err)
		}
	}
	full := TputWindow{Target: "g", Phase: "before", Profile: "single-nbl", Index: 0, Start: t0, End: t0.Add(time.Second),
		AskedPPS: 1500, Sent: 1500}
	cut := full
	cut.Index, cut.End = 1, t0.Add(500*time.Millisecond)
	for _, w := range []TputWindow{full, cut} {
		if err := st.RecordTputWindow(w); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Flush(); err != nil {
		t.Fatal(err)
	}
	ws, err := TputFigures(st, testTput)
	if err != nil || len(ws) != 2 {
		t.Fatalf("%d windows, %v", len(ws), err)
	}
	w := ws[0]
	if w.Samples != 10 || math.Abs(w.Classified[2]-1500) > 1e-6 || w.Classified[0] != 0 || math.Abs(w.CPUPct-25) > 1 ||
		math.Abs(w.SentPPS-1500) > 1e-6 || !math.IsNaN(w.FwdPPS) {
		t.Errorf("figures %+v: want 10 samples, 1500 classified/s at transport, 25%% CPU, 1500 sent/s, no fwd/s", w)
	}
	if ws[1].Samples != 0 || !math.IsNaN(ws[1].Classified[2]) {
		t.Errorf("a window cut to half its length got figures: %+v", ws[1])
	}
	// The figures survive the store.
	for _, w := range ws {
		st.RecordTputFigures(w)
	}
	st.Flush()
	back, err := st.TputWindows("g")
	if err != nil || len(back) != 2 || back[0].Classified[2] != ws[0].Classified[2] || back[0].Samples != 10 || !math.IsNaN(back[1].CPUPct) {
		t.Fatalf("read back %+v, %v", back, err)
	}
}
