package bench

import (
	"time"

	"github.com/wfplab/wfplab/scenarios"
)

// Measured returns what a resumed run need not measure again: the cells whose window ran
// to its end (Analyze's cut-window rule decides: all but INCOMPLETE), and the target/phase
// pairs whose throughput windows all ended.
func Measured(st *Store, sc *scenarios.Scenario) (cells map[CellKey]bool, tput map[[2]string]bool, err error) {
	results, err := Analyze(st, AnalysisFor(sc))
	if err != nil {
		return nil, nil, err
	}
	cells = map[CellKey]bool{}
	for _, r := range results {
		if r.Verdict != Incomplete {
			cells[CellKey{r.Target, r.Phase, r.Profile}] = true
		}
	}
	tput = map[[2]string]bool{}
	if !sc.Throughput.On() {
		return cells, tput, nil
	}
	windows, err := st.TputWindows("")
	if err != nil {
		return nil, nil, err
	}
	ended := map[[2]string]int{}
	for _, w := range windows {
		if w.End != (time.Time{}) {
			ended[[2]string{w.Target, w.Phase}]++
		}
	}
	for k, n := range ended {
		tput[k] = n >= sc.Throughput.Windows*len(sc.Profiles)
	}
	return cells, tput, nil
}
