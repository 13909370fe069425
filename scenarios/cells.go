package scenarios

import "time"

// Cells expands the scenario into target × phase × profile, in scenario order (targets
// outermost, profiles innermost), each with the verdict the expectations give it.
func (s *Scenario) Cells() []Cell {
	cells := make([]Cell, 0, len(s.Targets)*len(s.Phases)*len(s.Profiles))
	for _, t := range s.Targets {
		for _, ph := range s.Phases {
			for _, p := range s.Profiles {
				verdict, line := s.Expected(t.Name, ph.Name, p.Name)
				cells = append(cells, Cell{Target: t, Phase: ph, Profile: p, Expect: verdict, ExpectLine: line})
			}
		}
	}
	return cells
}

// Expected returns the verdict the expectations give one cell, and the line of the
// expectation that gave it. An empty field matches everything; the last matching
// expectation wins, so general rules come first and exceptions after. "" when none match.
func (s *Scenario) Expected(target, phase, profile string) (verdict string, line int) {
	for _, e := range s.Expect {
		if (e.Target == "" || e.Target == target) && (e.Phase == "" || e.Phase == phase) &&
			(e.Profile == "" || e.Profile == profile) {
			verdict, line = e.Verdict, e.Line
		}
	}
	return verdict, line
}

// PhaseDuration is the sampling time of one phase on one target: the warm-up, every
// profile's window and its throughput windows. Reboots and setup come on top.
func (s *Scenario) PhaseDuration() time.Duration {
	return s.Timing.Warmup + time.Duration(len(s.Profiles))*(s.Timing.Window+time.Duration(s.Throughput.Windows)*s.Throughput.Window)
}
