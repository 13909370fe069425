package bench

import (
	"fmt"
	"math"
)

// Student's t distribution, from the regularized incomplete beta function, so the
// confidence interval needs nothing beyond the standard library.

// normalDFCutoff is where the t quantile is taken as the normal one: the two differ by
// less than 1e-6 relative there.
const normalDFCutoff = 1e7

// regIncBeta is the regularized incomplete beta function I_x(a, b), a, b > 0.
func regIncBeta(a, b, x float64) float64 {
	switch {
	case x <= 0:
		return 0
	case x >= 1:
		return 1
	}
	la, _ := math.Lgamma(a)
	lb, _ := math.Lgamma(b)
	lab, _ := math.Lgamma(a + b)
	front := math.Exp(lab - la - lb + a*math.Log(x) + b*math.Log1p(-x))
	// The continued fraction converges quickly for x below the mean; use symmetry above it.
	if x < (a+1)/(a+b+2) {
		return front * betaContinuedFraction(a, b, x) / a
	}
	return 1 - front*betaContinuedFraction(b, a, 1-x)/b
}

// betaContinuedFraction evaluates the continued fraction of I_x(a, b) by the modified
// Lentz method.
func betaContinuedFraction(a, b, x float64) float64 {
	const (
		tiny    = 1e-300
		eps     = 1e-16
		maxIter = 20000
	)
	// awayFromZero keeps Lentz's denominators from vanishing.
	awayFromZero := func(v float64) float64 {
		if math.Abs(v) < tiny {
			return tiny
		}
		return v
	}
	qab, qap, qam := a+b, a+1, a-1
	c := 1.0
	d := 1 / awayFromZero(1-qab*x/qap)
	h := d
	// step takes the next coefficient aa into c and d and returns the factor it brings to h.
	step := func(aa float64) float64 {
		d = 1 / awayFromZero(1+aa*d)
		c = awayFromZero(1 + aa/c)
		return d * c
	}
	for m := 1; m <= maxIter; m++ {
		fm := float64(m)
		m2 := 2 * fm
		h *= step(fm * (b - fm) * x / ((qam + m2) * (a + m2)))            // even step
		del := step(-(a + fm) * (qab + fm) * x / ((a + m2) * (qap + m2))) // odd step
		h *= del
		if math.Abs(del-1) < eps {
			break
		}
	}
	return h
}

// studentTTail is P(T > t) for t ≥ 0 with df degrees of freedom.
func studentTTail(t, df float64) float64 {
	if t <= 0 {
		return 0.5
	}
	return 0.5 * regIncBeta(df/2, 0.5, df/(df+t*t))
}

// StudentTQuantile returns t with P(T ≤ t) = p, for 0 < p < 1 and df > 0.
func StudentTQuantile(p, df float64) (float64, error) {
	if !(p > 0 && p < 1) {
		return math.NaN(), fmt.Errorf("bench: t quantile: probability %v is not in (0, 1)", p)
	}
	if !(df > 0) {
		return math.NaN(), fmt.Errorf("bench: t quantile: degrees of freedom %v must be positive", df)
	}
	if p == 0.5 {
		return 0, nil
	}
	if p < 0.5 {
		q, err := StudentTQuantile(1-p, df)
		return -q, err
	}
	if df > normalDFCutoff {
		return math.Sqrt2 * math.Erfinv(2*p-1), nil
	}
	// Solve tail(t) = 1-p on the upper tail, where the tail is computed without cancellation.
	tail := 1 - p
	lo, hi := 0.0, 1.0
	for i := 0; i < 2000 && studentTTail(hi, df) > tail; i++ {
		lo, hi = hi, hi*2
	}
	if studentTTail(hi, df) > tail {
		return math.Inf(1), nil
	}
	for i := 0; i < 200 && hi-lo > 1e-13*hi; i++ {
		mid := (lo + hi) / 2
		if studentTTail(mid, df) > tail {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2, nil
}
