package scenarios_test

import (
	"slices"
	"testing"

	"github.com/wfplab/wfplab/scenarios"
	"github.com/wfplab/wfplab/traffic"
)

// The profile kinds a scenario accepts are exactly the traffic generator's profiles.
func TestProfileKindsMatchTraffic(t *testing.T) {
	var kinds []string
	for _, p := range traffic.Profiles {
		kinds = append(kinds, string(p))
		d, ok := scenarios.ProfileDefaults(string(p))
		if !ok || d.Kind != string(p) {
			t.Errorf("no scenario defaults for traffic profile %s", p)
		}
	}
	want := []string{scenarios.KindStreamBurst, scenarios.KindFragmentForward, scenarios.KindSingleNBL}
	if !slices.Equal(kinds, want) {
		t.Errorf("traffic profiles %v, scenario kinds %v", kinds, want)
	}
}
