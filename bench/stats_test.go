package bench

import (
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/wfplab/wfplab/scenarios"
)

// ar1Series is y = slope·x + AR(1) noise (coefficient phi, innovation sd sigma), x = i·dt.
func ar1Series(rng *rand.Rand, n int, dt, slope, phi, sigma float64) (x, y []float64) {
	x, y = make([]float64, n), make([]float64, n)
	// Start the noise in its stationary distribution.
	noise := rng.NormFloat64() * sigma / math.Sqrt(1-phi*phi)
	for i := range x {
		x[i] = float64(i) * dt
		y[i] = 50e6 + slope*x[i] + noise
		noise = phi*noise + rng.NormFloat64()*sigma
	}
	return x, y
}

func TestSlopeCIExactLine(t *testing.T) {
	x := []float64{0, 1, 2, 3, 4, 5}
	y := []float64{10, 13, 16, 19, 22, 25}
	e, err := SlopeCI(x, y, 0.95)
	if err != nil {
		t.Fatal(err)
	}
	if e.Slope != 3 || e.Lo != 3 || e.Hi != 3 || e.N != 6 {
		t.Fatalf("exact line: %+v, want slope 3 with a zero-width interval", e)
	}
}

// A small data set checked by hand: x = 1..5, y = 2, 4, 5, 4, 5.
// b = 0.6, SSE = 2.4, s² = 0.8, se = sqrt(0.8/10) = 0.28284.
func TestSlopeCIKnownValues(t *testing.T) {
	x := []float64{1, 2, 3, 4, 5}
	y := []float64{2, 4, 5, 4, 5}
	// Without the autocorrelation correction: 0.6 ± t(0.975, 3)·0.28284 = 0.6 ± 0.90013.
	e, err := slopeCI(x, y, 0.95, false)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(e.Slope-0.6) > 1e-12 || math.Abs(e.Hi-e.Slope-3.182446*0.282843) > 1e-4 {
		t.Fatalf("plain OLS: %+v, want 0.6 ± 0.9001", e)
	}
	// Residuals are −0.8, 0.6, 1.0, −0.6, −0.2: lag-1 sum = −0.48+0.6−0.6+0.12 = −0.36,
	// r = −0.15, n_eff = 5·1.15/0.85 > n, clamped to 5: the same interval.
	c, _ := SlopeCI(x, y, 0.95)
	if c.NEff != 5 || math.Abs(c.Hi-e.Hi) > 1e-12 {
		t.Fatalf("negative autocorrelation must not narrow the interval: %+v vs %+v", c, e)
	}
}

func TestSlopeCIWidensForAutocorrelation(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	x, y := ar1Series(rng, 300, 0.1, 0, 0.9, 1000)
	plain, _ := slopeCI(x, y, 0.95, false)
	corrected, _ := SlopeCI(x, y, 0.95)
	if !(corrected.NEff < 0.3*float64(corrected.N)) {
		t.Fatalf("phi = 0.9 noise: n_eff = %v of %d, want far fewer", corrected.NEff, corrected.N)
	}
	if !(corrected.Hi-corrected.Lo > 2*(plain.Hi-plain.Lo)) {
		t.Fatalf("corrected interval %v not much wider than plain %v", corrected.Hi-corrected.Lo, plain.Hi-plain.Lo)
	}
}

// Over many seeds, a 95% interval must cover the true slope about 95% of the time, even
// with autocorrelated noise; the uncorrected interval would not.
func TestSlopeCICoverageWithAR1Noise(t *testing.T) {
	const seeds = 1000
	const trueSlope = 4000.0 // bytes/s
	covered, coveredPlain := 0, 0
	for seed := int64(1); seed <= seeds; seed++ {
		rng := rand.New(rand.NewSource(seed))
		x, y := ar1Series(rng, 200, 0.1, trueSlope, 0.5, 3000)
		e, err := SlopeCI(x, y, 0.95)
		if err != nil {
			t.Fatal(err)
		}
		if e.Lo <= trueSlope && trueSlope <= e.Hi {
			covered++
		}
		p, _ := slopeCI(x, y, 0.95, false)
		if p.Lo <= trueSlope && trueSlope <= p.Hi {
			coveredPlain++
		}
	}
	rate := float64(covered) / seeds
	if rate < 0.92 || rate > 0.985 {
		t.Errorf("corrected 95%% interval covered the true slope in %.1f%% of %d seeds", 100*rate, seeds)
	}
	if plain := float64(coveredPlain) / seeds; plain > 0.88 {
		t.Errorf("plain OLS covered %.1f%%; the AR(1) test noise is too weak to show the correction", 100*plain)
	}
}

func TestSlopeCIWhiteNoiseCoverage(t *testing.T) {
	covered := 0
	for seed := int64(1); seed <= 500; seed++ {
		rng := rand.New(rand.NewSource(seed))
		x, y := ar1Series(rng, 30, 0.5, -250, 0, 800)
		e, _ := SlopeCI(x, y, 0.90)
		if e.Lo <= -250 && -250 <= e.Hi {
			covered++
		}
	}
	if rate := float64(covered) / 500; rate < 0.86 || rate > 0.94 {
		t.Errorf("90%% interval covered %.1f%% with white noise", 100*rate)
	}
}

func TestSlopeCIRejectsBadInput(t *testing.T) {
	cases := map[string]struct {
		x, y []float64
		conf float64
	}{
		"mismatched":   {[]float64{1, 2, 3}, []float64{1, 2}, 0.95},
		"too few":      {[]float64{1, 2}, []float64{1, 2}, 0.95},
		"constant x":   {[]float64{4, 4, 4, 4}, []float64{1, 2, 3, 4}, 0.95},
		"NaN":          {[]float64{1, 2, 3}, []float64{1, math.NaN(), 3}, 0.95},
		"confidence 1": {[]float64{1, 2, 3}, []float64{1, 2, 3}, 1},
	}
	for name, c := range cases {
		if _, err := SlopeCI(c.x, c.y, c.conf); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}

func TestDecide(t *testing.T) {
	rule := scenarios.VerdictRule{ThresholdBps: 1000, Confidence: 0.95}
	cases := []struct {
		e    Estimate
		want Verdict
	}{
		{Estimate{Slope: 5000, Lo: 4000, Hi: 6000, N: 100}, Leak},
		{Estimate{Slope: 10, Lo: -200, Hi: 300, N: 100}, Clean},
		{Estimate{Slope: 900, Lo: 500, Hi: 1300, N: 100}, Inconclusive},
		{Estimate{Slope: 5000, Lo: 4000, Hi: 6000, N: 9}, Inconclusive},
		{Estimate{Slope: math.NaN(), Lo: math.NaN(), Hi: math.NaN(), N: 50}, Inconclusive},
	}
	for _, c := range cases {
		got, note := Decide(c.e, rule)
		if got != c.want {
			t.Errorf("Decide(%+v) = %s, want %s", c.e, got, c.want)
		}
		if (got == Inconclusive) != (note != "") {
			t.Errorf("Decide(%+v): note %q; want a note exactly when inconclusive", c.e, note)
		}
	}
	if _, note := Decide(Estimate{N: 4}, rule); !strings.Contains(note, "4 samples") {
		t.Errorf("too-few note %q does not say how many samples", note)
	}
}

func TestVerdictsOnSyntheticWindows(t *testing.T) {
	rule := scenarios.VerdictRule{ThresholdBps: 2000, Confidence: 0.95}
	// 30 s at 10 Hz of pool noise (sd about 4 KB, wandering): no leak must read CLEAN.
	for seed := int64(1); seed <= 50; seed++ {
		rng := rand.New(rand.NewSource(seed))
		x, y := ar1Series(rng, 300, 0.1, 0, 0.6, 3000)
		e, err := SlopeCI(x, y, 0.95)
		if err != nil {
			t.Fatal(err)
		}
		if v, note := Decide(e, rule); v != Clean {
			t.Fatalf("seed %d: noise only gave %s (%s), estimate %+v", seed, v, note, e)
		}
		// The same noise with a 50 KB/s leak must read LEAK.
		rng = rand.New(rand.NewSource(seed))
		x, y = ar1Series(rng, 300, 0.1, 50000, 0.6, 3000)
		e, _ = SlopeCI(x, y, 0.95)
		if v, note := Decide(e, rule); v != Leak {
			t.Fatalf("seed %d: 50 KB/s leak gave %s (%s), estimate %+v", seed, v, note, e)
		}
	}
	// A leak right at the threshold cannot be told apart from it, nearly always.
	undecided := 0
	for seed := int64(1); seed <= 100; seed++ {
		rng := rand.New(rand.NewSource(seed))
		x, y := ar1Series(rng, 300, 0.1, 2000, 0.6, 3000)
		e, _ := SlopeCI(x, y, 0.95)
		if v, _ := Decide(e, rule); v == Inconclusive {
			undecided++
		}
	}
	if undecided < 85 {
		t.Fatalf("a leak at the threshold was INCONCLUSIVE for only %d of 100 seeds", undecided)
	}
}
