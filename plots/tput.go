package plots

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"

	"golang.org/x/perf/benchfmt"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/wfplab/wfplab/bench"
)

// TputSource is a Source that also holds throughput windows; *bench.Store is one. A
// Source without them reports no throughput.
type TputSource interface {
	TputWindows(target string) ([]bench.TputWindow, error)
}

var _ TputSource = (*bench.Store)(nil)

// tputBenchName is the benchmark of the throughput windows' lines in bench.txt.
const tputBenchName = "KB979223Throughput"

// readTput reads the throughput windows and compares before and after with the scenario
// stored with the run (its max_loss, alpha and profile kinds).
func (rd *runData) readTput(src Source, fail func(error)) {
	ts, ok := src.(TputSource)
	if !ok {
		return
	}
	ws, err := ts.TputWindows("")
	if err != nil {
		fail(fmt.Errorf("plots: reading throughput windows from the store: %w", err))
		return
	}
	rd.tput = ws
	if rd.scenario != nil && len(ws) > 0 {
		rd.tputCmp = bench.CompareTputFor(ws, rd.scenario)
	}
}

// tputJudged are the comparisons that decide a throughput cell, in scenario order.
func (rd *runData) tputJudged() []bench.TputComparison {
	var out []bench.TputComparison
	for _, c := range rd.tputCmp {
		if c.Judged {
			out = append(out, c)
		}
	}
	return out
}

// tputHeadline says how many throughput cells did not regress; "" without any.
func (rd *runData) tputHeadline() string {
	js := rd.tputJudged()
	if len(js) == 0 {
		return ""
	}
	ok, regressed := 0, 0
	for _, c := range js {
		switch c.Verdict {
		case bench.TputOK:
			ok++
		case bench.TputRegressed:
			regressed++
		}
	}
	return fmt.Sprintf("Throughput: %d of %d target × profile cells not regressed after the hotfix (%d regressed, %d incomplete).",
		ok, len(js), regressed, len(js)-ok-regressed)
}

// writeTputBench appends one Go benchmark result per throughput window, through x/perf's
// benchfmt, so benchstat and `wfplab compare` read them: `benchstat -col /phase bench.txt`
// compares before with after. The iteration count is the samples the figures span.
func writeTputBench(b *bytes.Buffer, rd *runData) error {
	if len(rd.tput) == 0 {
		return nil
	}
	kinds := map[string]string{}
	if rd.scenario != nil {
		for _, p := range rd.scenario.Profiles {
			kinds[p.Name] = p.Kind
		}
	}
	infos := map[string]bench.TargetInfo{}
	for _, td := range rd.targets {
		infos[td.info.Name] = td.info
	}
	b.WriteString("\n# Throughput windows: the driver permitting and counting, one line per window.\n")
	b.WriteString("# classified/s is packets (NBLs) classified per second at the profile's layer; cpu-% the guest's busy share.\n")
	w := benchfmt.NewWriter(b)
	// Target by target in the scenario's order (the store's is the order windows ended in,
	// targets running side by side), each target's windows in their order.
	rank := map[string]int{}
	for i, td := range rd.targets {
		rank[td.info.Name] = i
	}
	windows := slices.Clone(rd.tput)
	slices.SortStableFunc(windows, func(a, b bench.TputWindow) int { return rank[a.Target] - rank[b.Target] })
	for _, tw := range windows {
		if tw.Samples == 0 {
			continue // no figures: cut short, or too few samples
		}
		info := infos[tw.Target]
		// The same file keys the leak lines above set, so none of theirs carries over (an
		// empty value deletes a key).
		res := &benchfmt.Result{Iters: tw.Samples}
		for _, kv := range [][2]string{{"goos", "windows"}, {"scenario", configValue(rd.run.Scenario)},
			{"target", configValue(tw.Target)}, {"product", configValue(info.Product)}, {"goarch", goarch(info.Arch)}} {
			res.Config = append(res.Config, benchfmt.Config{Key: kv[0], Value: []byte(kv[1]), File: true})
		}
		res.Name = benchfmt.Name(fmt.Sprintf("%s/target=%s/phase=%s/profile=%s", tputBenchName,
			nameValue(tw.Target), nameValue(tw.Phase), nameValue(tw.Profile)))
		for _, m := range bench.TputMetrics {
			if v := m.Value(tw, kinds[tw.Profile]); finite(v) {
				res.Values = append(res.Values, benchfmt.Value{Value: v, Unit: m.Name})
			}
		}
		if len(res.Values) == 0 {
			continue
		}
		if err := w.Write(res); err != nil {
			return err
		}
	}
	return nil
}

// tputChart draws, per profile, the before and after medians of classified/s with their
// confidence intervals as error bars, in percent of the before median, so profiles of
// different rates share one axis.
func tputChart(rd *runData, target string) drawing {
	var cs []bench.TputComparison
	for _, c := range rd.tputJudged() {
		if c.Target == target {
			cs = append(cs, c)
		}
	}
	title := "Throughput of " + target + ": classified/s, before and after the hotfix"
	if len(cs) == 0 {
		p := emptyChart(title, "no throughput windows with figures")
		return func(dc draw.Canvas) { p.Draw(dc) }
	}
	p := newPlot(title, "", "% of the median before", false)
	var legend []legendEntry
	lo, hi := 100.0, 100.0
	for pi, phase := range []string{"before", "after"} {
		var pts ciPoints
		for i, c := range cs {
			s := c.Before
			if phase == "after" {
				s = c.After
			}
			if s.N == 0 || !finite(s.Center) || !(c.Before.Center > 0) {
				continue
			}
			scale := 100 / c.Before.Center
			x := float64(i) + 0.15*float64(2*pi-1)
			slo, shi := s.Lo, s.Hi
			if !finite(slo) || !finite(shi) {
				slo, shi = s.Center, s.Center // no interval: a bare point
			}
			pts = append(pts, struct{ x, y, lo, hi float64 }{x, s.Center * scale, slo * scale, shi * scale})
			lo, hi = math.Min(lo, slo*scale), math.Max(hi, shi*scale)
		}
		if len(pts) == 0 {
			continue
		}
		look := lookOf(phase, pi)
		sc, err := plotter.NewScatter(pts)
		if err != nil {
			continue
		}
		sc.GlyphStyle.Color, sc.GlyphStyle.Radius, sc.GlyphStyle.Shape = look.color, vg.Points(4), draw.CircleGlyph{}
		bars, err := plotter.NewYErrorBars(pts)
		if err != nil {
			continue
		}
		bars.LineStyle.Color, bars.LineStyle.Width, bars.CapWidth = look.color, vg.Points(1.5), vg.Points(8)
		p.Add(bars, sc)
		legend = append(legend, legendEntry{text: phase + " (median, 95% CI)", thumb: sc})
	}
	var ticks []plot.Tick
	for i, c := range cs {
		label := c.Profile
		if c.Verdict == bench.TputRegressed {
			label += " (REGRESSED)"
		}
		ticks = append(ticks, plot.Tick{Value: float64(i), Label: label})
	}
	p.X.Min, p.X.Max = -0.6, float64(len(cs))-0.4
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	pad := math.Max(2, (hi-lo)*0.15)
	p.Y.Min, p.Y.Max = lo-pad, hi+pad
	addHLine(p, 100, inkColor, []vg.Length{vg.Points(4), vg.Points(4)})
	return drawWithLegend(p, [][]legendEntry{legend})
}

// htmlTput is a row of the report's throughput table.
type htmlTput struct {
	Target, Profile, Before, After, Change, P, CPUBefore, CPUAfter, Verdict, VerdictClass, Note string
}

func htmlTputRows(rd *runData) []htmlTput {
	cpu := map[[2]string]bench.TputComparison{}
	for _, c := range rd.tputCmp {
		if c.Metric == "cpu-%" {
			cpu[[2]string{c.Target, c.Profile}] = c
		}
	}
	var rows []htmlTput
	for _, c := range rd.tputJudged() {
		cp := cpu[[2]string{c.Target, c.Profile}]
		row := htmlTput{Target: c.Target, Profile: c.Profile, Before: summaryText(c.Before), After: summaryText(c.After),
			Change: dash, P: dash, CPUBefore: summaryText(cp.Before), CPUAfter: summaryText(cp.After),
			Verdict: c.Verdict, Note: c.Note}
		if finite(c.Change) {
			row.Change = fmt.Sprintf("%+.1f%%", 100*c.Change)
		}
		if finite(c.P) {
			row.P = strconv.FormatFloat(c.P, 'f', 3, 64)
		}
		switch c.Verdict {
		case bench.TputOK:
			row.VerdictClass = "v-clean"
		case bench.TputRegressed:
			row.VerdictClass = "v-leak"
		default:
			row.VerdictClass = "v-inc"
		}
		rows = append(rows, row)
	}
	return rows
}

// summaryText is "median [lo, hi] n=N".
func summaryText(s bench.TputSummary) string {
	if s.N == 0 || !finite(s.Center) {
		return dash
	}
	if !finite(s.Lo) || !finite(s.Hi) {
		return fmt.Sprintf("%s n=%d", num(s.Center), s.N)
	}
	return fmt.Sprintf("%s [%s, %s] n=%d", num(s.Center), num(s.Lo), num(s.Hi), s.N)
}
