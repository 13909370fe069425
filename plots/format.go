package plots

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/wfplab/wfplab/bench"
)

const dash = "—"

// num prints a measurement with as many decimals as its size deserves.
func num(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return dash
	}
	a := math.Abs(v)
	prec := 0
	switch {
	case a == 0:
	case a < 1:
		prec = 3
	case a < 10:
		prec = 2
	case a < 100:
		prec = 1
	}
	return groupThousands(strconv.FormatFloat(v, 'f', prec, 64))
}

// exact is a configured figure (a threshold) as written, with thousands grouped: 96, 4,096.
func exact(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return dash
	}
	return groupThousands(strconv.FormatFloat(v, 'f', -1, 64))
}

// groupThousands puts thin separators into the integer part: 1234567.8 → 1,234,567.8.
func groupThousands(s string) string {
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	intPart, frac := s, ""
	if i := strings.IndexByte(s, '.'); i >= 0 {
		intPart, frac = s[:i], s[i:]
	}
	if len(intPart) <= 3 {
		return sign + s
	}
	var b strings.Builder
	for i, r := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return sign + b.String() + frac
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// leakText is "slope B/s"; ciText is "[lo, hi]".
func leakText(r *bench.CellResult) string {
	if r == nil || !finite(r.Leak.Slope) {
		return dash
	}
	return num(r.Leak.Slope)
}

func ciText(r *bench.CellResult) string {
	if r == nil || !finite(r.Leak.Lo) || !finite(r.Leak.Hi) {
		return dash
	}
	return "[" + num(r.Leak.Lo) + ", " + num(r.Leak.Hi) + "]"
}

// perChainCIText is the interval of a result judged in bytes per chain, or a dash.
func perChainCIText(r *bench.CellResult) string {
	if r == nil || r.Dose == nil || !finite(r.Dose.Lo) || !finite(r.Dose.Hi) {
		return dash
	}
	return "[" + num(r.Dose.Lo) + ", " + num(r.Dose.Hi) + "]"
}

func samplesText(r *bench.CellResult) string {
	if r == nil {
		return ""
	}
	if finite(r.Leak.NEff) && r.Leak.NEff > 0 {
		return fmt.Sprintf("n=%d, n_eff=%.1f", r.Leak.N, r.Leak.NEff)
	}
	return fmt.Sprintf("n=%d", r.Leak.N)
}

func netioText(p *bench.PhaseInfo) string {
	if p == nil || p.Netio == "" {
		return dash
	}
	if p.Hotfix == "" {
		return p.Netio
	}
	return p.Netio + " (" + p.Hotfix + ")"
}

func verdictText(r *bench.CellResult) string {
	if r == nil {
		return "no result"
	}
	if r.Verdict == "" {
		return dash
	}
	return string(r.Verdict)
}

func expectedText(c *cell) string {
	if c.Expected == "" {
		return dash
	}
	return string(c.Expected)
}

func metText(c *cell) string {
	switch c.Status() {
	case "met":
		return "yes"
	case "failed":
		return "NO"
	case "missing":
		return "no result"
	case "incomplete":
		return "incomplete"
	}
	return dash
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return dash
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func durationText(d time.Duration) string {
	if d <= 0 {
		return dash
	}
	return d.Round(time.Second).String()
}

func bytesText(b int64) string {
	switch a := math.Abs(float64(b)); {
	case a >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(b)/(1<<20))
	case a >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}

// headline is the one sentence a release manager reads first.
func (rd *runData) headline() string {
	n := rd.counts
	if n.Expected == 0 {
		if n.Results == 0 {
			return "No results and no expectations recorded."
		}
		return fmt.Sprintf("No expectations to check; %d of %d cells have a result.", n.Results, n.Cells)
	}
	s := fmt.Sprintf("%d of %d expectations met", n.Met, n.Expected)
	var parts []string
	if n.Failed > 0 {
		parts = append(parts, fmt.Sprintf("%d not met", n.Failed))
	}
	if n.Missing > 0 {
		parts = append(parts, fmt.Sprintf("%d without a result", n.Missing))
	}
	if n.Incomplete > 0 {
		parts = append(parts, fmt.Sprintf("%d incomplete", n.Incomplete))
	}
	if len(parts) > 0 {
		s += " (" + strings.Join(parts, ", ") + ")"
	}
	return s + "."
}

// allMet is true only when every expectation has a result that meets it.
func (rd *runData) allMet() bool {
	return rd.counts.Expected > 0 && rd.counts.Met == rd.counts.Expected
}

func (rd *runData) title() string {
	s := "wfplab report"
	if rd.run.Scenario != "" {
		s += ": " + rd.run.Scenario
	}
	if rd.run.ID != "" {
		s += " (run " + rd.run.ID + ")"
	}
	return s
}
