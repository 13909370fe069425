// Package synthrun writes synthetic run folders: a real run store with the results (and,
// when asked, pool samples) a run would have recorded, and the outputs wfplab run writes
// from it. For tests and benchmarks of what reads runs (compare, report); never for runs.
package synthrun

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/wfplab/wfplab/bench"
	"github.com/wfplab/wfplab/lab/contract"
	"github.com/wfplab/wfplab/plots"
	"github.com/wfplab/wfplab/scenarios"
)

// Figures are one cell's measured numbers.
type Figures struct {
	LeakBps, BytesPerChain, ChainsPerSec, PacketsPerSec float64
}

// Spec says what run to write.
type Spec struct {
	ID       string              // default "synth-<seed>"
	Seed     int64               // for the pool noise and the default figures' jitter
	Scenario *scenarios.Scenario // default: the built-in kb979223
	// Figures gives a cell's result; nil gives KB979223's pattern: 480 B per multi-NBL chain
	// before the hotfix, about 0 otherwise (kbPattern).
	Figures func(target, phase, profile string) Figures
	// Samples is how many pool samples (100 ms apart) each window gets; 0 writes none.
	Samples int
	Outputs Outputs
}

// Outputs says which files besides the store Write writes.
type Outputs int

const (
	AllOutputs Outputs = iota // what wfplab run writes: bench.txt, report.html, charts, ...
	BenchOnly                 // bench.txt alone: fast, for what reads only that
	StoreOnly                 // none, as a run killed before its reports leaves it
)

var start = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

const sampleEvery = 100 * time.Millisecond

// Write writes the run into dir (which must not hold a store yet).
func Write(dir string, spec Spec) error {
	sc := spec.Scenario
	if sc == nil {
		var err error
		if sc, err = scenarios.Builtin("kb979223"); err != nil {
			return err
		}
	}
	text, err := sc.YAML()
	if err != nil {
		return err
	}
	if spec.ID == "" {
		spec.ID = fmt.Sprintf("synth-%d", spec.Seed)
	}
	rng := rand.New(rand.NewPCG(uint64(spec.Seed), 979223))
	st, err := bench.Create(dir, bench.RunInfo{ID: spec.ID, Scenario: sc.Name, ScenarioText: string(text),
		Provider: "sim", Seed: spec.Seed, Tool: "synthrun", Started: start})
	if err != nil {
		return err
	}
	var errs *multierror.Error
	add := func(err error) { errs = multierror.Append(errs, err) }
	window := time.Duration(max(spec.Samples, 1)) * sampleEvery
	for _, t := range sc.Targets {
		add(st.RecordTarget(bench.TargetInfo{Name: t.Name, OS: t.OS, Product: t.OS, Arch: arch(t.OS)}))
		at := start
		seq := uint64(0)
		var pool, blocked, multi float64 = 50 << 20, 0, 0
		for _, ph := range sc.Phases {
			phaseStart := at
			add(st.RecordPhase(bench.PhaseInfo{Target: t.Name, Phase: ph.Name, Started: phaseStart}))
			for _, pr := range sc.Profiles {
				var f Figures
				if spec.Figures != nil {
					f = spec.Figures(t.Name, ph.Name, pr.Name)
				} else {
					f = kbPattern(rng, ph.Name, pr)
				}
				w := bench.Window{Target: t.Name, Phase: ph.Name, Profile: pr.Name, Start: at, End: at.Add(window)}
				add(st.RecordWindow(w))
				for i := 0; i < spec.Samples; i++ {
					dt := sampleEvery.Seconds()
					pool += f.LeakBps*dt + (rng.Float64()-0.5)*8192
					blocked += f.ChainsPerSec * dt
					if pr.Kind != "single-nbl" {
						multi += f.ChainsPerSec * dt
					}
					seq++
					add(st.RecordSample(t.Name, ph.Name, at, contract.Sample{Seq: seq, TimeUS: seq * 100_000,
						NPBytes: uint64(max(pool, 0)), Driver: contract.Driver{State: "running",
							Layers: map[contract.Layer]contract.LayerCounters{"stream": {Classify: uint64(blocked),
								Blocked: uint64(blocked), MultiChain: uint64(multi)}}}}))
					at = at.Add(sampleEvery)
				}
				at = w.End
				add(st.RecordResult(result(sc, t.Name, ph.Name, pr.Name, f, spec.Samples)))
			}
			add(st.RecordPhase(bench.PhaseInfo{Target: t.Name, Phase: ph.Name, Started: phaseStart, Ended: at}))
		}
	}
	add(st.FinishRun(start.Add(time.Hour)))
	add(st.Flush())
	if errs.ErrorOrNil() == nil {
		switch spec.Outputs {
		case AllOutputs:
			_, err := plots.Write(st, dir)
			add(err)
		case BenchOnly:
			data, err := plots.BenchText(st)
			add(err)
			add(os.WriteFile(filepath.Join(dir, plots.BenchFile), data, 0o644))
		}
	}
	add(st.Close())
	return errs.ErrorOrNil()
}

func result(sc *scenarios.Scenario, target, phase, profile string, f Figures, n int) bench.CellResult {
	thr := sc.Verdict.ThresholdBps
	v := bench.Inconclusive
	lo, hi := f.LeakBps-0.1*math.Abs(f.LeakBps)-256, f.LeakBps+0.1*math.Abs(f.LeakBps)+256
	switch {
	case lo > thr:
		v = bench.Leak
	case hi < thr:
		v = bench.Clean
	}
	exp, _ := sc.Expected(target, phase, profile)
	return bench.CellResult{Target: target, Phase: phase, Profile: profile,
		Leak:         bench.Estimate{Slope: f.LeakBps, Lo: lo, Hi: hi, N: max(n, 110), NEff: float64(max(n, 110)) / 2},
		ChainsPerSec: f.ChainsPerSec, PacketsPerSec: f.PacketsPerSec, BytesPerChain: f.BytesPerChain,
		Verdict: v, Expected: bench.Verdict(exp), Met: exp == "" || bench.Verdict(exp) == v}
}

// kbPattern is KB979223's shape at the profile's asked rate, with a few percent of jitter
// from run to run: stream-burst makes a multi-NBL chain per 8-segment burst (some merge),
// fragment-forward one per datagram, single-nbl none.
func kbPattern(rng *rand.Rand, phase string, pr scenarios.Profile) Figures {
	j := func(v float64) float64 { return v * (1 + 0.04*(rng.Float64()-0.5)) }
	f := Figures{PacketsPerSec: j(pr.Rate), LeakBps: j(12), BytesPerChain: math.NaN()}
	switch pr.Kind {
	case "stream-burst":
		f.ChainsPerSec = j(pr.Rate / 12)
	case "fragment-forward":
		f.ChainsPerSec = f.PacketsPerSec
	}
	if phase == "before" && f.ChainsPerSec > 0 {
		f.LeakBps = j(480 * f.ChainsPerSec)
	}
	if f.ChainsPerSec > 0 {
		f.BytesPerChain = f.LeakBps / f.ChainsPerSec
	}
	return f
}

func arch(os string) string {
	if strings.HasSuffix(os, "-x86") {
		return "x86"
	}
	return "x64"
}
