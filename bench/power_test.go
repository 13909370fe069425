package bench

import (
	"flag"
	"fmt"
	"math"
	"sort"
	"testing"
	"time"

	"github.com/wfplab/wfplab/lab/sim/kernel"
)

// The power of the two verdict rules on the simulated guest's own pool model, in process:
// clean windows (a patched guest, no leak) sampled from kernel.Pool, with a leak of β bytes
// per chain added by the benchmark. Both estimates are linear in the leak (adding β·chains
// moves a window's estimate by exactly β and leaves its residuals alone: a test holds them
// to it), so one pass over clean windows gives every figure: false LEAK and INCONCLUSIVE at
// β = 0, coverage, and the smallest leak detected in 95% of windows: the threshold plus the
// 95th percentile of how far the interval's lower end falls below the truth.

var powerWindows = flag.Int("power.windows", 2000, "clean windows per BenchmarkPower row (fewer to explore)")

// powerWindow is one window's design.
type powerWindow struct {
	Window, Settle, Interval time.Duration
	Block                    time.Duration // traffic on, then off, in turn; 0: on throughout
	ChainsPerSec             float64       // multi-NBL chains blocked per second while traffic is on
}

// defaultPowerWindow is the built-in scenario's window at stream-burst's chain rate as the
// issue measured it (1,000 segments/s in bursts of 8).
var defaultPowerWindow = powerWindow{Window: 12 * time.Second, Settle: time.Second, Interval: 100 * time.Millisecond,
	Block: 5 * time.Second, ChainsPerSec: 125}

// cleanWindow samples one window of a patched guest: times from the window's start (s), the
// cumulative chain count and pool bytes. The window starts at a seed-drawn time after boot so
// the drift's state differs from window to window.
func cleanWindow(seed int64, p kernel.Params, w powerWindow) (t, chains, pool []float64) {
	k := kernel.New(kernel.Config{Arch: "x64", OSVersion: "6.1", Patched: true, Seed: seed, Noise: true, Params: p})
	defer k.Close()
	start := time.Minute + time.Duration(seed%97)*time.Second
	var c float64
	for at := time.Duration(0); at <= w.Window; at += w.Interval {
		if at > 0 && (w.Block <= 0 || (at-w.Interval)/w.Block%2 == 0) {
			c += w.ChainsPerSec * w.Interval.Seconds()
		}
		if at < w.Settle {
			continue
		}
		t = append(t, at.Seconds())
		chains = append(chains, math.Floor(c))
		pool = append(pool, float64(k.Pool(start+at).Bytes))
	}
	return t, chains, pool
}

// cleanStretch samples [from, to) relative to a window's start as cleanWindow draws it, with
// no traffic: the rest of the window's phase.
func cleanStretch(seed int64, p kernel.Params, w powerWindow, from, to time.Duration) (t, chains, pool []float64) {
	k := kernel.New(kernel.Config{Arch: "x64", OSVersion: "6.1", Patched: true, Seed: seed, Noise: true, Params: p})
	defer k.Close()
	start := time.Minute + time.Duration(seed%97)*time.Second
	for at := from; at < to; at += w.Interval {
		t = append(t, (at - from).Seconds())
		chains = append(chains, 0)
		pool = append(pool, float64(k.Pool(start+at).Bytes))
	}
	return t, chains, pool
}

// ruleFigures are one rule's figures over clean windows, in its own unit.
type ruleFigures struct {
	windows, failed    int
	falseLeak, inconcl int
	covered            int
	shortfall          []float64 // truth − lower end, per window
	halfWidth          []float64
}

func (f *ruleFigures) add(est, lo, hi, threshold float64) {
	f.windows++
	if math.IsNaN(lo) {
		f.failed++
		return
	}
	switch {
	case lo > threshold:
		f.falseLeak++
	case hi >= threshold:
		f.inconcl++
	}
	if lo <= 0 && 0 <= hi {
		f.covered++
	}
	f.shortfall = append(f.shortfall, -lo)
	f.halfWidth = append(f.halfWidth, (hi-lo)/2)
}

// detect95 is the smallest leak detected in 95% of windows at threshold: windows that gave
// no estimate count as missed.
func (f *ruleFigures) detect95(threshold float64) float64 {
	s := append([]float64(nil), f.shortfall...)
	sort.Float64s(s)
	need := int(math.Ceil(0.95*float64(f.windows))) - 1
	if need >= len(s) {
		return math.Inf(1)
	}
	return threshold + s[need]
}

func share(n, of int) float64 { return float64(n) / float64(max(of, 1)) }

// powerRun is the rules over clean windows of one noise model: today's (slope over time,
// continuous traffic, threshold in B/s) and the dose rule (bytes per chain, traffic in
// blocks, threshold in B/chain) as Analyze applies it, with its noise model fitted to the
// window and the phase's samples before it; the same fitted to the window alone; and an
// oracle told the true noise parameters.
type powerRun struct {
	today, dose, alone, oracle ruleFigures
	// bound is the Cramér–Rao bound on the bytes-per-chain standard error: the GLS one
	// with every noise parameter known and no jumps.
	bound float64
	// least is the same for traffic on throughout and no time term: what no design of the
	// window can beat, and only a pool with no steady drift of its own allows.
	least float64
}

// phaseBefore is how much else of its phase Analyze fits a window's noise model to in the
// built-in scenario: the warm-up's 3 s and two other windows' 11 s (settle left out). Here
// it is the stretch before the window, traffic off.
const phaseBefore = 25 * time.Second

// trueNoise is the dose fit's noise model as the simulated pool has it (drift on or off).
func trueNoise(p kernel.Params, w powerWindow) noiseModel {
	p = p.WithDefaults()
	m := noiseModel{phi: math.Pow(p.NoisePhi, w.Interval.Seconds()/p.NoiseStep.Seconds()), step: w.Interval.Seconds()}
	if p.DriftSigma > 0 {
		m.walk = p.DriftSigma * p.DriftSigma * w.Interval.Seconds() / (p.NoiseSigma * p.NoiseSigma)
	}
	return m
}

func runPower(seeds int, p kernel.Params, w powerWindow, todayBps, doseBpc float64) powerRun {
	var r powerRun
	known := trueNoise(p, w)
	cont := w
	cont.Block = 0
	add := func(f *ruleFigures, d Dose, err error) {
		if err != nil {
			d.PerChain, d.Lo, d.Hi = math.NaN(), math.NaN(), math.NaN()
		}
		f.add(d.PerChain, d.Lo, d.Hi, doseBpc)
	}
	for s := 1; s <= seeds; s++ {
		t, c, y := cleanWindow(int64(s), p, cont)
		if s == 1 {
			if f, err := gls(t, [][]float64{ones(len(t)), centred(c)}, y, known); err == nil {
				r.least = p.WithDefaults().NoiseSigma * math.Sqrt(f.cov.At(1, 1))
			}
		}
		if e, err := SlopeCI(t, y, DefaultConfidence); err == nil {
			r.today.add(e.Slope, e.Lo, e.Hi, todayBps)
		} else {
			r.today.add(math.NaN(), math.NaN(), math.NaN(), todayBps)
		}
		t, c, y = cleanWindow(int64(s), p, w)
		pt, pc, py := cleanStretch(int64(s), p, w, -phaseBefore, 0)
		ds, errs := DoseCIs([]DoseSeries{{t, c, y}, {pt, pc, py}}, DefaultConfidence)
		add(&r.dose, ds[0], errs[0])
		d, err := DoseCI(t, c, y, DefaultConfidence)
		add(&r.alone, d, err)
		ds, errs = doseCIs([]DoseSeries{{t, c, y}}, DefaultConfidence, &known)
		add(&r.oracle, ds[0], errs[0])
		if s == 1 {
			// The design alone: the chain count and times of any window.
			cols := [][]float64{ones(len(t)), centred(t), centred(c)}
			if f, err := gls(t, cols, make([]float64, len(t)), known); err == nil {
				r.bound = p.WithDefaults().NoiseSigma * math.Sqrt(f.cov.At(2, 2))
			}
		}
	}
	return r
}

// BenchmarkPower prints the rules' figures side by side, with the default noise and with
// drift and jumps on, for the built-in 12 s window with 5 s blocks, the earlier 3 s blocks,
// 6 s ones (the best design for the Gaussian part of the noise) and a longer window:
//
//	go test -run XXX -bench Power -benchtime 1x ./bench [-power.windows 2000]
//
// Rows: today (slope over time), dose (as Analyze judges: noise fitted to the window and
// the rest of its phase), alone (noise fitted to the window alone), oracle (told the true
// noise parameters), bound (Cramér–Rao: the standard error with the noise known, and the
// floor a normal estimate with that error has) and least (the bound with traffic on
// throughout and no time term: the least any design of the window allows). Detection is at
// the thresholds below; the floor (how far above its threshold a leak must be for 95%
// detection) does not depend on the threshold.
func BenchmarkPower(b *testing.B) {
	seeds := *powerWindows
	todayBps, doseBpc := 4096.0, 128.0
	quiet := kernel.DefaultParams()
	quiet.DriftSigma, quiet.JumpsPerMinute = -1, -1
	models := []struct {
		name string
		p    kernel.Params
	}{{"AR(1)", quiet}, {"+drift+jumps", kernel.DefaultParams()}}
	designs := []struct{ window, block time.Duration }{
		{12 * time.Second, 3 * time.Second}, {12 * time.Second, 5 * time.Second}, {12 * time.Second, 6 * time.Second},
		{30 * time.Second, 15 * time.Second},
	}
	for i := 0; i < b.N; i++ {
		fmt.Printf("%d clean windows per row, %.0f multi-NBL chains/s while traffic is on; today: slope over time, traffic on throughout, threshold %.0f B/s; dose: bytes per chain, traffic in blocks, threshold %.0f B/chain\n",
			seeds, defaultPowerWindow.ChainsPerSec, todayBps, doseBpc)
		fmt.Printf("%-6s %-6s %-13s %-6s %-10s %-13s %-9s %-11s %-22s %s\n", "window", "block", "pool", "rule",
			"false LEAK", "INCONCLUSIVE", "coverage", "median ±", "95% detected from", "floor above threshold")
		for _, d := range designs {
			w := defaultPowerWindow
			w.Window, w.Block = d.window, d.block
			for _, m := range models {
				r := runPower(seeds, m.p, w, todayBps, doseBpc)
				printPower(w, m.name, r, todayBps, doseBpc)
			}
		}
	}
}

func printPower(w powerWindow, model string, r powerRun, todayBps, doseBpc float64) {
	c := w.ChainsPerSec
	row := func(rule string, f *ruleFigures, threshold, perChain float64) {
		det := f.detect95(threshold)
		fmt.Printf("%-6s %-6s %-13s %-6s %-10.4f %-13.4f %-9.3f %-11s %-22s %s\n", w.Window, w.Block, model, rule,
			share(f.falseLeak, f.windows), share(f.inconcl, f.windows), share(f.covered, f.windows),
			fmt.Sprintf("%.1f B/chain", median(f.halfWidth)/perChain),
			fmt.Sprintf("%.1f B/chain %.0f B/s", det/perChain, det/perChain*c),
			fmt.Sprintf("%.1f B/chain %.0f B/s", (det-threshold)/perChain, (det-threshold)/perChain*c))
	}
	row("today", &r.today, todayBps, c)
	row("dose", &r.dose, doseBpc, 1)
	row("alone", &r.alone, doseBpc, 1)
	row("oracle", &r.oracle, doseBpc, 1)
	// With its standard error known, a normal estimate's 95% detection floor is
	// (z.975 + z.95) standard errors above the threshold.
	bound := func(name string, se float64) {
		floor := (1.959964 + 1.644854) * se
		fmt.Printf("%-6s %-6s %-13s %-6s %-10s %-13s %-9s %-11s %-22s %s\n", w.Window, w.Block, model, name, "", "", "",
			fmt.Sprintf("%.1f B/chain", 1.959964*se), "", fmt.Sprintf("%.1f B/chain %.0f B/s", floor, floor*c))
	}
	bound("bound", r.bound)
	bound("least", r.least)
}
