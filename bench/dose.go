package bench

import (
	"fmt"
	"math"
	"sort"
)

// Dose is a window's leak as bytes per blocked multi-NBL chain: nonpaged pool regressed on
// the driver's cumulative count of blocked multi-NBL chains and on time. Traffic switched on
// and off in blocks makes the two regressors differ, so a pool that drifts by itself lands
// in the time term and not in the chains' coefficient.
type Dose struct {
	PerChain float64 // bytes per chain
	Lo, Hi   float64 // its confidence interval
	Drift    float64 // bytes per second the pool moved by itself
	N        int     // samples used
	DF       float64 // Student's t degrees of freedom of the interval
	Rho      float64 // the residuals' lag-1 autocorrelation, bias-corrected: the GLS transform's
	Jumps    int     // steps found in the pool and given a term of their own
	// ACF is the final residuals' autocorrelation at DoseLags: what is left after the
	// transform, for the store (near 0 when the model fits the noise).
	ACF [len(DoseLags)]float64
}

// DoseLags are the lags whose residual autocorrelation a Dose keeps.
var DoseLags = [...]int{1, 2, 5, 10}

// Dose estimation constants.
const (
	// jumpZ is how far (in robust standard deviations of the differenced residuals) a
	// one-sample step must stand out to get a term of its own. At 3.5, about one window in
	// twenty flags a step where none was (an extra term costs little); a real 32 KiB jump
	// over 8 KiB of noise stands out at about 4.
	jumpZ = 3.5
	// maxJumps bounds the step terms: a window with more steps than this is too disturbed
	// to say anything, and its interval shows it.
	maxJumps = 4
	// maxRho keeps the transform from differencing away all of the signal.
	maxRho = 0.98
)

// DoseCI estimates bytes per chain from samples at times t (seconds), with chains the
// cumulative count of blocked multi-NBL chains and pool the nonpaged bytes.
//
// The noise of real pool is autocorrelated (it wanders) and jumps (a large allocation or
// free). The fit is feasible GLS: steps that stand out in the differenced series get a
// term each; the residuals' lag-1 autocorrelation ρ, bias-corrected, sets a Prais-Winsten
// transform (ρ = 0 is plain least squares, ρ near 1 differences the series, which suits a
// random walk); the interval's standard error is the larger of the classical one and
// Newey-West's on the transformed residuals, so what autocorrelation the transform leaves
// widens it; t has n − k degrees of freedom (k terms).
func DoseCI(t, chains, pool []float64, confidence float64) (Dose, error) {
	n := len(t)
	d := Dose{PerChain: math.NaN(), Lo: math.NaN(), Hi: math.NaN(), Drift: math.NaN(), N: n, DF: math.NaN(), Rho: math.NaN()}
	if len(chains) != n || len(pool) != n {
		return d, fmt.Errorf("bench: dose: %d times, %d chain counts and %d pool values; they must match", n, len(chains), len(pool))
	}
	if !(confidence > 0 && confidence < 1) {
		return d, fmt.Errorf("bench: dose: confidence %v is not in (0, 1)", confidence)
	}
	for i := range t {
		if !finite(t[i]) || !finite(chains[i]) || !finite(pool[i]) {
			return d, fmt.Errorf("bench: dose: sample %d (%v s, %v chains, %v B) is not finite", i, t[i], chains[i], pool[i])
		}
		if i > 0 && t[i] <= t[i-1] {
			return d, fmt.Errorf("bench: dose: sample %d's time %v s does not follow %v s", i, t[i], t[i-1])
		}
	}
	if n < MinSamples {
		return d, fmt.Errorf("bench: dose: %d samples; an estimate needs at least %d", n, MinSamples)
	}
	// Centred and scaled columns keep the normal equations well conditioned.
	cols := [][]float64{ones(n), centred(t), centred(chains)}
	if !varies(cols[2]) {
		return d, fmt.Errorf("bench: dose: the driver blocked no multi-NBL chains in the window (or the same number in every sample); bytes per chain needs chains")
	}
	jumps := findJumps(t, chains, pool)
	for _, j := range jumps {
		step := make([]float64, n)
		for i := j; i < n; i++ {
			step[i] = 1
		}
		cols = append(cols, step)
	}
	k := len(cols)
	if n-k < 3 {
		return d, fmt.Errorf("bench: dose: %d samples for %d terms; too few", n, k)
	}
	_, res, err := leastSquares(cols, pool)
	if err != nil {
		// The time and chain columns move together: traffic never paused in the window.
		return d, fmt.Errorf("bench: dose: %v (time and chains move together: did the traffic pause in blocks?)", err)
	}
	rho := lagCorr(res, 1)
	// Lag-1 autocorrelation of residuals is biased low by about (1 + 3ρ)/n, and by the k
	// fitted terms (k/n); add it back.
	rho = math.Min(math.Max(rho+(1+3*rho)/float64(n)+float64(k)/float64(n), 0), maxRho)

	tc := pw(cols, rho)
	ty := pw([][]float64{pool}, rho)[0]
	b, res, err := leastSquares(tc, ty)
	if err != nil {
		return d, fmt.Errorf("bench: dose: %v after the autocorrelation transform", err)
	}
	// The chains' coefficient and its standard error by Frisch-Waugh: the chain column with
	// the other terms regressed out.
	others := append(append([][]float64{}, tc[:2]...), tc[3:]...)
	_, xr, err := leastSquares(others, tc[2])
	if err != nil {
		return d, fmt.Errorf("bench: dose: %v", err)
	}
	var sxx, sse float64
	for i := range xr {
		sxx += xr[i] * xr[i]
		sse += res[i] * res[i]
	}
	if sxx == 0 {
		return d, fmt.Errorf("bench: dose: the chain count is a combination of time and the steps; traffic must pause in blocks")
	}
	df := float64(n - k)
	classical := sse / df / sxx
	nw := neweyWest(xr, res) / (sxx * sxx) * float64(n) / df
	se := math.Sqrt(math.Max(classical, nw))
	q, err := StudentTQuantile(1-(1-confidence)/2, df)
	if err != nil {
		return d, err
	}
	d.PerChain, d.Drift = b[2], b[1]
	d.Lo, d.Hi = d.PerChain-q*se, d.PerChain+q*se
	d.DF, d.Rho, d.Jumps = df, rho, len(jumps)
	for i, l := range DoseLags {
		d.ACF[i] = lagCorr(res, l)
	}
	return d, nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func ones(n int) []float64 {
	o := make([]float64, n)
	for i := range o {
		o[i] = 1
	}
	return o
}

// centred is v less its first value: the intercept takes the level, the coefficient stays
// in v's units.
func centred(v []float64) []float64 {
	out := make([]float64, len(v))
	for i := range v {
		out[i] = v[i] - v[0]
	}
	return out
}

func varies(v []float64) bool {
	for _, x := range v {
		if x != v[0] {
			return true
		}
	}
	return false
}

// pw is the Prais-Winsten transform of each column: the first row scaled by √(1−ρ²), every
// other row less ρ times the row before.
func pw(cols [][]float64, rho float64) [][]float64 {
	out := make([][]float64, len(cols))
	s := math.Sqrt(1 - rho*rho)
	for j, c := range cols {
		o := make([]float64, len(c))
		o[0] = s * c[0]
		for i := 1; i < len(c); i++ {
			o[i] = c[i] - rho*c[i-1]
		}
		out[j] = o
	}
	return out
}

// lagCorr is the autocorrelation of v at lag l (v's mean taken as 0: residuals).
func lagCorr(v []float64, l int) float64 {
	var num, den float64
	for i := range v {
		den += v[i] * v[i]
		if i >= l {
			num += v[i] * v[i-l]
		}
	}
	if den == 0 || l >= len(v) {
		return 0
	}
	return num / den
}

// neweyWest is the long-run variance of x·e summed over the samples, with Bartlett weights
// up to the usual bandwidth ⌊4(n/100)^(2/9)⌋.
func neweyWest(x, e []float64) float64 {
	n := len(x)
	lags := int(math.Floor(4 * math.Pow(float64(n)/100, 2.0/9)))

	var s float64
	for i := 0; i < n; i++ {
		s += x[i] * e[i] * x[i] * e[i]
	}
	for l := 1; l <= lags && l < n; l++ {
		w := 1 - float64(l)/float64(lags+1)
		var c float64
		for i := l; i < n; i++ {
			c += x[i] * e[i] * x[i-l] * e[i-l]
		}
		s += 2 * w * c
	}
	return s
}

// findJumps returns the sample indices where the pool stepped: in the first differences,
// with traffic's and time's share taken out by a fit, residuals beyond jumpZ robust
// standard deviations (median absolute deviation), largest first, refitted after each.
func findJumps(t, chains, pool []float64) []int {
	n := len(t)
	dt, dc, dy := make([]float64, n-1), make([]float64, n-1), make([]float64, n-1)
	for i := 1; i < n; i++ {
		dt[i-1], dc[i-1], dy[i-1] = t[i]-t[i-1], chains[i]-chains[i-1], pool[i]-pool[i-1]
	}
	var jumps []int
	dropped := map[int]bool{}
	for len(jumps) < maxJumps {
		// Fit dy = γ·dt + β·dc over the differences not yet taken as steps.
		keep := make([]int, 0, len(dy))
		for i := range dy {
			if !dropped[i] {
				keep = append(keep, i)
			}
		}
		xt, xc, y := make([]float64, len(keep)), make([]float64, len(keep)), make([]float64, len(keep))
		for j, i := range keep {
			xt[j], xc[j], y[j] = dt[i], dc[i], dy[i]
		}
		cols := [][]float64{xt}
		if varies(xc) {
			cols = append(cols, xc)
		}
		_, res, err := leastSquares(cols, y)
		if err != nil {
			return jumps
		}
		med := median(res)
		dev := make([]float64, len(res))
		for i, r := range res {
			dev[i] = math.Abs(r - med)
		}
		scale := 1.4826 * median(dev)
		worst, at := 0.0, -1
		for j, r := range dev {
			if r > worst {
				worst, at = r, keep[j]
			}
		}
		if at < 0 || scale == 0 || worst < jumpZ*scale {
			break
		}
		dropped[at] = true
		jumps = append(jumps, at+1) // the step is between samples at and at+1
	}
	sort.Ints(jumps)
	return jumps
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// leastSquares fits y on the columns and returns the coefficients and residuals. The
// normal equations are solved by Cholesky; a column that is (nearly) a combination of the
// others is an error.
func leastSquares(cols [][]float64, y []float64) (coef, res []float64, err error) {
	k, n := len(cols), len(y)
	a := make([][]float64, k)
	rhs := make([]float64, k)
	for i := range cols {
		a[i] = make([]float64, k)
		for j := 0; j <= i; j++ {
			var s float64
			for r := 0; r < n; r++ {
				s += cols[i][r] * cols[j][r]
			}
			a[i][j], a[j][i] = s, s
		}
		for r := 0; r < n; r++ {
			rhs[i] += cols[i][r] * y[r]
		}
	}
	// Cholesky: a = L·Lᵀ, in place in the lower triangle.
	for j := 0; j < k; j++ {
		s := a[j][j]
		for m := 0; m < j; m++ {
			s -= a[j][m] * a[j][m]
		}
		if s <= 1e-10*a[j][j] || s <= 0 {
			return nil, nil, fmt.Errorf("regressor %d is (nearly) a combination of the others", j)
		}
		a[j][j] = math.Sqrt(s)
		for i := j + 1; i < k; i++ {
			s := a[i][j]
			for m := 0; m < j; m++ {
				s -= a[i][m] * a[j][m]
			}
			a[i][j] = s / a[j][j]
		}
	}
	z := make([]float64, k)
	for i := 0; i < k; i++ {
		s := rhs[i]
		for m := 0; m < i; m++ {
			s -= a[i][m] * z[m]
		}
		z[i] = s / a[i][i]
	}
	coef = make([]float64, k)
	for i := k - 1; i >= 0; i-- {
		s := z[i]
		for m := i + 1; m < k; m++ {
			s -= a[m][i] * coef[m]
		}
		coef[i] = s / a[i][i]
	}
	res = make([]float64, n)
	for r := 0; r < n; r++ {
		res[r] = y[r]
		for i := range cols {
			res[r] -= coef[i] * cols[i][r]
		}
	}
	return coef, res, nil
}

// DecideDose turns a dose estimate into a verdict against a threshold in bytes per chain:
// LEAK when the whole interval lies above it, CLEAN when below, INCONCLUSIVE otherwise
// (the note says why).
func DecideDose(d Dose, thresholdPerChain, confidence float64) (Verdict, string) {
	return judge(d.N, d.Lo, d.Hi, thresholdPerChain, confidence, "%.1f B/chain")
}
