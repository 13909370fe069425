package bench

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wfplab/wfplab/lab/contract"
)

// KeepPool answers Pool and Tags exactly as the store does: targets interleaved as they run
// side by side, phases, an agent restart (seq 0 starts a new tag table), a lost line,
// samples without multi_blocked, tags changing now and then.
func TestKeepPoolAnswersAsTheStore(t *testing.T) {
	s, dir := newStore(t)
	rng := rand.New(rand.NewPCG(1, 2))
	targets := []string{"a", "b", "c"}
	for _, tg := range targets {
		must(t, s.RecordTarget(TargetInfo{Name: tg, OS: "win7-x64"}))
	}
	seq := map[string]uint64{}
	for i := range 600 {
		tg := targets[rng.IntN(len(targets))]
		phase := "before"
		if i >= 300 {
			phase = "after"
		}
		if i == 300 || i == 450 || rng.IntN(100) == 0 {
			seq[tg] = 0 // a new agent process
		}
		var tags map[string]contract.TagUsage
		if seq[tg] == 0 || rng.IntN(4) == 0 {
			tags = map[string]contract.TagUsage{"Nnbl": {Allocs: uint64(i), Bytes: uint64(10 * i)}}
			if rng.IntN(2) == 0 {
				tags["Irp "] = contract.TagUsage{Allocs: 1, Frees: uint64(i), Bytes: uint64(i)}
			}
		}
		smp := testSample(seq[tg], uint64(1e6+rng.IntN(1e5)), tags)
		if i%7 == 0 {
			smp.Driver.Layers = map[contract.Layer]contract.LayerCounters{
				contract.LayerStream: {MultiChain: uint64(i), MultiBlocked: uint64(i / 2), HasMultiBlocked: true}}
		}
		must(t, s.RecordSample(tg, phase, t0.Add(time.Duration(i)*time.Millisecond), smp))
		seq[tg] += 1 + uint64(rng.IntN(50)/49) // now and then a lost line
	}
	must(t, s.Flush())
	ro, err := OpenReadOnly(dir)
	must(t, err)
	defer ro.Close()
	type read struct {
		pool map[string][]PoolPoint
		tags map[string][]TagPoint
	}
	readAll := func() read {
		r := read{map[string][]PoolPoint{}, map[string][]TagPoint{}}
		for _, tg := range append(targets, "none") {
			pool, err := ro.Pool(tg)
			must(t, err)
			tags, err := ro.Tags(tg)
			must(t, err)
			r.pool[tg], r.tags[tg] = pool, tags
		}
		return r
	}
	want := readAll()
	if len(want.pool["a"]) < 100 || len(want.tags["b"]) < 100 {
		t.Fatalf("the store holds too little to compare: %d samples, %d tag points", len(want.pool["a"]), len(want.tags["b"]))
	}
	must(t, ro.KeepPool())
	if diff := cmp.Diff(want, readAll(), cmp.AllowUnexported(read{})); diff != "" {
		t.Errorf("kept samples differ from the store's (-store +kept):\n%s", diff)
	}
	// Pool("") still reads every target from the store.
	all, err := ro.Pool("")
	must(t, err)
	if len(all) != 600 {
		t.Errorf("Pool(\"\") read %d samples, want 600", len(all))
	}
}

// The top tags Analyze finds are the same with the samples kept.
func TestKeepPoolSameTopTags(t *testing.T) {
	s, dir := newStore(t)
	must(t, s.RecordTarget(TargetInfo{Name: "a", OS: "win7-x64"}))
	w := Window{Target: "a", Phase: "before", Profile: "p", Start: t0, End: t0.Add(20 * time.Second)}
	must(t, s.RecordWindow(w))
	for i := uint64(0); i < 200; i++ {
		var tags map[string]contract.TagUsage
		if i%10 == 0 {
			tags = map[string]contract.TagUsage{"Nnbl": {Bytes: 100 * i}, "Irp ": {Bytes: 1000 - i}, "Tcp" + string(rune('a'+i/10)): {Bytes: i}}
		}
		must(t, s.RecordSample("a", "before", t0.Add(time.Duration(i)*100*time.Millisecond), testSample(i, 1e6+i, tags)))
	}
	must(t, s.Flush())
	ro, err := OpenReadOnly(dir)
	must(t, err)
	defer ro.Close()
	a := Analysis{Settle: time.Second}
	want, err := Analyze(ro, a)
	must(t, err)
	if len(want) != 1 || len(want[0].TopTags) == 0 {
		t.Fatalf("results %+v: want one with top tags", want)
	}
	must(t, ro.KeepPool())
	got, err := Analyze(ro, a)
	must(t, err)
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b float64) bool { return a == b || a != a && b != b })); diff != "" {
		t.Errorf("results differ with the samples kept (-store +kept):\n%s", diff)
	}
}
