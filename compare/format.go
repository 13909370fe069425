package compare

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"golang.org/x/perf/benchunit"
)

// Formats Write knows.
var Formats = []string{"text", "csv", "json"}

// Write writes r in format (text, csv or json).
func (r *Result) Write(w io.Writer, format string) error {
	switch format {
	case "text", "":
		return r.writeText(w)
	case "csv":
		return r.writeCSV(w)
	case "json":
		return r.writeJSON(w)
	}
	return fmt.Errorf("format %q: give one of %s", format, strings.Join(Formats, ", "))
}

func sideText(s *Side) string {
	return fmt.Sprintf("%s (%d run%s: %s)", s.Path, s.Runs(), plural(s.Runs()), strings.Join(s.Sources, ", "))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// writeText is benchstat's layout: one table per unit, median ± CI per side, change, p.
func (r *Result) writeText(w io.Writer) error {
	o := r.Options
	fmt.Fprintf(w, "base:      %s\ncandidate: %s\n", sideText(r.Base), sideText(r.Cand))
	fmt.Fprintf(w, "regression: worse with p ≤ %g, by %g%% or more%s\n", o.Alpha, 100*o.MinChange, minAbsText(o.MinAbs))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	unit := ""
	for _, row := range r.Rows {
		if row.Unit != unit {
			unit = row.Unit
			fmt.Fprintf(tw, "\t\t\t\t\t\n%s (%s better)\tbase\tcandidate\tchange\tp\t\n", unit, betterText(row.Better))
		}
		scale := benchunit.CommonScale([]float64{row.Base.Center, row.Cand.Center}, benchunit.ClassOf(unit))
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", row.Name, summaryText(row.Base, scale), summaryText(row.Cand, scale),
			changeText(row.Change), pText(row), statusMark(row.Status))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%d metrics: %d regressions, %d improvements, %d unchanged, %d below the minimum effect, %d changed (direction unknown), %d only in base, %d only in candidate\n",
		len(r.Rows), r.Count(Regression), r.Count(Improvement), r.Count(Unchanged), r.Count(BelowMin), r.Count(Changed), r.Count(OnlyBase), r.Count(OnlyCand))
	for _, n := range r.notes() {
		fmt.Fprintln(w, "note:", n)
	}
	return nil
}

// notes are the rows' warnings, each said once with how many rows it concerns.
func (r *Result) notes() []string {
	count := map[string]int{}
	for _, row := range r.Rows {
		seen := map[string]bool{}
		for _, w := range row.Warnings {
			if !seen[w] {
				seen[w] = true
				count[w]++
			}
		}
	}
	var out []string
	for w, n := range count {
		out = append(out, fmt.Sprintf("%s (%d metric%s)", w, n, plural(n)))
	}
	sort.Strings(out)
	few := 0
	for _, row := range r.Rows {
		if row.Status == Unchanged && (row.Base.N < 4 || row.Cand.N < 4) {
			few++
		}
	}
	if few > 0 {
		out = append(out, fmt.Sprintf("%d metrics have under 4 values a side, too few for the U test to find any difference at alpha 0.05; bench.txt has one leak estimate per cell and run: give folders holding several runs", few))
	}
	for _, s := range []*Side{r.Base, r.Cand} {
		if s.skipped > 0 {
			out = append(out, fmt.Sprintf("%s: %d values were not finite and were left out", s.Path, s.skipped))
		}
	}
	return out
}

func minAbsText(m map[string]float64) string {
	if len(m) == 0 {
		return ""
	}
	units := make([]string, 0, len(m))
	for u := range m {
		units = append(units, u)
	}
	sort.Strings(units)
	parts := make([]string, len(units))
	for i, u := range units {
		parts[i] = fmt.Sprintf("%s %g", u, m[u])
	}
	return " and by at least " + strings.Join(parts, ", ")
}

func betterText(b int) string {
	switch {
	case b > 0:
		return "higher is"
	case b < 0:
		return "lower is"
	}
	return "neither known"
}

func summaryText(s Summary, scale benchunit.Scaler) string {
	if s.N == 0 {
		return "-"
	}
	v := scale.Format(s.Center)
	if s.N > 1 {
		if pct := pctRange(s); pct != "" {
			v += " ± " + pct
		}
	}
	return fmt.Sprintf("%s n=%d", v, s.N)
}

// pctRange is the interval's larger side as a percent of the median, as benchstat shows it.
func pctRange(s Summary) string {
	switch {
	case math.IsInf(s.Lo, 0) || math.IsInf(s.Hi, 0):
		return "∞"
	case s.Center == 0 || math.Signbit(s.Lo) != math.Signbit(s.Center) || math.Signbit(s.Hi) != math.Signbit(s.Center):
		return "?"
	}
	return fmt.Sprintf("%.0f%%", 100*math.Max(s.Hi/s.Center-1, 1-s.Lo/s.Center))
}

func changeText(c float64) string {
	switch {
	case math.IsNaN(c):
		return "-"
	case math.IsInf(c, 1):
		return "+∞%"
	case math.IsInf(c, -1):
		return "-∞%"
	}
	return fmt.Sprintf("%+.2f%%", 100*c)
}

func pText(row Row) string {
	if math.IsNaN(row.P) {
		return "-"
	}
	return fmt.Sprintf("p=%.3f", row.P)
}

func statusMark(s Status) string {
	switch s {
	case Regression:
		return "REGRESSION"
	case Unchanged:
		return "~"
	}
	return string(s)
}

func (r *Result) writeCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"name", "unit", "better", "base_n", "base_median", "base_lo", "base_hi",
		"candidate_n", "candidate_median", "candidate_lo", "candidate_hi", "change", "p", "status", "warnings"})
	f := func(v float64) string {
		if math.IsNaN(v) {
			return ""
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	for _, row := range r.Rows {
		cw.Write([]string{row.Name, row.Unit, strconv.Itoa(row.Better),
			strconv.Itoa(row.Base.N), f(row.Base.Center), f(row.Base.Lo), f(row.Base.Hi),
			strconv.Itoa(row.Cand.N), f(row.Cand.Center), f(row.Cand.Lo), f(row.Cand.Hi),
			f(row.Change), f(row.P), string(row.Status), strings.Join(row.Warnings, "; ")})
	}
	cw.Flush()
	return cw.Error()
}

// number is a float JSON can carry: NaN becomes null, ±Inf a string.
type number float64

func (n number) MarshalJSON() ([]byte, error) {
	v := float64(n)
	switch {
	case math.IsNaN(v):
		return []byte("null"), nil
	case math.IsInf(v, 0):
		return json.Marshal(strconv.FormatFloat(v, 'g', -1, 64))
	}
	return json.Marshal(v)
}

type jsonSummary struct {
	N      int    `json:"n"`
	Median number `json:"median"`
	Lo     number `json:"lo"`
	Hi     number `json:"hi"`
}

func (r *Result) writeJSON(w io.Writer) error {
	type side struct {
		Path    string   `json:"path"`
		Sources []string `json:"sources"`
	}
	type row struct {
		Name      string      `json:"name"`
		Unit      string      `json:"unit"`
		Better    int         `json:"better"`
		Base      jsonSummary `json:"base"`
		Candidate jsonSummary `json:"candidate"`
		Change    number      `json:"change"`
		P         number      `json:"p"`
		Status    Status      `json:"status"`
		Warnings  []string    `json:"warnings,omitempty"`
	}
	js := func(s Summary) jsonSummary {
		if s.N == 0 {
			nan := number(math.NaN())
			return jsonSummary{Median: nan, Lo: nan, Hi: nan}
		}
		return jsonSummary{s.N, number(s.Center), number(s.Lo), number(s.Hi)}
	}
	out := struct {
		Base        side               `json:"base"`
		Candidate   side               `json:"candidate"`
		Alpha       float64            `json:"alpha"`
		MinChange   float64            `json:"min_change"`
		MinAbs      map[string]float64 `json:"min_abs"`
		Regressions int                `json:"regressions"`
		Rows        []row              `json:"rows"`
		Notes       []string           `json:"notes,omitempty"`
	}{
		Base: side{r.Base.Path, r.Base.Sources}, Candidate: side{r.Cand.Path, r.Cand.Sources},
		Alpha: r.Options.Alpha, MinChange: r.Options.MinChange, MinAbs: r.Options.MinAbs,
		Regressions: r.Count(Regression), Notes: r.notes(), Rows: []row{},
	}
	for _, x := range r.Rows {
		out.Rows = append(out.Rows, row{x.Name, x.Unit, x.Better, js(x.Base), js(x.Cand), number(x.Change), number(x.P), x.Status, x.Warnings})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
