package bench

import (
	"fmt"
	"math"

	"github.com/wfplab/wfplab/scenarios"
)

// MinSamples is the fewest samples a window needs for a LEAK or CLEAN verdict.
const MinSamples = 10

// DefaultConfidence is used when a VerdictRule leaves Confidence at zero.
const DefaultConfidence = 0.95

// SlopeCI fits y = a + b·x by ordinary least squares and returns b with a two-sided
// confidence interval at the given confidence (e.g. 0.95).
//
// Pool samples taken every 100 ms are not independent: background noise wanders, so
// neighbouring residuals are alike and the plain OLS interval is too narrow. The interval
// is widened by the lag-1 autocorrelation r of the residuals: n_eff = n(1−r)/(1+r),
// clamped to [3, n], the standard error scaled by sqrt(n/n_eff), and Student's t taken
// with n_eff − 2 degrees of freedom.
func SlopeCI(x, y []float64, confidence float64) (Estimate, error) {
	return slopeCI(x, y, confidence, true)
}

func slopeCI(x, y []float64, confidence float64, correct bool) (Estimate, error) {
	n := len(x)
	est := Estimate{Slope: math.NaN(), Lo: math.NaN(), Hi: math.NaN(), N: n, NEff: math.NaN()}
	if len(y) != n {
		return est, fmt.Errorf("bench: slope: %d x values but %d y values", n, len(y))
	}
	if !(confidence > 0 && confidence < 1) {
		return est, fmt.Errorf("bench: slope: confidence %v is not in (0, 1)", confidence)
	}
	if n < 3 {
		return est, fmt.Errorf("bench: slope: %d points; a slope with an interval needs at least 3", n)
	}
	var mx, my float64
	for i := range x {
		if math.IsNaN(x[i]) || math.IsInf(x[i], 0) || math.IsNaN(y[i]) || math.IsInf(y[i], 0) {
			return est, fmt.Errorf("bench: slope: point %d (%v, %v) is not finite", i, x[i], y[i])
		}
		mx += x[i]
		my += y[i]
	}
	mx /= float64(n)
	my /= float64(n)
	var sxx, sxy float64
	for i := range x {
		dx := x[i] - mx
		sxx += dx * dx
		sxy += dx * (y[i] - my)
	}
	if sxx == 0 {
		return est, fmt.Errorf("bench: slope: all %d points have the same x (%v); the time axis does not move", n, mx)
	}
	b := sxy / sxx
	var sse, lag float64
	prev := 0.0
	for i := range x {
		e := y[i] - my - b*(x[i]-mx)
		sse += e * e
		if i > 0 {
			lag += e * prev
		}
		prev = e
	}
	nEff := float64(n)
	if correct && sse > 0 {
		r := lag / sse
		if r > -1 {
			nEff = float64(n) * (1 - r) / (1 + r)
		}
		nEff = math.Min(math.Max(nEff, 3), float64(n))
	}
	se := math.Sqrt(sse/float64(n-2)/sxx) * math.Sqrt(float64(n)/nEff)
	t, err := StudentTQuantile(1-(1-confidence)/2, nEff-2)
	if err != nil {
		return est, err
	}
	est.Slope, est.Lo, est.Hi, est.NEff = b, b-t*se, b+t*se, nEff
	return est, nil
}

// Decide turns an estimate into a verdict under rule: LEAK when the whole interval lies
// above the threshold, CLEAN when it lies below, INCONCLUSIVE otherwise or with fewer
// than MinSamples samples. The note says why when the verdict is INCONCLUSIVE.
func Decide(e Estimate, rule scenarios.VerdictRule) (Verdict, string) {
	return judge(e.N, e.Lo, e.Hi, rule.ThresholdBps, confidenceOf(rule), "%.0f B/s")
}

// judge places an interval against a threshold; unit formats a value for the note.
func judge(n int, lo, hi, threshold, confidence float64, unit string) (Verdict, string) {
	if n < MinSamples {
		return Inconclusive, fmt.Sprintf("only %d samples in the window; a verdict needs at least %d (lengthen the window or sample faster)",
			n, MinSamples)
	}
	if math.IsNaN(lo) || math.IsNaN(hi) {
		return Inconclusive, "no interval could be computed"
	}
	switch {
	case lo > threshold:
		return Leak, ""
	case hi < threshold:
		return Clean, ""
	}
	v := func(x float64) string { return fmt.Sprintf(unit, x) }
	return Inconclusive, fmt.Sprintf("the %g%% interval [%s, %s] contains the threshold %s",
		100*confidence, v(lo), v(hi), v(threshold))
}

func confidenceOf(rule scenarios.VerdictRule) float64 {
	if rule.Confidence > 0 && rule.Confidence < 1 {
		return rule.Confidence
	}
	return DefaultConfidence
}
