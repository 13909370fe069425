package plots

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/wfplab/wfplab/bench"
	"github.com/wfplab/wfplab/scenarios"
)

// warmupWindow is the window name bench gives the quiet stretch before the first profile.
const warmupWindow = "warmup"

// runData is one run as the outputs need it: every read done once, cells laid out in the
// target × phase × profile grid, and what is missing said in plain words.
type runData struct {
	cfg      config
	run      bench.RunInfo
	haveRun  bool
	scenario *scenarios.Scenario // parsed from the run's stored scenario text; nil if none
	events   []bench.Event       // run-wide events (no target)
	targets  []*targetData
	phases   []string // before, after, then any others in order of appearance
	profiles []string // in the order the run drove them
	cells    []*cell  // targets × phases × profiles, in that order
	problems []string // incomplete run, missing phases, read failures
	counts   counts
	tput     []bench.TputWindow     // throughput windows, when the store has them
	tputCmp  []bench.TputComparison // before vs after, from tput and the scenario

	scenarioErr string
}

type counts struct {
	Cells    int // in the grid
	Results  int // cells with a result
	Expected int // cells with an expectation
	Met      int // expectations met
	Failed   int // expectations with a result that did not meet them
	Missing  int // expectations without a result
	// Incomplete counts expectations whose window did not run to its end: no verdict.
	Incomplete int
}

type targetData struct {
	info     bench.TargetInfo
	phases   []bench.PhaseInfo // in run phase order
	windows  []bench.Window
	pool     []bench.PoolPoint
	tags     []bench.TagPoint
	events   []bench.Event
	traffic  []bench.TrafficPoint
	cells    []*cell
	problems []string
}

func (t *targetData) phase(name string) (bench.PhaseInfo, bool) {
	for _, p := range t.phases {
		if p.Phase == name {
			return p, true
		}
	}
	return bench.PhaseInfo{}, false
}

// cell is one row of the verdict table.
type cell struct {
	Target, Phase, Profile string
	Result                 *bench.CellResult
	Expected               bench.Verdict // "" when nothing is expected
	Met                    bool
	PhaseInfo              *bench.PhaseInfo
	Window                 *bench.Window
	Tags                   []bench.TagGrowth // from the result, or from the raw tag samples
	Packets                uint64            // generated in the window, from the traffic records
	TrafficErrors          uint64
}

func (c *cell) HasExpectation() bool { return c.Expected != "" }

// Status is one word for the cell's standing against its expectation.
func (c *cell) Status() string {
	switch {
	case !c.HasExpectation():
		return "none"
	case c.Result == nil:
		return "missing"
	case c.Result.Verdict == bench.Incomplete:
		return "incomplete"
	case c.Met:
		return "met"
	default:
		return "failed"
	}
}

func cellKey(target, phase, profile string) string { return target + "\x00" + phase + "\x00" + profile }

// load reads everything once. Read failures are kept as problems and returned together; what
// was read is still laid out.
func load(src Source, cfg config) (*runData, error) {
	rd := &runData{cfg: cfg}
	var errs *multierror.Error
	fail := func(err error) {
		errs = multierror.Append(errs, err)
		rd.problems = append(rd.problems, err.Error())
	}

	run, err := src.Run()
	if err != nil {
		fail(fmt.Errorf("plots: reading the run record from the store: %w", err))
	} else {
		rd.run, rd.haveRun = run, true
		rd.parseScenario()
	}
	infos, err := src.Targets()
	if err != nil {
		fail(fmt.Errorf("plots: reading the target list from the store: %w", err))
	}
	results, err := src.Results()
	if err != nil {
		fail(fmt.Errorf("plots: reading cell results from the store: %w", err))
	}
	rd.collectTargets(infos, results)
	for _, td := range rd.targets {
		td.read(src, fail)
	}
	rd.readRunEvents(src, fail)
	rd.layout(results)
	rd.readMissingTags(src, fail)
	rd.readTput(src, fail)
	return rd, errs.ErrorOrNil()
}

// collectTargets lists every target once: in the scenario's order (targets run side by side,
// so the store's order is the order they happened to start), then those only the store, the
// results or the expectations name.
func (rd *runData) collectTargets(infos []bench.TargetInfo, results []bench.CellResult) {
	byName := map[string]bool{}
	add := func(info bench.TargetInfo) {
		if !byName[info.Name] {
			byName[info.Name] = true
			rd.targets = append(rd.targets, &targetData{info: info})
		}
	}
	if rd.scenario != nil {
		stored := map[string]bench.TargetInfo{}
		for _, info := range infos {
			stored[info.Name] = info
		}
		for _, t := range rd.scenario.Targets {
			if info, ok := stored[t.Name]; ok {
				add(info)
			} else {
				add(bench.TargetInfo{Name: t.Name, OS: t.OS})
			}
		}
	}
	for _, info := range infos {
		add(info)
	}
	for _, r := range results {
		add(bench.TargetInfo{Name: r.Target})
	}
	for _, e := range rd.cfg.expected {
		add(bench.TargetInfo{Name: e.Target})
	}
}

// read reads the target's records (all but its tag samples), each in time order; a failed
// read goes to fail and to the target's problems.
func (t *targetData) read(src Source, fail func(error)) {
	var err error
	readErr := func(what string, err error) {
		err = fmt.Errorf("plots: reading %s of target %q from the store: %w", what, t.info.Name, err)
		fail(err)
		t.problems = append(t.problems, err.Error())
	}
	name := t.info.Name
	if t.phases, err = src.Phases(name); err != nil {
		readErr("phases", err)
	}
	if t.windows, err = src.Windows(name); err != nil {
		readErr("traffic windows", err)
	}
	if t.pool, err = src.Pool(name); err != nil {
		readErr("pool samples", err)
	}
	if t.events, err = src.Events(name); err != nil {
		readErr("events", err)
	}
	if t.traffic, err = src.Traffic(name); err != nil {
		readErr("traffic counters", err)
	}
	sortByTime(t)
}

// readRunEvents keeps the events that belong to no target, in time order.
func (rd *runData) readRunEvents(src Source, fail func(error)) {
	all, err := src.Events("")
	if err != nil {
		fail(fmt.Errorf("plots: reading run-wide events from the store: %w", err))
		return
	}
	for _, e := range all {
		if e.Target == "" {
			rd.events = append(rd.events, e)
		}
	}
	sort.SliceStable(rd.events, func(i, j int) bool { return rd.events[i].At.Before(rd.events[j].At) })
}

// readMissingTags reads tag samples where a cell has a window but no result, and measures
// those cells' tag growth from them. Tag samples are the largest read (one row per tag per
// sample); only cells the analysis never reached need them.
func (rd *runData) readMissingTags(src Source, fail func(error)) {
	for _, td := range rd.targets {
		need := false
		for _, c := range td.cells {
			need = need || (c.Window != nil && c.Result == nil)
		}
		if !need {
			continue
		}
		tags, err := src.Tags(td.info.Name)
		if err != nil {
			err = fmt.Errorf("plots: reading pool tag samples of target %q from the store: %w", td.info.Name, err)
			fail(err)
			td.problems = append(td.problems, err.Error())
			continue
		}
		td.tags = tags
		sort.SliceStable(td.tags, func(i, j int) bool { return td.tags[i].At.Before(td.tags[j].At) })
		for _, c := range td.cells {
			c.Tags = td.tagGrowth(c)
		}
	}
}

// parseScenario reads the scenario stored with the run: it knows every cell's expectation,
// including cells the run never reached, and the verdict rule.
func (rd *runData) parseScenario() {
	if rd.run.ScenarioText == "" {
		return
	}
	sc, err := scenarios.Parse("scenario of run "+rd.run.ID, []byte(rd.run.ScenarioText))
	if err != nil {
		rd.scenarioErr = fmt.Sprintf("The scenario text stored with the run does not parse (%v); expectations of cells without a result are unknown.", err)
		return
	}
	rd.scenario = sc
}

// verdictRule is the threshold and confidence in force: given to Write, else the scenario's.
func (rd *runData) verdictRule() (thresholdBps, confidence float64, ok bool) {
	switch {
	case rd.cfg.haveRule:
		thresholdBps, confidence, ok = rd.cfg.thresholdBps, rd.cfg.confidence, true
	case rd.scenario != nil:
		thresholdBps, confidence, ok = rd.scenario.Verdict.ThresholdBps, rd.scenario.Verdict.Confidence, true
	}
	if ok && !(confidence > 0 && confidence < 1) {
		confidence = bench.DefaultConfidence
	}
	return thresholdBps, confidence, ok
}

// perChainRule says whether the cells were judged in bytes per chain (the scenario has
// traffic blocks) or in bytes per second; known is false without the scenario.
func (rd *runData) perChainRule() (perChain, known bool) {
	if rd.cfg.haveRule || rd.scenario == nil {
		return false, rd.cfg.haveRule
	}
	return rd.scenario.Timing.Block > 0, true
}

// thresholdText is the threshold r's verdict was judged against, with its unit (JudgedAt);
// a rule given to Write judges results without a bytes-per-chain fit in bytes per second.
func (rd *runData) thresholdText(r *bench.CellResult) string {
	if r == nil {
		return dash
	}
	if thr, _, ok := rd.verdictRule(); ok && rd.cfg.haveRule && r.Dose == nil {
		return exact(thr) + " B/s"
	}
	return JudgedAt(r, rd.scenario)
}

// JudgedAt is the threshold r's verdict was judged against under sc, with its unit: bytes
// per chain for a result with a bytes-per-chain fit or under a scenario with traffic
// blocks, bytes per second otherwise; a dash without the scenario.
func JudgedAt(r *bench.CellResult, sc *scenarios.Scenario) string {
	switch {
	case r == nil || sc == nil:
		return dash
	case r.Dose != nil || sc.Timing.Block > 0:
		if sc.Verdict.ThresholdPerChain > 0 {
			return exact(sc.Verdict.ThresholdPerChain) + " B/chain"
		}
		return dash
	}
	return exact(sc.Verdict.ThresholdBps) + " B/s"
}

func sortByTime(td *targetData) {
	sort.SliceStable(td.windows, func(i, j int) bool { return td.windows[i].Start.Before(td.windows[j].Start) })
	// The store may share its samples with other readers: sorted on a copy, and only when
	// they are out of order (they come in arrival order, which is time order).
	byAt := func(i, j int) bool { return td.pool[i].At.Before(td.pool[j].At) }
	if !sort.SliceIsSorted(td.pool, byAt) {
		td.pool = slices.Clone(td.pool)
		sort.SliceStable(td.pool, byAt)
	}
	sort.SliceStable(td.tags, func(i, j int) bool { return td.tags[i].At.Before(td.tags[j].At) })
	sort.SliceStable(td.events, func(i, j int) bool { return td.events[i].At.Before(td.events[j].At) })
	sort.SliceStable(td.traffic, func(i, j int) bool { return td.traffic[i].At.Before(td.traffic[j].At) })
}

// nameOrder collects names in first-seen order; rank puts well-known names first.
type nameOrder struct {
	seen  map[string]int
	names []string
}

func (o *nameOrder) add(name string) {
	if name == "" {
		return
	}
	if o.seen == nil {
		o.seen = map[string]int{}
	}
	if _, ok := o.seen[name]; ok {
		return
	}
	o.seen[name] = len(o.names)
	o.names = append(o.names, name)
}

func (o *nameOrder) sorted(rank func(string) int) []string {
	out := append([]string(nil), o.names...)
	sort.SliceStable(out, func(i, j int) bool { return rank(out[i]) < rank(out[j]) })
	return out
}

func phaseRank(name string) int {
	switch name {
	case "before":
		return 0
	case "after":
		return 1
	}
	return 2
}

// layout builds the grid. The scenario is a full product of targets, phases and profiles, so
// a combination seen anywhere in the run is a cell of every target.
func (rd *runData) layout(results []bench.CellResult) {
	rd.phases, rd.profiles = rd.gridNames(results)
	for _, td := range rd.targets {
		sort.SliceStable(td.phases, func(i, j int) bool {
			a, b := td.phases[i], td.phases[j]
			if ra, rb := phaseRank(a.Phase), phaseRank(b.Phase); ra != rb {
				return ra < rb
			}
			return a.Started.Before(b.Started)
		})
	}

	resultBy := map[string]*bench.CellResult{}
	for i := range results {
		r := &results[i]
		resultBy[cellKey(r.Target, r.Phase, r.Profile)] = r
	}
	expectBy := rd.expectations()
	for _, td := range rd.targets {
		for _, ph := range rd.phases {
			for _, pr := range rd.profiles {
				key := cellKey(td.info.Name, ph, pr)
				c := td.newCell(ph, pr, resultBy[key], expectBy[key])
				td.cells = append(td.cells, c)
				rd.cells = append(rd.cells, c)
			}
		}
	}
	rd.count()
	rd.noteGaps()
}

// gridNames are the phases (well-known first, then in order of appearance) and profiles (in
// the order the scenario, then the run, drove them) seen anywhere in the run.
func (rd *runData) gridNames(results []bench.CellResult) (phaseNames, profileNames []string) {
	var phases, profiles nameOrder
	if sc := rd.scenario; sc != nil {
		for _, ph := range sc.Phases {
			phases.add(ph.Name)
		}
		for _, pr := range sc.Profiles {
			profiles.add(pr.Name)
		}
	}
	for _, td := range rd.targets {
		ps := append([]bench.PhaseInfo(nil), td.phases...)
		sort.SliceStable(ps, func(i, j int) bool { return ps[i].Started.Before(ps[j].Started) })
		for _, p := range ps {
			phases.add(p.Phase)
		}
	}
	for _, td := range rd.targets {
		for _, w := range td.windows {
			phases.add(w.Phase)
		}
	}
	for _, name := range rd.profilesByOffset() {
		profiles.add(name)
	}
	for _, r := range results {
		phases.add(r.Phase)
		profiles.add(r.Profile)
	}
	for _, e := range rd.cfg.expected {
		phases.add(e.Phase)
		profiles.add(e.Profile)
	}
	for _, td := range rd.targets {
		for _, tp := range td.traffic {
			profiles.add(tp.Profile)
		}
	}
	return phases.sorted(phaseRank), profiles.names
}

// profilesByOffset names the profiles of every traffic window in the order a phase drove
// them: by the window's offset from its phase's start.
func (rd *runData) profilesByOffset() []string {
	type offsetName struct {
		off  time.Duration
		name string
	}
	var offs []offsetName
	for _, td := range rd.targets {
		for _, w := range td.windows {
			if w.Profile == warmupWindow || w.Profile == "" {
				continue
			}
			var off time.Duration
			if p, ok := td.phase(w.Phase); ok && !p.Started.IsZero() {
				off = w.Start.Sub(p.Started)
			}
			offs = append(offs, offsetName{off, w.Profile})
		}
	}
	sort.SliceStable(offs, func(i, j int) bool { return offs[i].off < offs[j].off })
	names := make([]string, len(offs))
	for i, o := range offs {
		names[i] = o.name
	}
	return names
}

// expectations are the verdicts expected by cell key: the scenario's, overridden by those
// given to write.
func (rd *runData) expectations() map[string]bench.Verdict {
	expectBy := map[string]bench.Verdict{}
	if sc := rd.scenario; sc != nil {
		for _, c := range sc.Cells() {
			if c.Expect != "" {
				expectBy[cellKey(c.Target.Name, c.Phase.Name, c.Profile.Name)] = bench.Verdict(c.Expect)
			}
		}
	}
	for _, e := range rd.cfg.expected {
		expectBy[cellKey(e.Target, e.Phase, e.Profile)] = e.Verdict
	}
	return expectBy
}

// newCell is the target's cell of phase and profile. A result's own expectation wins over
// the expected verdict given; r may be nil.
func (t *targetData) newCell(phase, profile string, r *bench.CellResult, expected bench.Verdict) *cell {
	c := &cell{Target: t.info.Name, Phase: phase, Profile: profile, Expected: expected}
	if r != nil {
		c.Result = r
		if r.Expected != "" {
			c.Expected = r.Expected
			c.Met = r.Met
		} else if c.Expected != "" {
			c.Met = r.Verdict == c.Expected
		}
	}
	if p, ok := t.phase(phase); ok {
		c.PhaseInfo = &p
	}
	c.Window = t.window(phase, profile)
	c.Tags = t.tagGrowth(c)
	for _, tp := range t.traffic {
		if tp.Phase == phase && tp.Profile == profile {
			c.Packets += tp.Packets
			c.TrafficErrors += tp.Errors
		}
	}
	return c
}

func (t *targetData) window(phase, profile string) *bench.Window {
	var found *bench.Window
	for i := range t.windows {
		w := &t.windows[i]
		if w.Phase == phase && w.Profile == profile {
			found = w // the last one wins if a profile was driven twice
		}
	}
	return found
}

const topTagCount = 5

// tagGrowth uses the analysis' top tags; without a result it measures each tag's growth over
// the cell's window from the raw tag samples, so a run killed before analysis still shows them.
func (t *targetData) tagGrowth(c *cell) []bench.TagGrowth {
	if c.Result != nil {
		tags := c.Result.TopTags
		if len(tags) > topTagCount {
			tags = tags[:topTagCount]
		}
		return tags
	}
	w := c.Window
	if w == nil || w.Start.IsZero() {
		return nil
	}
	return bench.TagGrowthOf(t.tags, c.Phase, w.Start, w.End, topTagCount)
}

func (rd *runData) count() {
	var n counts
	for _, c := range rd.cells {
		n.Cells++
		if c.Result != nil {
			n.Results++
		}
		switch c.Status() {
		case "met":
			n.Expected++
			n.Met++
		case "failed":
			n.Expected++
			n.Failed++
		case "missing":
			n.Expected++
			n.Missing++
		case "incomplete":
			n.Expected++
			n.Incomplete++
		}
	}
	rd.counts = n
}

// noteGaps says, in words, what a run cut short lacks.
func (rd *runData) noteGaps() {
	var notes []string
	if rd.haveRun && rd.run.Finished.IsZero() {
		notes = append(notes, "The run has no finish time: it was killed or is still running. This report shows what the store holds so far.")
	}
	for _, td := range rd.targets {
		if len(td.phases) == 0 && len(td.pool) == 0 {
			notes = append(notes, fmt.Sprintf("Target %s: nothing was measured (no phase started).", td.info.Name))
			continue
		}
		for _, ph := range rd.phases {
			p, ok := td.phase(ph)
			switch {
			case !ok:
				notes = append(notes, fmt.Sprintf("Target %s: phase %q never started.", td.info.Name, ph))
			case p.Ended.IsZero():
				notes = append(notes, fmt.Sprintf("Target %s: phase %q has no end time (cut short).", td.info.Name, ph))
			}
		}
	}
	if missing := rd.counts.Cells - rd.counts.Results; missing > 0 {
		notes = append(notes, fmt.Sprintf("%d of %d cells have no result.", missing, rd.counts.Cells))
	}
	if n := rd.counts.Missing; n == 1 {
		notes = append(notes, "1 expected cell has no result; it counts as not met.")
	} else if n > 1 {
		notes = append(notes, fmt.Sprintf("%d expected cells have no result; they count as not met.", n))
	}
	if n := rd.counts.Incomplete; n > 0 {
		notes = append(notes, fmt.Sprintf("%d expected cells are INCOMPLETE: their windows did not run to the end, so they have no verdict and count as not met.", n))
	}
	if rd.scenarioErr != "" {
		notes = append(notes, rd.scenarioErr)
	} else if len(rd.cfg.expected) == 0 && rd.scenario == nil && rd.counts.Cells > rd.counts.Results {
		notes = append(notes, "The expectations of cells without a result are not known to this report (they are kept only with results).")
	}
	rd.problems = append(notes, rd.problems...)
}
