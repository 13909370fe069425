package compare

import (
	"fmt"
	"math"
	"sort"

	"golang.org/x/perf/benchfmt"
	"golang.org/x/perf/benchmath"

	"github.com/wfplab/wfplab/plots"
)

// Options are what makes a change a regression.
type Options struct {
	Alpha float64 // significance level of the U test, e.g. 0.05
	// MinChange is the smallest relative change, as a fraction (0.05 is 5%), that counts.
	MinChange float64
	// MinAbs is, per unit, the smallest absolute change that counts: a clean cell's leak
	// rate is noise around zero, where a relative change means nothing.
	MinAbs map[string]float64
	// Confidence of the medians' intervals, e.g. 0.95.
	Confidence float64
}

// DefaultOptions: benchstat's alpha; 5%; 1 KiB/s of leak (a quarter of the default
// verdict threshold) and 16 B/chain (a small fraction of one 352–576 B NBL).
func DefaultOptions() Options {
	return Options{Alpha: 0.05, MinChange: 0.05, Confidence: 0.95,
		MinAbs: map[string]float64{"leak-B/s": 1024, "B/chain": 16}}
}

// Status is a row's finding.
type Status string

const (
	Regression  Status = "regression"
	Improvement Status = "improvement"
	Unchanged   Status = "unchanged"      // not significant
	BelowMin    Status = "below-min"      // significant, smaller than the minimum effect
	Changed     Status = "changed"        // significant and big enough, but no direction known
	OnlyBase    Status = "only-base"      // the candidate has no value
	OnlyCand    Status = "only-candidate" // the base has no value
)

// Summary is one side's values of a metric.
type Summary struct {
	N              int
	Center, Lo, Hi float64 // median and its confidence interval
}

// Row is one metric of one benchmark.
type Row struct {
	Name, Unit string
	Base, Cand Summary
	Change     float64 // (candidate − base) / |base|; ±Inf when base is 0
	P          float64 // U test p-value; NaN when a side is missing
	Better     int     // +1 higher is better, −1 lower is better, 0 unknown
	Status     Status
	Warnings   []string
}

// Result is a whole comparison.
type Result struct {
	Base, Cand *Side
	Options    Options
	Rows       []Row
}

// Count is how many rows have status st.
func (r *Result) Count(st Status) int {
	n := 0
	for _, row := range r.Rows {
		if row.Status == st {
			n++
		}
	}
	return n
}

// Compare compares every metric either side has.
func Compare(base, cand *Side, o Options) (*Result, error) {
	if !(o.Alpha > 0 && o.Alpha < 1) {
		return nil, fmt.Errorf("alpha %v: give a significance level between 0 and 1, e.g. 0.05", o.Alpha)
	}
	if !(o.MinChange >= 0) || math.IsInf(o.MinChange, 0) {
		return nil, fmt.Errorf("minimum change %v: give a fraction of 0 or more, e.g. 0.05 for 5%%", o.MinChange)
	}
	if !(o.Confidence > 0 && o.Confidence < 1) {
		o.Confidence = 0.95
	}
	units := benchfmt.UnitMetadataMap{}
	for _, s := range []*Side{base, cand} {
		for k, m := range s.units {
			units[k] = m
		}
	}
	th := &benchmath.Thresholds{CompareAlpha: o.Alpha}
	res := &Result{Base: base, Cand: cand, Options: o}
	common := 0
	for _, k := range mergedOrder(base, cand) {
		bv, cv := base.values[k], cand.values[k]
		row := Row{Name: k.name, Unit: k.unit, P: math.NaN(), Change: math.NaN(), Better: better(units, k.unit)}
		assume := units.GetAssumption(k.unit)
		var bs, cs *benchmath.Sample
		if len(bv) > 0 {
			bs = benchmath.NewSample(append([]float64(nil), bv...), th)
			row.Base = summarize(assume, bs, o.Confidence, &row)
		}
		if len(cv) > 0 {
			cs = benchmath.NewSample(append([]float64(nil), cv...), th)
			row.Cand = summarize(assume, cs, o.Confidence, &row)
		}
		switch {
		case bs == nil:
			row.Status = OnlyCand
		case cs == nil:
			row.Status = OnlyBase
		default:
			common++
			c := assume.Compare(bs, cs)
			row.P = c.P
			for _, w := range c.Warnings {
				row.Warnings = append(row.Warnings, w.Error())
			}
			row.Change = change(row.Base.Center, row.Cand.Center)
			row.Status = judge(row, o)
		}
		res.Rows = append(res.Rows, row)
	}
	if common == 0 {
		return nil, fmt.Errorf("%s and %s have no benchmark in common: runs of different scenarios?", base.Path, cand.Path)
	}
	return res, nil
}

func summarize(a benchmath.Assumption, s *benchmath.Sample, conf float64, row *Row) Summary {
	sum := a.Summary(s, conf)
	for _, w := range sum.Warnings {
		row.Warnings = append(row.Warnings, w.Error())
	}
	return Summary{N: len(s.Values), Center: sum.Center, Lo: sum.Lo, Hi: sum.Hi}
}

func change(base, cand float64) float64 {
	switch {
	case base == cand:
		return 0
	case base == 0:
		return math.Copysign(math.Inf(1), cand)
	}
	return (cand - base) / math.Abs(base)
}

func judge(row Row, o Options) Status {
	if row.P > o.Alpha {
		return Unchanged
	}
	diff := row.Cand.Center - row.Base.Center
	if math.Abs(diff) < o.MinAbs[row.Unit] || math.Abs(row.Change) < o.MinChange || diff == 0 {
		return BelowMin
	}
	switch {
	case row.Better == 0:
		return Changed
	case (diff > 0) == (row.Better > 0):
		return Improvement
	}
	return Regression
}

// better is the unit's direction: the file's Unit metadata, else what plots says of its own
// units (a bench.txt from before plots wrote Unit lines), else benchfmt's defaults.
func better(units benchfmt.UnitMetadataMap, unit string) int {
	if units.Get(unit, "better") != nil {
		return units.GetBetter(unit)
	}
	if b := plots.BenchBetter(unit); b != 0 {
		return b
	}
	return units.GetBetter(unit)
}

// mergedOrder is the base's metrics in its order, then the candidate's new ones, grouped
// by unit as benchstat's tables are.
func mergedOrder(base, cand *Side) []key {
	seen := map[key]bool{}
	var keys []key
	unitRank := map[string]int{}
	for _, s := range []*Side{base, cand} {
		for _, k := range s.order {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
				if _, ok := unitRank[k.unit]; !ok {
					unitRank[k.unit] = len(unitRank)
				}
			}
		}
	}
	sort.SliceStable(keys, func(i, j int) bool { return unitRank[keys[i].unit] < unitRank[keys[j].unit] })
	return keys
}
