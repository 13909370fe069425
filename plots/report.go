package plots

import (
	"bytes"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/wfplab/wfplab/bench"
)

//go:embed report.html.tmpl
var reportTemplateText string

var reportTemplate = template.Must(template.New("report").Parse(reportTemplateText))

// maxEventsPerTarget keeps the report readable when something loops; the store keeps them all.
const maxEventsPerTarget = 300

type keyValue struct{ Key, Value string }

type htmlView struct {
	Title, Generated        string
	Header                  []keyValue
	Finished                bool
	Headline, HeadlineClass string
	Problems                []string
	CILabel                 string
	PerChainLabel           string // the bytes-per-chain interval's, e.g. "95% CI"
	Matrix                  matrix
	Rows                    []htmlRow
	OverviewImg             template.URL
	OverviewSVG             string
	Targets                 []htmlTarget
	RunEvents               []htmlEvent
	Method                  []string
	ScenarioText            string
	TputHeadline            string
	Tput                    []htmlTput
	TputCharts              []htmlTputChart
}

type htmlTputChart struct {
	Target string
	Img    template.URL
	SVG    string
}

type htmlRow struct {
	Target, Anchor, Phase, Profile, Netio string
	Leak, CI, Samples                     string
	BytesPerChain, PerChainCI, Threshold  string
	Chains, Packets                       string
	Verdict, VerdictClass                 string
	Expected, Met, MetClass, Note         string
	FirstOfTarget                         bool
}

type htmlTarget struct {
	Name, Anchor, Subtitle string
	Problems               []string
	Phases                 []htmlPhase
	ChartImg               template.URL
	ChartSVG               string
	Windows                []htmlWindow
	Tags                   []htmlTags
	Events                 []htmlEvent
	EventsMore             int
	Files                  []htmlFile // files the run kept for the target: console log, screenshots
}

type htmlFile struct{ Label, Href string }

type htmlPhase struct{ Phase, Build, Netio, Hotfix, Started, Ended, Duration string }

type htmlWindow struct{ Phase, Profile, Offset, Length, Packets, Rate, Errors string }

type htmlTags struct {
	Phase, Profile string
	Tags           []struct{ Tag, Growth string }
}

type htmlEvent struct {
	At, Phase, Kind, Message string
	Error                    bool
}

func pngURL(data []byte) template.URL {
	if len(data) == 0 {
		return ""
	}
	// Our own PNG bytes, base64-encoded: nothing in it can break out of the attribute.
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(data))
}

func renderHTML(rd *runData, charts chartSet) ([]byte, error) {
	_, confidence, _ := rd.verdictRule()
	if confidence == 0 {
		confidence = bench.DefaultConfidence
	}
	v := htmlView{
		Title:         rd.title(),
		Generated:     timeText(time.Now()),
		Finished:      !rd.run.Finished.IsZero(),
		Headline:      rd.headline(),
		HeadlineClass: "neutral",
		Problems:      rd.problems,
		CILabel:       fmt.Sprintf("%g%% CI (B/s)", 100*confidence),
		PerChainLabel: fmt.Sprintf("%g%% CI", 100*confidence),
		OverviewImg:   pngURL(charts.overviewPNG),
		OverviewSVG:   charts.overviewSVG,
		Method:        rd.method(),
		ScenarioText:  rd.run.ScenarioText,
		TputHeadline:  rd.tputHeadline(),
		Tput:          htmlTputRows(rd),
	}
	for _, td := range rd.targets {
		if png := charts.tputPNG[td.info.Name]; len(png) > 0 {
			v.TputCharts = append(v.TputCharts, htmlTputChart{Target: td.info.Name, Img: pngURL(png), SVG: charts.tputSVG[td.info.Name]})
		}
	}
	switch {
	case rd.counts.Expected == 0:
	case rd.allMet():
		v.HeadlineClass = "ok"
	default:
		v.HeadlineClass = "bad"
	}
	v.Header = rd.headerFields()

	anchors := map[string]bool{}
	anchorOf := map[string]string{}
	for _, td := range rd.targets {
		ht := htmlTargetOf(rd, td, charts, anchors)
		anchorOf[td.info.Name] = ht.Anchor
		v.Targets = append(v.Targets, ht)
	}
	v.Matrix = rd.matrix(anchorOf)
	prevTarget := ""
	for _, c := range rd.cells {
		row := htmlRowOf(c, c.Target != prevTarget)
		row.Threshold = rd.thresholdText(c.Result)
		row.Anchor = anchorOf[c.Target]
		v.Rows = append(v.Rows, row)
		prevTarget = c.Target
	}
	for _, e := range rd.events {
		v.RunEvents = append(v.RunEvents, htmlEventOf(e))
	}

	var buf bytes.Buffer
	if err := reportTemplate.Execute(&buf, v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (rd *runData) headerFields() []keyValue {
	r := rd.run
	if !rd.haveRun {
		return []keyValue{{"Run", "the run record could not be read from the store"}}
	}
	finished := timeText(r.Finished)
	duration := dash
	if r.Finished.IsZero() {
		finished = "not finished (killed, or still running)"
	} else if !r.Started.IsZero() {
		duration = durationText(r.Finished.Sub(r.Started))
	}
	seed := strconv.FormatInt(r.Seed, 10)
	return []keyValue{
		{"Run", orDash(r.ID)},
		{"Scenario", orDash(r.Scenario)},
		{"Seed", seed},
		{"Provider", orDash(r.Provider)},
		{"Started", timeText(r.Started)},
		{"Finished", finished},
		{"Duration", duration},
		{"wfplab", orDash(r.Tool)},
		{"Targets", strconv.Itoa(len(rd.targets))},
	}
}

func htmlRowOf(c *cell, first bool) htmlRow {
	row := htmlRow{
		Target: c.Target, Phase: c.Phase, Profile: c.Profile,
		Netio:         netioText(c.PhaseInfo),
		Leak:          leakText(c.Result),
		CI:            ciText(c.Result),
		Samples:       samplesText(c.Result),
		BytesPerChain: dash, Chains: dash, Packets: dash,
		Verdict:       verdictText(c.Result),
		Expected:      expectedText(c),
		Met:           metText(c),
		FirstOfTarget: first,
	}
	if r := c.Result; r != nil {
		row.BytesPerChain, row.Chains, row.Packets = num(r.BytesPerChain), num(r.ChainsPerSec), num(r.PacketsPerSec)
		if ci := perChainCIText(r); ci != dash {
			row.PerChainCI = ci
		}
		row.Note = r.Note
	}
	row.VerdictClass = verdictClass(c.Result)
	switch c.Status() {
	case "met":
		row.MetClass = "met-ok"
	case "failed":
		row.MetClass = "met-bad"
	case "missing", "incomplete":
		row.MetClass = "met-missing"
	}
	return row
}

func htmlTargetOf(rd *runData, td *targetData, charts chartSet, anchors map[string]bool) htmlTarget {
	t := htmlTarget{
		Name:     td.info.Name,
		Anchor:   uniqueName("target-"+safeFileName(td.info.Name), anchors),
		Problems: td.problems,
		ChartImg: pngURL(charts.targetPNG[td.info.Name]),
		ChartSVG: charts.targetSVG[td.info.Name],
	}
	var sub []string
	for _, s := range []string{td.info.Product, td.info.Arch} {
		if s != "" {
			sub = append(sub, s)
		}
	}
	if td.info.OS != "" && td.info.OS != td.info.Name {
		sub = append(sub, "catalog "+td.info.OS)
	}
	t.Subtitle = strings.Join(sub, ", ")

	for _, p := range td.phases {
		dur := dash
		if !p.Started.IsZero() && !p.Ended.IsZero() {
			dur = durationText(p.Ended.Sub(p.Started))
		}
		ended := timeText(p.Ended)
		if p.Ended.IsZero() {
			ended = "not ended"
		}
		t.Phases = append(t.Phases, htmlPhase{
			Phase: p.Phase, Build: orDash(p.OSBuild), Netio: orDash(p.Netio), Hotfix: orDash(p.Hotfix),
			Started: timeText(p.Started), Ended: ended, Duration: dur,
		})
	}

	for _, w := range td.windows {
		if w.Profile == warmupWindow || w.Profile == "" {
			continue
		}
		hw := htmlWindow{Phase: w.Phase, Profile: w.Profile, Offset: dash, Length: dash, Packets: "0", Rate: dash, Errors: "0"}
		if t0 := phaseStart(td, w.Phase); !t0.IsZero() && !w.Start.IsZero() {
			hw.Offset = fmt.Sprintf("%.1f s", w.Start.Sub(t0).Seconds())
		}
		var pkts, errs uint64
		for _, tp := range td.traffic {
			if tp.Phase == w.Phase && tp.Profile == w.Profile {
				pkts += tp.Packets
				errs += tp.Errors
			}
		}
		hw.Packets, hw.Errors = groupThousands(strconv.FormatUint(pkts, 10)), groupThousands(strconv.FormatUint(errs, 10))
		if w.End.IsZero() {
			hw.Length = "cut short"
		} else if d := w.End.Sub(w.Start); d > 0 {
			hw.Length = fmt.Sprintf("%.1f s", d.Seconds())
			hw.Rate = num(float64(pkts) / d.Seconds())
		}
		t.Windows = append(t.Windows, hw)
	}

	for _, c := range td.cells {
		if len(c.Tags) == 0 {
			continue
		}
		ht := htmlTags{Phase: c.Phase, Profile: c.Profile}
		for _, g := range c.Tags {
			ht.Tags = append(ht.Tags, struct{ Tag, Growth string }{g.Tag, bytesText(g.Bytes)})
		}
		t.Tags = append(t.Tags, ht)
	}

	events := td.events
	if len(events) > maxEventsPerTarget {
		t.EventsMore = len(events) - maxEventsPerTarget
		events = events[:maxEventsPerTarget]
	}
	for _, e := range events {
		t.Events = append(t.Events, htmlEventOf(e))
	}
	for _, e := range td.events {
		if e.Kind != bench.EventFile {
			continue
		}
		// Only files inside the run folder are linked: the report travels with the folder.
		if label, path, ok := bench.ParseFileMessage(e.Message); ok && filepath.IsLocal(filepath.FromSlash(path)) {
			t.Files = append(t.Files, htmlFile{Label: label, Href: path})
		}
	}
	return t
}

func htmlEventOf(e bench.Event) htmlEvent {
	return htmlEvent{At: timeText(e.At), Phase: orDash(e.Phase), Kind: orDash(e.Kind), Message: e.Message,
		Error: e.Kind == "error"}
}

// method explains, for a reader who was not there, how each number came about.
func (rd *runData) method() []string {
	threshold, confidence, ok := rd.verdictRule()
	if confidence == 0 {
		confidence = bench.DefaultConfidence
	}
	settle := "the first seconds of each window (the scenario's settle time)"
	if rd.scenario != nil && rd.scenario.Timing.Settle > 0 {
		settle = "the first " + rd.scenario.Timing.Settle.String() + " of each window"
	}
	thresholdText := "the scenario's threshold (not recorded with this run; see the scenario text)"
	if ok {
		thresholdText = fmt.Sprintf("the threshold of %s bytes/s", num(threshold))
	}
	if perChain, _ := rd.perChainRule(); perChain {
		sc := rd.scenario
		return []string{
			"Each cell is one target × phase × traffic profile. Within its window the traffic runs in blocks, on for " + sc.Timing.Block.String() +
				" and off for as long, in turn, so that what the traffic does to the pool and what the pool does by itself can be told apart.",
			"The guest's nonpaged pool bytes, leaving out " + settle + ", are fitted against the driver's cumulative count of blocked " +
				"multi-NBL chains (all blocked chains for single-nbl) and against time: the time term takes the pool's own drift, the chain " +
				"term is the leak in bytes per chain. Steps that stand out in the differenced pool get a term each. The fit is generalized " +
				"least squares under the pool's noise taken as autocorrelated (AR(1)) plus a random walk, its two parameters fitted by " +
				"restricted maximum likelihood to all of the phase's windows together (the warm-up too); the " + fmt.Sprintf("%g%%", 100*confidence) +
				" interval is Student's t with n − k degrees of freedom (n samples, k terms) on the window's own standard error.",
			fmt.Sprintf("A cell is LEAK when the whole bytes-per-chain interval lies above the threshold of %s B/chain, CLEAN when it lies "+
				"below it, and INCONCLUSIVE otherwise, or when its window holds fewer than %d samples, or when the driver did not block "+
				"the chains the traffic should make. On an unpatched netio.sys a blocked multi-NBL chain leaks one NET_BUFFER_LIST, "+
				"352 B (x86) or 576 B (x64).", exact(sc.Verdict.ThresholdPerChain), bench.MinSamples),
			"The leak rate (B/s) and its interval are bytes per chain times the chains blocked per second of traffic: the figure to " +
				"read, while the verdict is judged in bytes per chain. Packets/s is the traffic the generator achieved in the window.",
		}
	}
	return []string{
		"Each cell is one target × phase × traffic profile. Its leak rate is the slope of the guest's total nonpaged pool bytes " +
			"against time, fitted by ordinary least squares over the profile's traffic window, leaving out " + settle + ".",
		"Pool samples are not independent: background pool activity wanders, so neighbouring residuals are alike and the plain " +
			"OLS interval would be too narrow. The interval is widened using the lag-1 autocorrelation r of the residuals: the " +
			"effective sample size is n_eff = n(1−r)/(1+r), the slope's standard error is scaled by √(n/n_eff), and Student's t is " +
			fmt.Sprintf("taken with n_eff − 2 degrees of freedom, for a %g%% confidence interval. The table shows n and n_eff per cell.", 100*confidence),
		"A cell is LEAK when the whole interval lies above " + thresholdText + ", CLEAN when the whole interval lies below it, and " +
			fmt.Sprintf("INCONCLUSIVE otherwise, or when its window holds fewer than %d samples.", bench.MinSamples),
		"Bytes per chain is the leak rate divided by the rate of multi-NBL chains the test driver blocked; on an unpatched netio.sys " +
			"it should be close to the size of one NET_BUFFER_LIST (the last NBL of each chain is never freed). Packets/s is the " +
			"traffic the generator achieved in the window.",
	}
}
