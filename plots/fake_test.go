package plots

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/wfplab/wfplab/bench"
)

// fakeSource is an in-memory run store.
type fakeSource struct {
	run      bench.RunInfo
	targets  []bench.TargetInfo
	phases   map[string][]bench.PhaseInfo
	windows  map[string][]bench.Window
	pool     map[string][]bench.PoolPoint
	tags     map[string][]bench.TagPoint
	events   map[string][]bench.Event
	traffic  map[string][]bench.TrafficPoint
	results  []bench.CellResult
	failures map[string]error // "Pool:vista-sp1-x86" or "Results" → error to return
}

func newFakeSource() *fakeSource {
	return &fakeSource{
		phases: map[string][]bench.PhaseInfo{}, windows: map[string][]bench.Window{},
		pool: map[string][]bench.PoolPoint{}, tags: map[string][]bench.TagPoint{},
		events: map[string][]bench.Event{}, traffic: map[string][]bench.TrafficPoint{},
		failures: map[string]error{},
	}
}

func (f *fakeSource) fail(method, target string) error {
	if err, ok := f.failures[method+":"+target]; ok {
		return err
	}
	return f.failures[method]
}

func (f *fakeSource) Run() (bench.RunInfo, error) {
	if err := f.fail("Run", ""); err != nil {
		return bench.RunInfo{}, err
	}
	return f.run, nil
}

func (f *fakeSource) Targets() ([]bench.TargetInfo, error) {
	if err := f.fail("Targets", ""); err != nil {
		return nil, err
	}
	return f.targets, nil
}

func (f *fakeSource) Phases(t string) ([]bench.PhaseInfo, error) {
	return f.phases[t], f.fail("Phases", t)
}
func (f *fakeSource) Windows(t string) ([]bench.Window, error) {
	return f.windows[t], f.fail("Windows", t)
}
func (f *fakeSource) Pool(t string) ([]bench.PoolPoint, error) { return f.pool[t], f.fail("Pool", t) }
func (f *fakeSource) Tags(t string) ([]bench.TagPoint, error)  { return f.tags[t], f.fail("Tags", t) }
func (f *fakeSource) Traffic(t string) ([]bench.TrafficPoint, error) {
	return f.traffic[t], f.fail("Traffic", t)
}

func (f *fakeSource) Events(t string) ([]bench.Event, error) {
	if t == "" {
		var all []bench.Event
		for _, evs := range f.events {
			all = append(all, evs...)
		}
		return all, f.fail("Events", t)
	}
	return f.events[t], f.fail("Events", t)
}

func (f *fakeSource) Results() ([]bench.CellResult, error) {
	if err := f.fail("Results", ""); err != nil {
		return nil, err
	}
	return f.results, nil
}

var _ Source = (*fakeSource)(nil)

// The synthetic run: like the kb979223 scenario, on two targets.
var (
	testProfiles = []string{"stream-burst", "fragment-forward", "single-nbl"}
	testPhases   = []string{"before", "after"}
	testStart    = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
)

const (
	testWarmup   = 4 * time.Second
	testWindow   = 12 * time.Second
	testInterval = 100 * time.Millisecond
	testLeakBps  = 24000.0 // bytes/s an unpatched guest leaks under multi-NBL traffic
	testBaseline = 80 << 20
)

type testTarget struct {
	info         bench.TargetInfo
	netioBefore  string
	netioAfter   string
	build        string
	bytesPerNBL  float64
	chainsPerSec float64
}

var testTargets = []testTarget{
	{bench.TargetInfo{Name: "win7-x64", OS: "win7-x64", Product: "Windows 7", Arch: "x64"},
		"6.1.7600.16385", "6.1.7600.20611", "7600.16385", 480, 50},
	{bench.TargetInfo{Name: "vista-sp1-x86", OS: "vista-sp1-x86", Product: "Windows Vista SP1", Arch: "x86"},
		"6.0.6001.18000", "6.0.6001.22659", "6001.18000", 240, 100},
}

func testScenarioYAML(targets []testTarget) string {
	var b strings.Builder
	b.WriteString("name: kb979223\nprovider:\n  kind: sim\ntargets:\n")
	for _, t := range targets {
		fmt.Fprintf(&b, "  - {name: %s, os: %s}\n", t.info.Name, t.info.OS)
	}
	b.WriteString(`phases: [before, after]
timing:
  warmup: 4s
  window: 12s
  settle: 1s
  sample_interval: 100ms
profiles:
  - {name: stream-burst, kind: stream-burst, rate: 2000, payload_bytes: 1460, burst_segments: 8, conns: 4}
  - {name: fragment-forward, kind: fragment-forward, rate: 500, payload_bytes: 4000}
  - {name: single-nbl, kind: single-nbl, rate: 2000, payload_bytes: 64}
verdict:
  threshold_bps: 4096
  confidence: 0.95
expect:
  - verdict: CLEAN
  - {phase: before, profile: stream-burst, verdict: LEAK}
  - {phase: before, profile: fragment-forward, verdict: LEAK}
  - {profile: single-nbl, verdict: CLEAN}
`)
	return b.String()
}

// expectedVerdict mirrors testScenarioYAML's expectations.
func expectedVerdict(phase, profile string) bench.Verdict {
	if phase == "before" && profile != "single-nbl" {
		return bench.Leak
	}
	return bench.Clean
}

type synthOptions struct {
	targets []testTarget
	// killAfter cuts the run: per target, the run is killed inside its n-th profile window
	// (counted across phases); nothing after, no results, no finish time.
	killAfter    map[string]int
	skipResult   string // "target/phase/profile" with no result
	failResult   string // "target/phase/profile" whose verdict misses its expectation
	eventMessage string // extra event text (to check escaping)
}

// synthRun builds a run store in memory; samples follow the bug (leak before, none after).
func synthRun(o synthOptions) *fakeSource {
	f := newFakeSource()
	rng := rand.New(rand.NewPCG(1, 2))
	killed := len(o.killAfter) > 0
	f.run = bench.RunInfo{ID: "20240501-100000-test", Scenario: "kb979223", ScenarioText: testScenarioYAML(o.targets),
		Provider: "sim", Seed: 42, Tool: "wfplab test", Started: testStart}
	phaseLen := testWarmup + time.Duration(len(testProfiles))*testWindow
	for ti, tt := range o.targets {
		name := tt.info.Name
		f.targets = append(f.targets, tt.info)
		driven, limit := 0, o.killAfter[name]
		for pi, ph := range testPhases {
			if killed && driven >= limit {
				break
			}
			start := testStart.Add(time.Duration(ti)*time.Second + time.Duration(pi)*(phaseLen+30*time.Second))
			netio, hotfix := tt.netioBefore, "unpatched"
			if ph == "after" {
				netio, hotfix = tt.netioAfter, "patched"
			}
			pinfo := bench.PhaseInfo{Target: name, Phase: ph, OSBuild: tt.build, Netio: netio, Hotfix: hotfix,
				Started: start, Ended: start.Add(phaseLen)}
			f.windows[name] = append(f.windows[name], bench.Window{Target: name, Phase: ph, Profile: warmupWindow,
				Start: start, End: start.Add(testWarmup)})
			end := start.Add(phaseLen)
			for k, prof := range testProfiles {
				if killed && driven >= limit {
					break
				}
				ws := start.Add(testWarmup + time.Duration(k)*testWindow)
				w := bench.Window{Target: name, Phase: ph, Profile: prof, Start: ws, End: ws.Add(testWindow)}
				driven++
				if killed && driven == limit {
					w.End = time.Time{} // killed inside this window
					end = ws.Add(testWindow / 2)
				}
				f.windows[name] = append(f.windows[name], w)
				for s := 1; s <= int(testWindow/time.Second); s++ {
					at := ws.Add(time.Duration(s) * time.Second)
					if at.After(end) && killed {
						break
					}
					f.traffic[name] = append(f.traffic[name], bench.TrafficPoint{Target: name, Phase: ph, Profile: prof,
						At: at, Packets: 2000, Bytes: 2000 * 1460, Bursts: 250})
				}
			}
			if killed && driven >= limit {
				pinfo.Ended = time.Time{}
			}
			f.phases[name] = append(f.phases[name], pinfo)

			// Pool samples: baseline, noise, and growth while a leaking profile runs.
			pool := float64(testBaseline)
			nbl := 0.0
			for at, seq := start, uint64(0); !at.After(end); at, seq = at.Add(testInterval), seq+1 {
				prof := profileAt(start, at)
				leaking := ph == "before" && (prof == "stream-burst" || prof == "fragment-forward")
				if leaking {
					pool += testLeakBps * testInterval.Seconds()
					nbl += testLeakBps * testInterval.Seconds()
				}
				noisy := pool + rng.NormFloat64()*8000
				f.pool[name] = append(f.pool[name], bench.PoolPoint{Target: name, Phase: ph, At: at,
					GuestUS: seq * 100000, Seq: seq, NPBytes: uint64(noisy)})
				for _, tag := range []struct {
					name  string
					bytes float64
				}{{"NDnb", 1<<20 + nbl}, {"Ntfx", 3 << 20}, {"WfpC", 65536}} {
					f.tags[name] = append(f.tags[name], bench.TagPoint{Target: name, Phase: ph, At: at, Tag: tag.name,
						Bytes: uint64(tag.bytes)})
				}
			}
			f.events[name] = append(f.events[name],
				bench.Event{Target: name, Phase: ph, At: start.Add(-10 * time.Second), Kind: "driver", Message: "wfplabcallout started"})
			if ph == "after" {
				f.events[name] = append(f.events[name],
					bench.Event{Target: name, Phase: ph, At: start.Add(-25 * time.Second), Kind: "hotfix", Message: "KB979223 installed (wusa exit 3010)"},
					bench.Event{Target: name, Phase: ph, At: start.Add(-20 * time.Second), Kind: "reboot", Message: "rebooted in 4.1s"})
			}
		}
		if o.eventMessage != "" {
			f.events[name] = append(f.events[name], bench.Event{Target: name, Phase: "before", At: testStart.Add(time.Second),
				Kind: "error", Message: o.eventMessage})
		}
		if killed {
			continue
		}
		for _, ph := range testPhases {
			for _, prof := range testProfiles {
				key := name + "/" + ph + "/" + prof
				if key == o.skipResult {
					continue
				}
				f.results = append(f.results, synthResult(tt, ph, prof, key == o.failResult))
			}
		}
	}
	if f.run.Finished.IsZero() && !killed {
		f.run.Finished = testStart.Add(3 * time.Minute)
	}
	f.events[""] = append(f.events[""], bench.Event{Phase: "", At: testStart, Kind: "run", Message: "run started"})
	return f
}

func profileAt(phaseStart, at time.Time) string {
	off := at.Sub(phaseStart) - testWarmup
	if off < 0 {
		return warmupWindow
	}
	k := int(off / testWindow)
	if k >= len(testProfiles) {
		return ""
	}
	return testProfiles[k]
}

func synthResult(tt testTarget, phase, profile string, miss bool) bench.CellResult {
	exp := expectedVerdict(phase, profile)
	r := bench.CellResult{Target: tt.info.Name, Phase: phase, Profile: profile, Expected: exp,
		PacketsPerSec: 1987.5, ChainsPerSec: tt.chainsPerSec, BytesPerChain: math.NaN()}
	if profile == "single-nbl" {
		r.ChainsPerSec = 0
	}
	if exp == bench.Leak {
		r.Leak = bench.Estimate{Slope: testLeakBps, Lo: testLeakBps - 1500, Hi: testLeakBps + 1500, N: 110, NEff: 31.5}
		r.BytesPerChain = testLeakBps / tt.chainsPerSec
		r.TopTags = []bench.TagGrowth{{Tag: "NDnb", Bytes: int64(testLeakBps * 11)}}
	} else {
		r.Leak = bench.Estimate{Slope: 12.5, Lo: -800, Hi: 825, N: 110, NEff: 40.2}
		if r.ChainsPerSec > 0 {
			r.BytesPerChain = 12.5 / r.ChainsPerSec
		}
	}
	r.Verdict = exp
	r.Met = true
	if miss {
		r.Verdict = bench.Inconclusive
		r.Leak = bench.Estimate{Slope: 3900, Lo: 2100, Hi: 5700, N: 110, NEff: 12}
		r.Met = false
		r.Note = "the 95% interval [2100, 5700] B/s contains the threshold 4096 B/s"
	}
	return r
}
