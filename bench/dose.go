package bench

import (
	"fmt"
	"math"
	"sort"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
)

// Dose is a window's leak as bytes per blocked multi-NBL chain: nonpaged pool regressed on
// the driver's cumulative count of blocked multi-NBL chains and on time. Traffic switched on
// and off in blocks makes the two regressors differ, so a pool that drifts by itself lands
// in the time term and not in the chains' coefficient.
type Dose struct {
	PerChain float64 // bytes per chain
	Lo, Hi   float64 // its confidence interval
	Drift    float64 // bytes per second the pool moved by itself (the time term)
	N        int     // samples used
	DF       float64 // Student's t degrees of freedom of the interval: n − k for k terms
	// Phi is the fitted noise's AR(1) coefficient per sampling step, Walk its random walk's
	// variance per step as a share of the AR part's variance (0: no random walk).
	Phi, Walk float64
	Jumps     int // steps found in the pool and given a term of their own
	// NoiseN is how many samples the noise model was fitted to: this window's and those of
	// the other windows of its guest and phase.
	NoiseN int
	// ACF is the standardized one-step prediction errors' autocorrelation at DoseLags: near
	// 0 when the noise model fits, kept in the store as a diagnostic.
	ACF [len(DoseLags)]float64
}

// DoseLags are the lags whose residual autocorrelation a Dose keeps.
var DoseLags = [...]int{1, 2, 5, 10}

// Dose estimation constants.
const (
	// jumpZ is how far (in robust standard deviations of the differenced residuals) a
	// one-sample step must stand out to get a term of its own: a 32 KiB jump over 8 KiB of
	// noise does. A step taken where none was soaks up the noise's largest excursion and
	// narrows the interval: at 3.5 that happened in one window in twenty, and coverage
	// under drift and jumps was about a point lower (600 simulated windows).
	jumpZ = 4
	// maxJumps bounds the step terms: a window with more steps than this is too disturbed
	// to say anything, and its interval shows it.
	maxJumps = 4
)

// noiseModel is the pool's background noise: a stationary AR(1) process (coefficient phi
// per step seconds, variance 1 here: the fit scales it) plus a random walk whose variance
// grows by walk per step. Between samples further apart than step, both follow their
// continuous-time versions (phi^(dt/step), walk·dt/step).
type noiseModel struct {
	phi, walk, step float64
}

// The REML search grid: AR coefficients, and random-walk variance per step as a share of
// the AR variance (0.006 is the simulated guest's: 2 KiB/√s of drift under 8 KiB of noise).
var (
	phiGrid  = []float64{0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98}
	walkGrid = []float64{0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 3}
)

// DoseCI estimates bytes per chain from samples at times t (seconds), with chains the
// cumulative count of blocked multi-NBL chains and pool the nonpaged bytes.
//
// The noise of real pool is autocorrelated (it wanders), drifts and jumps (a large
// allocation or free). The fit is GLS under that noise: steps that stand out in the
// differenced series get a term each; the noise is an AR(1) process plus a random walk,
// its two parameters chosen by restricted maximum likelihood (REML) over a grid, the
// likelihood and the GLS fit computed by a Kalman filter (so irregular sampling is exact);
// the terms are an intercept, time (a steady drift) and chains. The interval is Student's t
// with n − k degrees of freedom (k terms) on the GLS standard error and the window's own
// noise variance.
func DoseCI(t, chains, pool []float64, confidence float64) (Dose, error) {
	d, errs := DoseCIs([]DoseSeries{{t, chains, pool}}, confidence)
	return d[0], errs[0]
}

// DoseSeries is one stretch of samples: times (s), the cumulative chain count, pool bytes.
type DoseSeries struct{ T, Chains, Pool []float64 }

// DoseCIs is DoseCI for several windows of one guest and phase. The noise belongs to the
// guest, not the window, so its model is fitted to all of them together (each with its own
// terms; a stretch whose chains never change, such as a quiet warm-up, has no chain term
// and gets no estimate but still shows the noise); one window alone cannot tell a random
// walk from a drift or a dose nearly as well. Each window keeps its own noise variance and
// n − k degrees of freedom. A window that cannot be estimated has its error at its index.
func DoseCIs(ws []DoseSeries, confidence float64) ([]Dose, []error) {
	return doseCIs(ws, confidence, nil)
}

// doseCIs is DoseCIs; a non-nil known fixes the noise model instead of fitting it (the
// power benchmark's oracle).
func doseCIs(ws []DoseSeries, confidence float64, known *noiseModel) ([]Dose, []error) {
	out, errs := make([]Dose, len(ws)), make([]error, len(ws))
	segs := make([]noiseSegment, len(ws))
	var fit []noiseSegment
	for i, w := range ws {
		nan := math.NaN()
		out[i] = Dose{PerChain: nan, Lo: nan, Hi: nan, Drift: nan, N: len(w.T), DF: nan, Phi: nan, Walk: nan}
		segs[i], errs[i] = doseTerms(w, confidence)
		if segs[i].cols != nil {
			fit = append(fit, segs[i])
		}
	}
	var m noiseModel
	if known != nil {
		m = *known
	} else if len(fit) > 0 {
		var err error
		if m, err = fitNoise(fit); err != nil {
			for i := range errs {
				if errs[i] == nil {
					errs[i] = fmt.Errorf("bench: dose: %v", err)
				}
			}
			return out, errs
		}
	}
	noiseN := 0
	for _, s := range fit {
		noiseN += len(s.t)
	}
	for i, s := range segs {
		if errs[i] != nil {
			continue
		}
		f, err := gls(s.t, s.cols, s.y, m)
		if err != nil {
			errs[i] = fmt.Errorf("bench: dose: %v", err)
			continue
		}
		n, k := len(s.t), len(s.cols)
		df := float64(n - k)
		q, err := StudentTQuantile(1-(1-confidence)/2, df)
		if err != nil {
			errs[i] = err
			continue
		}
		se := math.Sqrt(f.s2 * f.cov.At(2, 2))
		d := &out[i]
		d.PerChain, d.Drift = f.coef[2], f.coef[1]
		d.Lo, d.Hi = d.PerChain-q*se, d.PerChain+q*se
		d.DF, d.Phi, d.Walk, d.Jumps, d.NoiseN = df, m.phi, m.walk, k-3, noiseN
		for j, l := range DoseLags {
			d.ACF[j] = lagCorr(f.res, l)
		}
	}
	return out, errs
}

// doseTerms checks one stretch and lays out its terms: intercept, time, chains (when they
// change) and a step per jump found. A stretch with no chain term comes back with an error
// and its terms, for the noise fit alone; one that cannot be used has no terms.
func doseTerms(w DoseSeries, confidence float64) (noiseSegment, error) {
	t, chains, pool := w.T, w.Chains, w.Pool
	n := len(t)
	if len(chains) != n || len(pool) != n {
		return noiseSegment{}, fmt.Errorf("bench: dose: %d times, %d chain counts and %d pool values; they must match", n, len(chains), len(pool))
	}
	if !(confidence > 0 && confidence < 1) {
		return noiseSegment{}, fmt.Errorf("bench: dose: confidence %v is not in (0, 1)", confidence)
	}
	for i := range t {
		if !finite(t[i]) || !finite(chains[i]) || !finite(pool[i]) {
			return noiseSegment{}, fmt.Errorf("bench: dose: sample %d (%v s, %v chains, %v B) is not finite", i, t[i], chains[i], pool[i])
		}
		if i > 0 && t[i] <= t[i-1] {
			return noiseSegment{}, fmt.Errorf("bench: dose: sample %d's time %v s does not follow %v s", i, t[i], t[i-1])
		}
	}
	if n < MinSamples {
		return noiseSegment{}, fmt.Errorf("bench: dose: %d samples; an estimate needs at least %d", n, MinSamples)
	}
	// Centred columns: the intercept takes the level, coefficients stay in their units.
	cols := [][]float64{ones(n), centred(t)}
	dose := varies(chains)
	if dose {
		cols = append(cols, centred(chains))
	}
	for _, j := range findJumps(t, chains, pool) {
		step := make([]float64, n)
		for i := j; i < n; i++ {
			step[i] = 1
		}
		cols = append(cols, step)
	}
	if n-len(cols) < 3 {
		return noiseSegment{}, fmt.Errorf("bench: dose: %d samples for %d terms; too few", n, len(cols))
	}
	if _, _, err := leastSquares(cols, pool); err != nil {
		// The time and chain columns move together: traffic never paused in the window.
		return noiseSegment{}, fmt.Errorf("bench: dose: %v (time and chains move together: did the traffic pause in blocks?)", err)
	}
	seg := noiseSegment{t, cols, pool}
	if !dose {
		return seg, fmt.Errorf("bench: dose: the driver blocked no multi-NBL chains in the window (or the same number in every sample); bytes per chain needs chains")
	}
	return seg, nil
}

// noiseSegment is a stretch of samples with its own regressors, for fitNoise.
type noiseSegment struct {
	t    []float64
	cols [][]float64
	y    []float64
}

// fitNoise chooses the noise model on the grid that maximizes the restricted likelihood
// of the segments together (independent of each other, one noise variance).
func fitNoise(segs []noiseSegment) (noiseModel, error) {
	step := medianStep(segs[0].t)
	best, bestM := math.Inf(-1), noiseModel{step: step}
	exact := true
	for _, phi := range phiGrid {
		for _, walk := range walkGrid {
			m := noiseModel{phi: phi, walk: walk, step: step}
			var rss, logs, df float64
			ok := true
			for _, s := range segs {
				g, err := gls(s.t, s.cols, s.y, m)
				if err != nil {
					ok = false
					break
				}
				d := float64(len(s.t) - len(s.cols))
				exact = exact && g.s2 == 0
				rss += g.s2 * d
				logs += g.logs
				df += d
			}
			if !ok || !(rss > 0) {
				continue
			}
			if l := -0.5 * (df*math.Log(rss/df) + logs); l > best {
				best, bestM = l, m
			}
		}
	}
	if math.IsInf(best, -1) && !exact {
		return bestM, fmt.Errorf("no noise model fits: the chain count is a combination of time and the steps; traffic must pause in blocks")
	}
	return bestM, nil
}

// glsFit is a GLS fit under one noise model.
type glsFit struct {
	coef []float64
	cov  *mat.SymDense // (X'Σ⁻¹X)⁻¹ for unit noise variance
	s2   float64       // the noise variance's REML estimate
	res  []float64     // standardized one-step prediction errors
	reml float64       // restricted log-likelihood, up to a constant
	logs float64       // its terms apart from the residuals: log|Σ| + log|X'Σ⁻¹X|
}

// gls fits y on the columns by generalized least squares under m. A Kalman filter on the
// state (walk level, AR value) turns each series into its one-step prediction errors over
// their standard deviations, which are uncorrelated under m: least squares on them is GLS.
// The walk starts at 0 at the first sample (the intercept takes the level); the AR part
// starts stationary.
func gls(t []float64, cols [][]float64, y []float64, m noiseModel) (glsFit, error) {
	n, k := len(t), len(cols)
	series := append(append([][]float64{}, cols...), y)
	w := make([][]float64, len(series)) // whitened
	for s := range w {
		w[s] = make([]float64, n)
	}
	mean := make([][2]float64, len(series)) // each series' predicted (walk, AR) state
	p00, p01, p11 := 0.0, 0.0, 1.0          // predicted state covariance
	var logF float64
	for i := 0; i < n; i++ {
		if i > 0 {
			r := (t[i] - t[i-1]) / m.step
			a := math.Pow(m.phi, r)
			for s := range mean {
				mean[s][1] *= a
			}
			p00 += m.walk * r
			p01 *= a
			p11 = a*a*p11 + 1 - a*a
		}
		// The pool is walk + AR: its prediction error's variance f, the gain k0, k1.
		f := p00 + 2*p01 + p11
		if !(f > 1e-12) {
			return glsFit{}, fmt.Errorf("noise model %+v: a sample is predicted exactly", m)
		}
		k0, k1 := (p00+p01)/f, (p01+p11)/f
		sf := math.Sqrt(f)
		logF += math.Log(f)
		for s, v := range series {
			e := v[i] - mean[s][0] - mean[s][1]
			w[s][i] = e / sf
			mean[s][0] += k0 * e
			mean[s][1] += k1 * e
		}
		p00, p01, p11 = p00-k0*k0*f, p01-k0*k1*f, p11-k1*k1*f
	}
	coef, res, cov, logDet, err := ols(w[:k], w[k])
	if err != nil {
		return glsFit{}, err
	}
	var rss float64
	for _, r := range res {
		rss += r * r
	}
	df := float64(n - k)
	if !(rss > 0) {
		// An exact fit: no noise to speak of.
		return glsFit{coef: coef, cov: cov, s2: 0, res: res, reml: math.Inf(1)}, nil
	}
	reml := -0.5 * (df*math.Log(rss/df) + logF + logDet)
	return glsFit{coef: coef, cov: cov, s2: rss / df, res: res, reml: reml, logs: logF + logDet}, nil
}

// medianStep is the median time between samples.
func medianStep(t []float64) float64 {
	dt := make([]float64, len(t)-1)
	for i := 1; i < len(t); i++ {
		dt[i-1] = t[i] - t[i-1]
	}
	return median(dt)
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

// leastSquares fits y on the columns and returns the coefficients and residuals; a column
// that is (nearly) a combination of the others is an error.
func leastSquares(cols [][]float64, y []float64) (coef, res []float64, err error) {
	coef, res, _, _, err = ols(cols, y)
	return coef, res, err
}

// ols is least squares with (X'X)⁻¹. The columns are scaled to unit length first, so the
// collinearity check does not depend on their units.
func ols(cols [][]float64, y []float64) (coef, res []float64, cov *mat.SymDense, logDet float64, err error) {
	n, k := len(y), len(cols)
	scale := make([]float64, k)
	x := mat.NewDense(n, k, nil)
	for j, c := range cols {
		scale[j] = floats.Norm(c, 2)
		if scale[j] == 0 {
			return nil, nil, nil, 0, fmt.Errorf("regressor %d is all zero", j)
		}
		for i, v := range c {
			x.Set(i, j, v/scale[j])
		}
	}
	var xtx mat.SymDense
	xtx.SymOuterK(1, x.T())
	var chol mat.Cholesky
	if !chol.Factorize(&xtx) || chol.Cond() > 1e10 {
		return nil, nil, nil, 0, fmt.Errorf("a regressor is (nearly) a combination of the others")
	}
	var xty, b mat.VecDense
	xty.MulVec(x.T(), mat.NewVecDense(n, y))
	if err := chol.SolveVecTo(&b, &xty); err != nil {
		return nil, nil, nil, 0, err
	}
	cov = mat.NewSymDense(k, nil)
	if err := chol.InverseTo(cov); err != nil {
		return nil, nil, nil, 0, err
	}
	// log det X'X, the scaling undone.
	logDet = chol.LogDet()
	for _, s := range scale {
		logDet += 2 * math.Log(s)
	}
	coef = make([]float64, k)
	for j := range coef {
		coef[j] = b.AtVec(j) / scale[j]
		for l := j; l < k; l++ {
			cov.SetSym(j, l, cov.At(j, l)/(scale[j]*scale[l]))
		}
	}
	res = make([]float64, n)
	for i := range res {
		res[i] = y[i]
		for j, c := range cols {
			res[i] -= coef[j] * c[i]
		}
	}
	return coef, res, cov, logDet, nil
}

// DecideDose turns a dose estimate into a verdict against a threshold in bytes per chain:
// LEAK when the whole interval lies above it, CLEAN when below, INCONCLUSIVE otherwise
// (the note says why).
func DecideDose(d Dose, thresholdPerChain, confidence float64) (Verdict, string) {
	return judge(d.N, d.Lo, d.Hi, thresholdPerChain, confidence, "%.1f B/chain")
}
