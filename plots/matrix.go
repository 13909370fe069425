package plots

import (
	"fmt"

	"github.com/wfplab/wfplab/bench"
)

// underRate is the share of the asked rate below which a cell's traffic is flagged: the
// verdict then rests on less traffic than the scenario meant.
const underRate = 0.9

// matrix is the report's opening view: targets down, phases × profiles across, one cell
// each with its verdict, whether it met its expectation, and its evidence (chains blocked
// per second, packets per second achieved against asked).
type matrix struct {
	Phases   []string
	Profiles []string
	Rows     []matrixRow
}

type matrixRow struct {
	Target, Anchor string
	Cells          []matrixCell // phases × profiles, in that order
}

type matrixCell struct {
	Verdict, Class string // verdict word; v-leak, v-clean, v-inc or v-none
	Status         string // cell.Status(): met, failed, missing, incomplete, none
	Expected       string
	Chains         string // multi-NBL chains blocked per second ("—" when unknown)
	Achieved       string // packets per second achieved
	Asked          string // packets per second the scenario asked ("" when unknown)
	Share          string // achieved / asked, e.g. "99%"
	Under          bool   // achieved under underRate of asked
	Title          string // the whole cell in words, for a tooltip and the PDF reader
}

func (rd *runData) matrix(anchorOf map[string]string) matrix {
	m := matrix{Phases: rd.phases, Profiles: rd.profiles}
	asked := map[string]float64{}
	if rd.scenario != nil {
		for _, p := range rd.scenario.Profiles {
			asked[p.Name] = p.Rate
		}
	}
	byKey := map[string]*cell{}
	for _, c := range rd.cells {
		byKey[cellKey(c.Target, c.Phase, c.Profile)] = c
	}
	for _, td := range rd.targets {
		row := matrixRow{Target: td.info.Name, Anchor: anchorOf[td.info.Name]}
		for _, ph := range m.Phases {
			for _, pr := range m.Profiles {
				row.Cells = append(row.Cells, matrixCellOf(byKey[cellKey(td.info.Name, ph, pr)], asked[pr]))
			}
		}
		m.Rows = append(m.Rows, row)
	}
	return m
}

func matrixCellOf(c *cell, asked float64) matrixCell {
	if c == nil {
		return matrixCell{Verdict: dash, Class: "v-none", Status: "none", Chains: dash, Achieved: dash}
	}
	mc := matrixCell{Verdict: verdictText(c.Result), Class: verdictClass(c.Result), Status: c.Status(),
		Expected: expectedText(c), Chains: dash, Achieved: dash}
	if asked > 0 {
		mc.Asked = num(asked)
	}
	if r := c.Result; r != nil {
		mc.Chains, mc.Achieved = num(r.ChainsPerSec), num(r.PacketsPerSec)
		if asked > 0 && finite(r.PacketsPerSec) {
			mc.Share = fmt.Sprintf("%.0f%%", 100*r.PacketsPerSec/asked)
			mc.Under = r.PacketsPerSec < underRate*asked
		}
	}
	mc.Title = fmt.Sprintf("%s %s %s: %s, expected %s (%s); %s chains/s blocked; %s of %s packets/s",
		c.Target, c.Phase, c.Profile, mc.Verdict, mc.Expected, metText(c), mc.Chains, mc.Achieved, orDash(mc.Asked))
	return mc
}

// Mark is the cell's standing against its expectation: a sign, and what was expected when
// it was not met.
func (mc matrixCell) Mark() string {
	switch mc.Status {
	case "met":
		return "✓"
	case "failed":
		return "✗ expected " + mc.Expected
	case "missing", "incomplete":
		return "?"
	}
	return ""
}

// verdictClass is the CSS class a verdict is coloured with.
func verdictClass(r *bench.CellResult) string {
	switch {
	case r == nil:
		return "v-none"
	case r.Verdict == bench.Leak:
		return "v-leak"
	case r.Verdict == bench.Clean:
		return "v-clean"
	case r.Verdict == bench.Inconclusive, r.Verdict == bench.Incomplete:
		return "v-inc"
	}
	return ""
}
