package bench

import (
	"math"
	"testing"
)

// Published two-sided critical values of Student's t (any statistics table, 3 decimals).
var tTable = []struct {
	p, df, want float64
}{
	{0.975, 1, 12.706}, {0.975, 2, 4.303}, {0.975, 3, 3.182}, {0.975, 4, 2.776}, {0.975, 5, 2.571},
	{0.975, 10, 2.228}, {0.975, 20, 2.086}, {0.975, 30, 2.042}, {0.975, 60, 2.000}, {0.975, 120, 1.980},
	{0.995, 1, 63.657}, {0.995, 5, 4.032}, {0.995, 10, 3.169}, {0.995, 30, 2.750},
	{0.95, 1, 6.314}, {0.95, 10, 1.812}, {0.95, 20, 1.725}, {0.9, 5, 1.476}, {0.9995, 10, 4.587},
}

func TestStudentTQuantileMatchesTables(t *testing.T) {
	for _, c := range tTable {
		got, err := StudentTQuantile(c.p, c.df)
		if err != nil {
			t.Fatalf("t(%v, df=%v): %v", c.p, c.df, err)
		}
		if math.Abs(got-c.want) > 0.0006 {
			t.Errorf("t(%v, df=%v) = %.5f, table says %.3f", c.p, c.df, got, c.want)
		}
		// The lower tail is the mirror image.
		neg, _ := StudentTQuantile(1-c.p, c.df)
		if math.Abs(neg+got) > 1e-9*got {
			t.Errorf("t(%v, df=%v) = %v, not the negative of t(%v) = %v", 1-c.p, c.df, neg, c.p, got)
		}
	}
}

func TestStudentTQuantileClosedForms(t *testing.T) {
	for _, p := range []float64{0.51, 0.6, 0.75, 0.9, 0.975, 0.999, 0.99999} {
		// df = 1 is the Cauchy distribution.
		got, _ := StudentTQuantile(p, 1)
		want := math.Tan(math.Pi * (p - 0.5))
		if math.Abs(got-want) > 1e-8*math.Max(1, want) {
			t.Errorf("df=1 p=%v: %v, want %v", p, got, want)
		}
		// df = 2 has t = (2p−1)/sqrt(2p(1−p)).
		got, _ = StudentTQuantile(p, 2)
		want = (2*p - 1) / math.Sqrt(2*p*(1-p))
		if math.Abs(got-want) > 1e-8*math.Max(1, want) {
			t.Errorf("df=2 p=%v: %v, want %v", p, got, want)
		}
	}
	// Very large df is the normal distribution.
	got, _ := StudentTQuantile(0.975, 1e9)
	if math.Abs(got-1.959964) > 1e-5 {
		t.Errorf("df=1e9: %v, want 1.959964", got)
	}
	got, _ = StudentTQuantile(0.975, 1e5)
	if math.Abs(got-1.959987) > 1e-5 {
		t.Errorf("df=1e5: %v, want about 1.959987", got)
	}
}

func TestStudentTQuantileFractionalDFIsBetweenNeighbours(t *testing.T) {
	lo, _ := StudentTQuantile(0.975, 7)
	mid, _ := StudentTQuantile(0.975, 7.5)
	hi, _ := StudentTQuantile(0.975, 8)
	if !(mid < lo && mid > hi) {
		t.Fatalf("t(0.975, 7.5) = %v is not between t(7) = %v and t(8) = %v", mid, lo, hi)
	}
}

func TestStudentTCDFInvertsQuantile(t *testing.T) {
	for _, df := range []float64{1, 2.5, 4, 17, 300} {
		for _, p := range []float64{0.001, 0.1, 0.5, 0.8, 0.975, 0.9999} {
			q, err := StudentTQuantile(p, df)
			if err != nil {
				t.Fatal(err)
			}
			if got := studentTCDF(q, df); math.Abs(got-p) > 1e-10 {
				t.Errorf("CDF(quantile(%v), df=%v) = %v", p, df, got)
			}
		}
	}
}

func TestRegIncBetaKnownValues(t *testing.T) {
	cases := []struct{ a, b, x, want float64 }{
		{1, 1, 0.3, 0.3},                  // uniform
		{2, 1, 0.4, 0.16},                 // x^a
		{1, 3, 0.2, 1 - math.Pow(0.8, 3)}, // 1 − (1−x)^b
		{5, 5, 0.5, 0.5},                  // symmetry
		{0.5, 0.5, 0.25, 1.0 / 3},         // (2/π)·asin(√x)
		{2, 3, 0.6, 0.8208},               // binomial: P(Bin(4, 0.6) ≥ 2)
	}
	for _, c := range cases {
		got := regIncBeta(c.a, c.b, c.x)
		if math.Abs(got-c.want) > 1e-10 {
			t.Errorf("I_%v(%v, %v) = %.12f, want %.12f", c.x, c.a, c.b, got, c.want)
		}
	}
	// For whole a and b, I_x(a, b) = P(Bin(a+b−1, x) ≥ a).
	for _, c := range []struct {
		a, b int
		x    float64
	}{{3, 7, 0.2}, {10, 20, 0.3}, {40, 15, 0.75}, {1, 50, 0.01}, {25, 25, 0.52}} {
		n := c.a + c.b - 1
		want := 0.0
		for j := c.a; j <= n; j++ {
			lc, _ := math.Lgamma(float64(n + 1))
			lj, _ := math.Lgamma(float64(j + 1))
			lr, _ := math.Lgamma(float64(n - j + 1))
			want += math.Exp(lc - lj - lr + float64(j)*math.Log(c.x) + float64(n-j)*math.Log1p(-c.x))
		}
		got := regIncBeta(float64(c.a), float64(c.b), c.x)
		if math.Abs(got-want) > 1e-10 {
			t.Errorf("I_%v(%d, %d) = %.12f, binomial sum says %.12f", c.x, c.a, c.b, got, want)
		}
	}
	if regIncBeta(2, 2, 0) != 0 || regIncBeta(2, 2, 1) != 1 {
		t.Error("I_0 and I_1 must be 0 and 1")
	}
}

func TestStudentTQuantileRejectsBadInput(t *testing.T) {
	for _, c := range []struct{ p, df float64 }{{0, 5}, {1, 5}, {-0.1, 5}, {math.NaN(), 5}, {0.9, 0}, {0.9, -2}, {0.9, math.NaN()}} {
		if q, err := StudentTQuantile(c.p, c.df); err == nil {
			t.Errorf("StudentTQuantile(%v, %v) = %v, want an error", c.p, c.df, q)
		}
	}
}

// studentTCDF is P(T ≤ t) for Student's t with df > 0 degrees of freedom (df need not be whole).
func studentTCDF(t, df float64) float64 {
	if t >= 0 {
		return 1 - studentTTail(t, df)
	}
	return studentTTail(-t, df)
}
