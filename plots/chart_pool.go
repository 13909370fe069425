package plots

import (
	"fmt"
	"image/color"
	"sort"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

const mib = 1 << 20

// poolChart is one target's nonpaged pool over time, every phase on the same axes (seconds
// since that phase started), traffic windows shaded and named.
func poolChart(rd *runData, td *targetData) drawing {
	p := newPlot(poolTitle(rd, td), "seconds since phase start", "nonpaged pool (MiB)", true)
	series, ext := poolSeries(rd, td)
	if !ext.haveY {
		return drawWithLegend(emptyChart(p.Title.Text, "no pool samples in the store for this target"), nil)
	}

	span := ext.yMax - ext.yMin
	if span < 0.05 {
		span = 0.05 // a flat line still gets a readable axis
	}
	p.X.Min, p.X.Max = 0, max(ext.xMax, 1)
	p.Y.Min, p.Y.Max = ext.yMin-0.06*span, ext.yMax+0.18*span
	labelY := ext.yMax + 0.10*span

	// Bands first, so lines draw over them.
	tol := 0.01 * p.X.Max
	var windowCol []legendEntry
	if thumb := addBands(p, mergeBands(series, tol), labelY, tol); thumb != nil {
		windowCol = append(windowCol, legendEntry{text: "traffic window (profile named at the top)", thumb: thumb})
	}
	phaseCol := addPhaseLines(p, rd, td, series)
	return drawWithLegend(p, [][]legendEntry{phaseCol, windowCol})
}

// phaseSeries is one phase of a pool chart: its samples and its traffic windows, in seconds
// since the phase started.
type phaseSeries struct {
	name    string
	look    phaseLook
	xys     plotter.XYs
	windows [][2]float64
	labels  []string
}

// extent is how far a pool chart's data reaches; haveY is false without a single sample.
type extent struct {
	xMax, yMin, yMax float64
	haveY            bool
}

// poolSeries lays out every phase of the run that has samples or windows for td.
func poolSeries(rd *runData, td *targetData) ([]phaseSeries, extent) {
	var series []phaseSeries
	var ext extent
	for i, ph := range rd.phases {
		s := phaseSeries{name: ph, look: lookOf(ph, i)}
		t0 := phaseStart(td, ph)
		n := 0
		for _, pt := range td.pool {
			if pt.Phase == ph {
				n++
			}
		}
		s.xys = make(plotter.XYs, 0, n)
		for _, pt := range td.pool {
			if pt.Phase != ph {
				continue
			}
			x, y := pt.At.Sub(t0).Seconds(), float64(pt.NPBytes)/mib
			s.xys = append(s.xys, plotter.XY{X: x, Y: y})
			ext.xMax = max(ext.xMax, x)
			if !ext.haveY {
				ext.yMin, ext.yMax, ext.haveY = y, y, true
			}
			ext.yMin, ext.yMax = min(ext.yMin, y), max(ext.yMax, y)
		}
		lastX := 0.0
		if n := len(s.xys); n > 0 {
			lastX = s.xys[n-1].X
		}
		for _, w := range td.windows {
			if w.Phase != ph || w.Profile == warmupWindow || w.Profile == "" || w.Start.IsZero() {
				continue
			}
			x0 := w.Start.Sub(t0).Seconds()
			x1 := lastX // a window cut short runs to the last sample
			if !w.End.IsZero() {
				x1 = w.End.Sub(t0).Seconds()
			}
			if x1 <= x0 {
				continue
			}
			s.windows = append(s.windows, [2]float64{x0, x1})
			s.labels = append(s.labels, w.Profile)
			ext.xMax = max(ext.xMax, x1)
		}
		if len(s.xys) > 0 || len(s.windows) > 0 {
			series = append(series, s)
		}
	}
	return series, ext
}

// band is one shaded traffic window of a pool chart.
type band struct {
	x0, x1  float64
	profile string
}

// mergeBands gives the windows of every phase as bands in x order. Phases usually share
// window offsets: a window within tol of the same place in another phase is drawn once.
func mergeBands(series []phaseSeries, tol float64) []band {
	var bands []band
	for _, s := range series {
		for i, w := range s.windows {
			dup := false
			for j, b := range bands {
				if b.profile == s.labels[i] && abs(b.x0-w[0]) < tol {
					dup = true
					bands[j].x1 = max(b.x1, w[1]) // a window cut short in one phase
				}
			}
			if !dup {
				bands = append(bands, band{w[0], w[1], s.labels[i]})
			}
		}
	}
	sort.SliceStable(bands, func(i, j int) bool { return bands[i].x0 < bands[j].x0 })
	return bands
}

// addBands shades each band over the whole height, marks its edges with dashed lines and names
// its profile at labelY. It returns a band to show in the legend, nil when there is none.
func addBands(p *plot.Plot, bands []band, labelY, tol float64) *plotter.Polygon {
	var labelXYs plotter.XYs
	var labelTexts []string
	var edges []float64
	var legendBand *plotter.Polygon
	for i, b := range bands {
		poly, err := plotter.NewPolygon(plotter.XYs{
			{X: b.x0, Y: p.Y.Min}, {X: b.x1, Y: p.Y.Min}, {X: b.x1, Y: p.Y.Max}, {X: b.x0, Y: p.Y.Max},
		})
		if err != nil {
			continue
		}
		// Neighbouring windows alternate in shade so each one reads as its own.
		poly.Color = bandColor(i)
		poly.LineStyle.Width = 0
		p.Add(poly)
		if legendBand == nil {
			legendBand = poly
		}
		labelXYs = append(labelXYs, plotter.XY{X: (b.x0 + b.x1) / 2, Y: labelY})
		labelTexts = append(labelTexts, b.profile)
		for _, x := range []float64{b.x0, b.x1} {
			seen := false
			for _, e := range edges {
				seen = seen || abs(e-x) < tol/4
			}
			if !seen {
				edges = append(edges, x)
			}
		}
	}
	for _, x := range edges {
		if l, err := plotter.NewLine(plotter.XYs{{X: x, Y: p.Y.Min}, {X: x, Y: p.Y.Max}}); err == nil {
			l.LineStyle.Color, l.LineStyle.Width = color.Gray{Y: 150}, vg.Points(0.6)
			l.LineStyle.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
			p.Add(l)
		}
	}
	if len(labelXYs) > 0 {
		if lbl, err := plotter.NewLabels(plotter.XYLabels{XYs: labelXYs, Labels: labelTexts}); err == nil {
			for i := range lbl.TextStyle {
				lbl.TextStyle[i].XAlign = draw.XCenter
				lbl.TextStyle[i].YAlign = draw.YCenter
				lbl.TextStyle[i].Font.Size = vg.Points(9)
				lbl.TextStyle[i].Color = inkColor
			}
			p.Add(lbl)
		}
	}
	return legendBand
}

// addPhaseLines draws each phase's samples and returns the legend column of phases, naming
// the netio.sys of each and the phases that have nothing to draw.
func addPhaseLines(p *plot.Plot, rd *runData, td *targetData, series []phaseSeries) []legendEntry {
	var col []legendEntry
	for _, s := range series {
		text := s.name + ": " + phaseNetio(td, s.name)
		if ph, ok := td.phase(s.name); ok && ph.Ended.IsZero() {
			text += ", cut short"
		}
		if len(s.xys) == 0 {
			col = append(col, legendEntry{text: text + " (no samples)"})
			continue
		}
		line, err := plotter.NewLine(thinned(s.xys, maxLinePoints))
		if err != nil {
			col = append(col, legendEntry{text: text + " (samples not drawable: " + err.Error() + ")"})
			continue
		}
		line.LineStyle.Color = s.look.color
		line.LineStyle.Width = vg.Points(1.6)
		line.LineStyle.Dashes = s.look.dashes
		p.Add(line)
		col = append(col, legendEntry{text: text, thumb: line})
	}
	for _, ph := range rd.phases {
		drawn := false
		for _, s := range series {
			drawn = drawn || s.name == ph
		}
		if _, ok := td.phase(ph); !ok && !drawn {
			col = append(col, legendEntry{text: ph + ": not run"})
		}
	}
	return col
}

func bandColor(i int) color.Color {
	if i%2 == 0 {
		return color.NRGBA{R: 0x70, G: 0x80, B: 0xa0, A: 0x1c}
	}
	return color.NRGBA{R: 0x70, G: 0x80, B: 0xa0, A: 0x38}
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}

// phaseStart is where a phase's time axis begins: its recorded start, or its first record.
func phaseStart(td *targetData, phase string) time.Time {
	if p, ok := td.phase(phase); ok && !p.Started.IsZero() {
		return p.Started
	}
	var first time.Time
	for _, pt := range td.pool {
		if pt.Phase == phase && (first.IsZero() || pt.At.Before(first)) {
			first = pt.At
		}
	}
	for _, w := range td.windows {
		if w.Phase == phase && !w.Start.IsZero() && (first.IsZero() || w.Start.Before(first)) {
			first = w.Start
		}
	}
	return first
}

func phaseNetio(td *targetData, phase string) string {
	p, ok := td.phase(phase)
	if !ok || p.Netio == "" {
		return "netio.sys unknown"
	}
	s := "netio.sys " + p.Netio
	if p.Hotfix != "" {
		s += " (" + p.Hotfix + ")"
	}
	return s
}

func poolTitle(rd *runData, td *targetData) string {
	head := td.info.Name
	var what []string
	if td.info.Product != "" {
		what = append(what, td.info.Product)
	}
	if td.info.Arch != "" {
		what = append(what, td.info.Arch)
	}
	if len(what) > 0 {
		head += " — " + strings.Join(what, " ")
	}
	var phases []string
	for _, ph := range rd.phases {
		if _, ok := td.phase(ph); !ok {
			phases = append(phases, ph+" not run")
			continue
		}
		phases = append(phases, fmt.Sprintf("%s %s", ph, strings.TrimPrefix(phaseNetio(td, ph), "netio.sys ")))
	}
	if len(phases) == 0 {
		return head
	}
	return head + "\nnetio.sys " + strings.Join(phases, "  →  ")
}
