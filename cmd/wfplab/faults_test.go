package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/wfplab/wfplab/bench"
)

// faultScenario: one simulated guest whose agent dies and whose WinRM fails now and then,
// one that crashes and reboots mid-window, one that hangs when its pool passes 21 MiB
// (the bug's real end), and one healthy guest. Noise off, as in shortScenario.
const faultScenario = `name: faults
provider: {kind: sim, reboot_down: 500ms, noise: false}
targets:
  - {name: agent-dies, os: win7-x86, faults: "agent_dies_after=8s,http_500_every=9,drop_receive_every=7,slow_every=11,slow_by=300ms"}
  - {name: crashes, os: vista-sp1-x86, faults: "reboot_every=11s,reboot_down=2s"}
  - {name: hangs, os: vista-sp1-x86, faults: "hang_pool_mb=21"}
  - {name: healthy, os: win7-x86}
phases: [before, after]
timing: {warmup: 1s, window: 4s, settle: 500ms, sample_interval: 100ms, sample_timeout: 1s}
# fragment-forward at 1000/s leaks about 350 kB/s on Vista: the hanging guest (20 MiB at
# idle) passes 21 MiB in that window of phase before.
profiles:
  - {name: stream-burst, kind: stream-burst, rate: 2000}
  - {name: fragment-forward, kind: fragment-forward, rate: 1000}
  - {name: single-nbl, kind: single-nbl, rate: 2000}
verdict: {threshold_bps: 4096, confidence: 0.95}
expect:
  - verdict: CLEAN
  - {phase: before, profile: stream-burst, verdict: LEAK}
  - {phase: before, profile: fragment-forward, verdict: LEAK}
`

// Faults injected into simulated guests through a real run: the guests that can be
// revived get every verdict with their cuts marked as gaps, the hung guest is GUEST_HUNG
// with its last pool figure and time, every failure names its target, and the others go on.
func TestRunSurvivesInjectedFaults(t *testing.T) {
	dir := t.TempDir()
	sc := writeFile(t, dir, "faults.yaml", faultScenario)
	out := filepath.Join(dir, "results")
	code, stdout, stderr := runCLI(t, "run", "--scenario", sc, "--out", out, "--seed", "2", "--quiet")
	if code != exitFailure {
		t.Fatalf("exit %d, want 2 (the hung guest)\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if !regexp.MustCompile(`target hangs: .*GUEST_HUNG: no sample for \d+s and the guest does not answer; last nonpaged pool \d+ bytes at 20\d\d-`).MatchString(stderr) {
		t.Errorf("no GUEST_HUNG naming the target, its last pool figure and time:\n%s", stderr)
	}
	if !regexp.MustCompile(`hangs\s+before\s+stream-burst\s.*LEAK ok`).MatchString(stdout) ||
		regexp.MustCompile(`hangs\s+after\s.*(LEAK|CLEAN) ok`).MatchString(stdout) {
		t.Errorf("the hung guest's cells before the hang keep their verdict, none after it:\n%s", stdout)
	}
	for _, name := range []string{"agent-dies", "crashes", "healthy"} {
		if strings.Contains(stderr, "target "+name) {
			t.Errorf("target %s failed:\n%s", name, stderr)
		}
		for _, ph := range []string{"before", "after"} {
			for _, p := range []string{"stream-burst", "fragment-forward", "single-nbl"} {
				if !regexp.MustCompile(name + `\s+` + ph + `\s+` + p + `\s.*\s(LEAK|CLEAN) ok`).MatchString(stdout) {
					t.Errorf("%s/%s/%s has no met verdict:\n%s", name, ph, p, stdout)
				}
			}
		}
	}
	st, err := bench.OpenReadOnly(filepath.Join(onlyRun(t, out), bench.StoreFile))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for name, want := range map[string]int{"agent-dies": 2, "crashes": 2, "healthy": 0} {
		evs, err := st.Events(name)
		if err != nil {
			t.Fatal(err)
		}
		cuts := 0
		for _, e := range evs {
			if e.Kind == bench.EventGap && strings.Contains(e.Message, "cut after") {
				cuts++
			}
		}
		if cuts < want || want == 0 && cuts > 0 {
			t.Errorf("%s: %d windows cut and rerun, want at least %d (0 for healthy)", name, cuts, want)
		}
	}
}
