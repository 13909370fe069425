package plots

import (
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// ciPoints are estimates with their interval, as gonum's error bars want them.
type ciPoints []struct{ x, y, lo, hi float64 }

func (c ciPoints) Len() int                         { return len(c) }
func (c ciPoints) XY(i int) (float64, float64)      { return c[i].x, c[i].y }
func (c ciPoints) YError(i int) (low, high float64) { return c[i].y - c[i].lo, c[i].hi - c[i].y }

// Filled shapes first: they read better at small sizes.
var profileShapes = []draw.GlyphDrawer{
	draw.CircleGlyph{}, draw.PyramidGlyph{}, draw.BoxGlyph{},
	draw.RingGlyph{}, draw.TriangleGlyph{}, draw.SquareGlyph{}, draw.CrossGlyph{}, draw.PlusGlyph{},
}

var thresholdColor = color.RGBA{R: 0xb0, G: 0x20, B: 0x20, A: 0xff}

// overviewChart shows every cell's leak rate with its interval: targets side by side, within a
// target each profile's phases next to each other, so before vs after reads at a glance.
func overviewChart(rd *runData) drawing {
	threshold, confidence, haveRule := rd.verdictRule()
	if !haveRule {
		confidence = 0.95
	}
	// Judged in bytes per chain, no rate is the line the verdicts were drawn at.
	perChain, _ := rd.perChainRule()
	drawRule := haveRule && !perChain
	title := fmt.Sprintf("Leak rate per cell with %g%% confidence interval", 100*confidence)
	if rd.run.ID != "" || rd.run.Scenario != "" {
		title += fmt.Sprintf("\nscenario %s, run %s", orDash(rd.run.Scenario), orDash(rd.run.ID))
	}
	p := newPlot(title, "", "leak rate (bytes/s)", false)

	pts := overviewPointsOf(rd)
	if len(pts.marks) == 0 {
		return drawWithLegend(emptyChart(title, "no cell results in the store (the run ended before analysis)"), nil)
	}
	if drawRule {
		pts.yMin, pts.yMax = min(pts.yMin, threshold), max(pts.yMax, threshold)
	}
	setOverviewAxes(p, rd, pts.yMin, pts.yMax)

	for ti := 0; ti+1 < len(rd.targets); ti++ {
		x := float64(ti) + 0.5
		if l, err := plotter.NewLine(plotter.XYs{{X: x, Y: p.Y.Min}, {X: x, Y: p.Y.Max}}); err == nil {
			l.LineStyle.Color, l.LineStyle.Width = color.Gray{Y: 190}, vg.Points(0.8)
			p.Add(l)
		}
	}
	addHLine(p, 0, color.Gray{Y: 120}, nil)
	var ruleCol []legendEntry
	if drawRule {
		if l := addHLine(p, threshold, thresholdColor, []vg.Length{vg.Points(5), vg.Points(3)}); l != nil {
			ruleCol = append(ruleCol, legendEntry{text: fmt.Sprintf("threshold %s B/s", num(threshold)), thumb: l})
		}
	} else if perChain && rd.scenario != nil {
		ruleCol = append(ruleCol, legendEntry{text: fmt.Sprintf("verdicts: bytes per chain against %s B/chain (see the table)", exact(rd.scenario.Verdict.ThresholdPerChain))})
	}
	phaseCol := addPhaseBars(p, rd, pts.bars)
	profileCol := addProfileMarks(p, rd, pts.marks)
	return drawWithLegend(p, [][]legendEntry{phaseCol, profileCol, ruleCol})
}

// overviewPoints are the overview's data: per phase the intervals, per phase and profile the
// estimates, and how far they reach (0 always included).
type overviewPoints struct {
	bars       []ciPoints             // by phase index
	marks      map[[2]int]plotter.XYs // phase, profile → points
	yMin, yMax float64
}

// overviewPointsOf places every cell with a finite estimate in its target's slot: targets at
// whole x, each profile's phases side by side within 0.8 of it. An interval is drawn only
// when it holds its estimate.
func overviewPointsOf(rd *runData) overviewPoints {
	cells := map[string]*cell{}
	for _, c := range rd.cells {
		cells[cellKey(c.Target, c.Phase, c.Profile)] = c
	}
	nSlots := len(rd.profiles) * len(rd.phases)
	slot := 0.8 / float64(max(nSlots, 1))
	pts := overviewPoints{bars: make([]ciPoints, len(rd.phases)), marks: map[[2]int]plotter.XYs{}}
	for ti, td := range rd.targets {
		for pi, prof := range rd.profiles {
			for fi, ph := range rd.phases {
				c := cells[cellKey(td.info.Name, ph, prof)]
				if c == nil || c.Result == nil || !finite(c.Result.Leak.Slope) {
					continue
				}
				e := c.Result.Leak
				x := float64(ti) - 0.4 + (float64(pi*len(rd.phases)+fi)+0.5)*slot
				pts.marks[[2]int{fi, pi}] = append(pts.marks[[2]int{fi, pi}], plotter.XY{X: x, Y: e.Slope})
				pts.yMin, pts.yMax = min(pts.yMin, e.Slope), max(pts.yMax, e.Slope)
				if finite(e.Lo) && finite(e.Hi) && e.Lo <= e.Slope && e.Slope <= e.Hi {
					pts.bars[fi] = append(pts.bars[fi], struct{ x, y, lo, hi float64 }{x, e.Slope, e.Lo, e.Hi})
					pts.yMin, pts.yMax = min(pts.yMin, e.Lo), max(pts.yMax, e.Hi)
				}
			}
		}
	}
	return pts
}

// setOverviewAxes fits y to [yMin, yMax] with a margin and names a target at each whole x.
func setOverviewAxes(p *plot.Plot, rd *runData, yMin, yMax float64) {
	span := yMax - yMin
	if span <= 0 {
		span = 1
	}
	p.Y.Min, p.Y.Max = yMin-0.08*span, yMax+0.08*span
	p.X.Min, p.X.Max = -0.5, float64(len(rd.targets))-0.5
	ticks := make(plot.ConstantTicks, len(rd.targets))
	for ti, td := range rd.targets {
		ticks[ti] = plot.Tick{Value: float64(ti), Label: td.info.Name}
	}
	p.X.Tick.Marker = ticks
	p.X.Tick.Label.Font.Size = vg.Points(10)
	if len(rd.targets) > 8 {
		p.X.Tick.Label.Rotation = math.Pi / 6
		p.X.Tick.Label.XAlign = draw.XRight
	}
}

// addHLine draws a line across the whole x range at y; nil if gonum refuses it.
func addHLine(p *plot.Plot, y float64, c color.Color, dashes []vg.Length) *plotter.Line {
	l, err := plotter.NewLine(plotter.XYs{{X: p.X.Min, Y: y}, {X: p.X.Max, Y: y}})
	if err != nil {
		return nil
	}
	l.LineStyle.Color, l.LineStyle.Width, l.LineStyle.Dashes = c, vg.Points(1), dashes
	p.Add(l)
	return l
}

// addPhaseBars draws each phase's intervals in the phase's colour and returns the legend
// column of phases.
func addPhaseBars(p *plot.Plot, rd *runData, bars []ciPoints) []legendEntry {
	var col []legendEntry
	for fi, ph := range rd.phases {
		look := lookOf(ph, fi)
		if len(bars[fi]) > 0 {
			if eb, err := plotter.NewYErrorBars(bars[fi]); err == nil {
				eb.LineStyle.Color, eb.LineStyle.Width = look.color, vg.Points(1.2)
				eb.CapWidth = vg.Points(6)
				p.Add(eb)
			}
		}
		thumb, err := plotter.NewScatter(plotter.XYs{{}})
		if err == nil {
			thumb.GlyphStyle = draw.GlyphStyle{Color: look.color, Radius: vg.Points(4), Shape: draw.CircleGlyph{}}
			col = append(col, legendEntry{text: ph, thumb: thumb})
		}
	}
	return col
}

// addProfileMarks draws the estimates, shaped by profile and coloured by phase, and returns
// the legend column of profiles.
func addProfileMarks(p *plot.Plot, rd *runData, marks map[[2]int]plotter.XYs) []legendEntry {
	var col []legendEntry
	for pi, prof := range rd.profiles {
		shape := profileShapes[pi%len(profileShapes)]
		for fi, ph := range rd.phases {
			xys := marks[[2]int{fi, pi}]
			if len(xys) == 0 {
				continue
			}
			s, err := plotter.NewScatter(xys)
			if err != nil {
				continue
			}
			s.GlyphStyle = draw.GlyphStyle{Color: lookOf(ph, fi).color, Radius: vg.Points(4), Shape: shape}
			p.Add(s)
		}
		if thumb, err := plotter.NewScatter(plotter.XYs{{}}); err == nil {
			thumb.GlyphStyle = draw.GlyphStyle{Color: inkColor, Radius: vg.Points(4), Shape: shape}
			col = append(col, legendEntry{text: prof, thumb: thumb})
		}
	}
	return col
}

func orDash(s string) string {
	if s == "" {
		return dash
	}
	return s
}
