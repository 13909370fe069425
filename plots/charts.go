package plots

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/go-multierror"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Chart size: PNGs are 960 × 528 pixels.
const (
	chartWidth  = 10 * vg.Inch
	chartHeight = 5.5 * vg.Inch
	chartDPI    = 96
)

// maxLinePoints bounds each drawn line; longer series are thinned keeping each bucket's
// extremes, so rendering stays fast and spikes stay visible.
const maxLinePoints = 2000

var (
	white     = color.White
	gridColor = color.Gray{Y: 225}
	inkColor  = color.Gray{Y: 60}
)

// phaseLook is how a phase is drawn, the same in every chart.
type phaseLook struct {
	color  color.RGBA
	dashes []vg.Length
}

func lookOf(phase string, index int) phaseLook {
	switch phase {
	case "before":
		return phaseLook{color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, nil}
	case "after":
		return phaseLook{color.RGBA{R: 0xe0, G: 0x6c, B: 0x00, A: 0xff}, []vg.Length{vg.Points(6), vg.Points(3)}}
	}
	others := []phaseLook{
		{color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}, []vg.Length{vg.Points(2), vg.Points(2)}},
		{color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff}, []vg.Length{vg.Points(8), vg.Points(2), vg.Points(2), vg.Points(2)}},
		{color.RGBA{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff}, []vg.Length{vg.Points(1), vg.Points(3)}},
	}
	return others[index%len(others)]
}

// chartSet is what renderCharts produced: files on disk and PNG bytes for embedding.
type chartSet struct {
	paths       []string
	overviewPNG []byte
	overviewSVG string // path relative to the results folder
	targetPNG   map[string][]byte
	targetSVG   map[string]string // relative paths
	tputPNG     map[string][]byte // throughput chart per target, when the run has throughput
	tputSVG     map[string]string
}

type chartJob struct {
	tput   bool   // a throughput chart (of target)
	target string // "" for the overview
	base   string // file name without extension
	build  func() drawing
}

// drawing draws a whole chart onto a canvas of chartWidth × chartHeight.
type drawing func(dc draw.Canvas)

// renderCharts draws every chart in parallel (rendering dominates the time a report takes).
func renderCharts(rd *runData, outDir string) (chartSet, error) {
	set := chartSet{targetPNG: map[string][]byte{}, targetSVG: map[string]string{}, tputPNG: map[string][]byte{}, tputSVG: map[string]string{}}
	used := map[string]bool{"overview": true}
	jobs := []chartJob{{base: "overview", build: func() drawing { return overviewChart(rd) }}}
	for _, td := range rd.targets {
		base := uniqueName("pool-"+safeFileName(td.info.Name), used)
		jobs = append(jobs, chartJob{target: td.info.Name, base: base, build: func() drawing { return poolChart(rd, td) }})
	}
	if len(rd.tputJudged()) > 0 {
		for _, td := range rd.targets {
			base := uniqueName("tput-"+safeFileName(td.info.Name), used)
			jobs = append(jobs, chartJob{tput: true, target: td.info.Name, base: base, build: func() drawing { return tputChart(rd, td.info.Name) }})
		}
	}

	type output struct {
		png, svg []byte
		err      error
	}
	outs := make([]output, len(jobs))
	workers := runtime.GOMAXPROCS(0)
	if workers > len(jobs) {
		workers = len(jobs)
	}
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				outs[i].png, outs[i].svg, outs[i].err = renderJob(jobs[i])
			}
		}()
	}
	for i := range jobs {
		next <- i
	}
	close(next)
	wg.Wait()

	var errs *multierror.Error
	for i, job := range jobs {
		o := outs[i]
		what := "the overview chart"
		if job.target != "" {
			what = fmt.Sprintf("the pool chart of target %q", job.target)
		}
		if job.tput {
			what = fmt.Sprintf("the throughput chart of target %q", job.target)
		}
		if o.err != nil {
			errs = multierror.Append(errs, fmt.Errorf("plots: rendering %s: %w", what, o.err))
			continue
		}
		pngPath := filepath.Join(outDir, job.base+".png")
		svgPath := filepath.Join(outDir, job.base+".svg")
		if err := writeFileAtomic(pngPath, o.png); err != nil {
			errs = multierror.Append(errs, err)
			continue
		}
		set.paths = append(set.paths, pngPath)
		svgRel := ""
		if err := writeFileAtomic(svgPath, o.svg); err != nil {
			errs = multierror.Append(errs, err)
		} else {
			set.paths = append(set.paths, svgPath)
			svgRel = ChartsDir + "/" + job.base + ".svg"
		}
		switch {
		case job.tput:
			set.tputPNG[job.target], set.tputSVG[job.target] = o.png, svgRel
		case job.target == "":
			set.overviewPNG, set.overviewSVG = o.png, svgRel
		default:
			set.targetPNG[job.target], set.targetSVG[job.target] = o.png, svgRel
		}
	}
	return set, errs.ErrorOrNil()
}

// renderJob draws one chart as PNG and SVG. gonum/plot panics on some bad input (odd fonts,
// degenerate ranges); that becomes an error here, never a crash of the run.
func renderJob(job chartJob) (pngData, svgData []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("gonum/plot failed: %v", r)
		}
	}()
	d := job.build()
	img := vgimg.NewWith(vgimg.UseWH(chartWidth, chartHeight), vgimg.UseDPI(chartDPI), vgimg.UseBackgroundColor(white))
	d(draw.New(img))
	var pb bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&pb); err != nil {
		return nil, nil, fmt.Errorf("encoding PNG: %w", err)
	}
	svg := vgsvg.New(chartWidth, chartHeight)
	d(draw.New(svg))
	var sb bytes.Buffer
	if _, err := svg.WriteTo(&sb); err != nil {
		return nil, nil, fmt.Errorf("encoding SVG: %w", err)
	}
	return pb.Bytes(), sb.Bytes(), nil
}

func safeFileName(name string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	s := strings.Trim(b.String(), ".")
	if s == "" {
		s = "target"
	}
	return s
}

func uniqueName(base string, used map[string]bool) string {
	name := base
	for i := 2; used[strings.ToLower(name)]; i++ {
		name = fmt.Sprintf("%s-%d", base, i)
	}
	used[strings.ToLower(name)] = true
	return name
}

// legendEntry is one line of a legend column.
type legendEntry struct {
	text  string
	thumb plot.Thumbnailer
}

func newLegend(size vg.Length) plot.Legend {
	l := plot.NewLegend()
	l.TextStyle.Font = font.From(plot.DefaultFont, size)
	l.Top, l.Left = true, true
	l.Padding = vg.Points(2)
	return l
}

// legendStripHeight fits the tallest column under the plot.
func legendStripHeight(cols [][]legendEntry) vg.Length {
	rows := 0
	for _, col := range cols {
		rows = max(rows, len(col))
	}
	if rows == 0 {
		return 0
	}
	l := newLegend(legendFontSize)
	h := l.TextStyle.FontExtents().Height
	return vg.Length(rows)*(h+l.Padding) + vg.Points(10)
}

const legendFontSize vg.Length = 10 // points

// drawWithLegend draws p above a strip of legend columns laid out left to right. Legends drawn
// inside the data area would hide the very lines the reader came for.
func drawWithLegend(p *plot.Plot, cols [][]legendEntry) drawing {
	return func(dc draw.Canvas) {
		dc.SetColor(white)
		dc.Fill(dc.Rectangle.Path())
		strip := legendStripHeight(cols)
		p.Draw(draw.Crop(dc, 0, 0, strip, 0))
		x := dc.Min.X + vg.Points(48)
		for _, col := range cols {
			if len(col) == 0 {
				continue
			}
			l := newLegend(legendFontSize)
			width := vg.Length(0)
			for _, e := range col {
				if e.thumb != nil {
					l.Add(e.text, e.thumb)
				} else {
					l.Add(e.text)
				}
				width = max(width, l.TextStyle.Width(e.text))
			}
			width += l.ThumbnailWidth + vg.Points(8)
			area := dc
			area.Min = vg.Point{X: x, Y: dc.Min.Y + vg.Points(4)}
			area.Max = vg.Point{X: min(x+width, dc.Max.X), Y: dc.Min.Y + strip}
			l.Draw(area)
			x += width + vg.Points(28)
		}
	}
}

// thinned keeps at most maxPts points: per bucket the lowest and the highest, in order.
func thinned(xys plotter.XYs, maxPts int) plotter.XYs {
	if len(xys) <= maxPts || maxPts < 4 {
		return xys
	}
	buckets := maxPts / 2
	out := make(plotter.XYs, 0, maxPts)
	for b := range buckets {
		lo, hi := b*len(xys)/buckets, (b+1)*len(xys)/buckets
		if lo >= hi {
			continue
		}
		iMin, iMax := lo, lo
		for i := lo; i < hi; i++ {
			if xys[i].Y < xys[iMin].Y {
				iMin = i
			}
			if xys[i].Y > xys[iMax].Y {
				iMax = i
			}
		}
		first, second := min(iMin, iMax), max(iMin, iMax)
		out = append(out, xys[first])
		if second != first {
			out = append(out, xys[second])
		}
	}
	return out
}

// emptyChart is a titled chart that says why there is nothing to draw.
func emptyChart(title, msg string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(13)
	p.HideAxes()
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1
	lbl, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{{X: 0.5, Y: 0.5}}, Labels: []string{msg}})
	if err != nil {
		return p
	}
	lbl.TextStyle[0].XAlign = draw.XCenter
	lbl.TextStyle[0].YAlign = draw.YCenter
	lbl.TextStyle[0].Font.Size = vg.Points(13)
	lbl.TextStyle[0].Color = inkColor
	p.Add(lbl)
	return p
}

func newPlot(title, xLabel, yLabel string, verticalGrid bool) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(13)
	p.Title.Padding = vg.Points(8)
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.X.Label.TextStyle.Font.Size = vg.Points(11)
	p.Y.Label.TextStyle.Font.Size = vg.Points(11)
	g := plotter.NewGrid()
	g.Vertical.Color, g.Horizontal.Color = gridColor, gridColor
	g.Vertical.Width, g.Horizontal.Width = vg.Points(0.5), vg.Points(0.5)
	if !verticalGrid {
		g.Vertical.Color = nil
	}
	p.Add(g)
	p.X.Tick.Marker = niceTicks{n: 8}
	p.Y.Tick.Marker = niceTicks{n: 6}
	return p
}

// niceTicks labels an axis with about n round values, thousands grouped ("25,000" rather
// than gonum's "25000.00").
type niceTicks struct{ n int }

func (t niceTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(hi > lo) || !finite(lo) || !finite(hi) {
		return []plot.Tick{{Value: lo, Label: num(lo)}}
	}
	raw := (hi - lo) / float64(max(t.n, 2))
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := 10 * mag
	for _, m := range []float64{1, 2, 2.5, 5} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	decimals := 0
	if step < 1 {
		decimals = int(math.Ceil(-math.Log10(step) - 1e-9))
		if s := step * math.Pow(10, float64(decimals)); math.Abs(s-math.Round(s)) > 1e-6 {
			decimals++ // 0.25 needs two
		}
	}
	var ticks []plot.Tick
	first := math.Ceil(lo/step) * step
	for i := 0; i < 1000; i++ { // bounded: (hi-lo)/step is about n
		v := first + float64(i)*step
		if v > hi+step*1e-9 {
			break
		}
		if math.Abs(v) < step*1e-9 {
			v = 0
		}
		ticks = append(ticks, plot.Tick{Value: v, Label: groupThousands(strconv.FormatFloat(v, 'f', decimals, 64))})
		if minor := v + step/2; minor <= hi {
			ticks = append(ticks, plot.Tick{Value: minor})
		}
	}
	if minor := first - step/2; minor >= lo {
		ticks = append(ticks, plot.Tick{Value: minor})
	}
	return ticks
}
