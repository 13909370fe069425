package bench

import (
	"bufio"
	"database/sql"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wfplab/wfplab/lab/contract"
	"github.com/wfplab/wfplab/traffic"
)

var t0 = time.Date(2026, 11, 28, 6, 30, 0, 123456789, time.UTC)

func testRun(id string) RunInfo {
	return RunInfo{ID: id, Scenario: "kb979223", ScenarioText: "name: kb979223\n", Provider: "sim", Seed: 42,
		Tool: "wfplab test", Started: t0}
}

func newStore(t *testing.T) (*Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "run")
	s, err := Create(dir, testRun("run-1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testSample(seq uint64, np uint64, tags map[string]contract.TagUsage) contract.Sample {
	return contract.Sample{
		Seq: seq, TimeUS: 1_000_000 + seq*100_000, NPBytes: np, NPAllocs: 1000 + seq, NPFrees: 900 + seq,
		CPUKernelMS: 10 + seq, CPUUserMS: 20 + seq, CPUIdleMS: 30 + seq,
		Driver: contract.Driver{State: "running", Layers: map[contract.Layer]contract.LayerCounters{
			contract.LayerStream:    {Classify: 10 * seq, Blocked: 10 * seq, NBLs: 80 * seq, MultiChain: 10 * seq, Hist: [6]uint64{0, 0, 0, 10 * seq, 0, 0}},
			contract.LayerForward:   {Classify: 2 * seq, Blocked: 2 * seq, NBLs: 6 * seq, MultiChain: 2 * seq, Hist: [6]uint64{0, 0, 2 * seq, 0, 0, 0}},
			contract.LayerTransport: {Classify: seq, Blocked: seq, NBLs: seq, Hist: [6]uint64{seq, 0, 0, 0, 0, 0}},
		}},
		ChangedTags: tags,
	}
}

func TestStoreRoundTrip(t *testing.T) {
	s, dir := newStore(t)
	targets := []TargetInfo{
		{Name: "win7-x64", OS: "win7-x64", Product: "Windows 7", Arch: "x64"},
		{Name: "vista-sp1-x86", OS: "vista-sp1-x86", Product: "Windows Vista SP1", Arch: "x86"},
	}
	for _, ti := range targets {
		must(t, s.RecordTarget(ti))
	}
	// Updating a target keeps its place.
	must(t, s.RecordTarget(TargetInfo{Name: "win7-x64", OS: "win7-x64", Product: "Windows 7 Ultimate", Arch: "x64"}))
	targets[0].Product = "Windows 7 Ultimate"

	ph := PhaseInfo{Target: "win7-x64", Phase: "before", OSBuild: "7600.16385", Netio: "6.1.7600.16385", Hotfix: "unpatched", Started: t0}
	must(t, s.RecordPhase(ph))
	ph2 := PhaseInfo{Target: "win7-x64", Phase: "after", OSBuild: "7600.16385", Netio: "6.1.7600.20611", Hotfix: "patched",
		Started: t0.Add(time.Minute), Ended: t0.Add(2 * time.Minute)}
	must(t, s.RecordPhase(ph2))
	must(t, endPhase(s, "win7-x64", "before", t0.Add(50*time.Second)))
	ph.Ended = t0.Add(50 * time.Second)

	w := Window{Target: "win7-x64", Phase: "before", Profile: "warmup", Start: t0.Add(time.Second)}
	must(t, s.RecordWindow(w))
	w2 := Window{Target: "win7-x64", Phase: "before", Profile: "stream-burst", Start: t0.Add(6 * time.Second), End: t0.Add(16 * time.Second)}
	must(t, s.RecordWindow(w2))
	w.End = t0.Add(6 * time.Second)
	must(t, s.RecordWindow(w))

	big := uint64(1)<<63 + 5 // beyond SQLite's signed range: must survive
	smp0 := testSample(0, 50_000_000, map[string]contract.TagUsage{"Nnbl": {Allocs: 9, Frees: 1, Bytes: 4096}, "Ntf ": {Allocs: 3, Frees: 1, Bytes: 256}})
	smp1 := testSample(1, big, map[string]contract.TagUsage{"Nnbl": {Allocs: 12, Frees: 1, Bytes: 6000}})
	smp2 := testSample(2, 50_001_000, nil)
	smp2.Driver = contract.Driver{State: "absent"}
	must(t, s.RecordSample("win7-x64", "before", t0.Add(2*time.Second), smp0))
	must(t, s.RecordSample("win7-x64", "before", t0.Add(3*time.Second), smp1))
	must(t, s.RecordSample("win7-x64", "before", t0.Add(4*time.Second), smp2))
	// A new phase starts a new tag table; the other target's samples stay apart.
	must(t, s.RecordSample("win7-x64", "after", t0.Add(70*time.Second), testSample(0, 40_000_000, map[string]contract.TagUsage{"Irp ": {Allocs: 1, Bytes: 128}})))
	must(t, s.RecordSample("vista-sp1-x86", "before", t0.Add(2*time.Second), testSample(0, 30_000_000, map[string]contract.TagUsage{"Nnbl": {Allocs: 1, Bytes: 1}})))

	ev := Event{Target: "win7-x64", Phase: "before", At: t0.Add(time.Second), Kind: "driver", Message: "wfplabcallout running"}
	must(t, s.RecordEvent(ev))
	runEv := Event{At: t0, Kind: "run", Message: "started"}
	must(t, s.RecordEvent(runEv))

	tick := traffic.Tick{At: t0.Add(7 * time.Second), Delta: traffic.Counters{Packets: 800, Bytes: 1168000, Bursts: 100, Conns: 4,
		Resets: 1, Errors: map[string]uint64{"ECONNREFUSED": 2, "timeout": 1}}, Span: time.Second}
	must(t, s.RecordTraffic("win7-x64", "before", "stream-burst", tick))
	fwdTick := traffic.Tick{At: t0.Add(8 * time.Second), Delta: traffic.Counters{Packets: 500, Bytes: 2000000, Frames: 1500,
		ForwardedFrames: 1497, ForwardedDatagrams: 499, ForwardedBytes: 1996000}, Span: time.Second}
	must(t, s.RecordTraffic("win7-x64", "before", "fragment-forward", fwdTick))

	res := CellResult{Target: "win7-x64", Phase: "before", Profile: "stream-burst",
		Leak:         Estimate{Slope: 123456.5, Lo: 120000, Hi: 127000.25, N: 95, NEff: 31.5},
		ChainsPerSec: 1000, PacketsPerSec: 8000, BytesPerChain: 123.4565,
		TopTags: []TagGrowth{{Tag: "Nnbl", Bytes: 1234567}, {Tag: "Ntf ", Bytes: -5}},
		Verdict: Leak, Expected: Leak, Met: true}
	must(t, s.RecordResult(res))
	noData := CellResult{Target: "win7-x64", Phase: "before", Profile: "single-nbl",
		Leak:         Estimate{Slope: math.NaN(), Lo: math.NaN(), Hi: math.NaN(), NEff: math.NaN()},
		ChainsPerSec: math.NaN(), PacketsPerSec: 0, BytesPerChain: math.NaN(),
		Verdict: Inconclusive, Expected: Clean, Met: false, Note: "no samples"}
	must(t, s.RecordResult(noData))
	// Recording a cell again replaces it.
	res.Note = "replaced"
	must(t, s.RecordResult(res))
	finished := t0.Add(3 * time.Minute)
	must(t, s.FinishRun(finished))
	must(t, s.Flush())

	check := func(t *testing.T, s *Store) {
		t.Helper()
		run, err := s.Run()
		must(t, err)
		want := testRun("run-1")
		want.Finished = finished
		if !run.Started.Equal(want.Started) || !run.Finished.Equal(want.Finished) {
			t.Errorf("run times %v..%v, want %v..%v", run.Started, run.Finished, want.Started, want.Finished)
		}
		run.Started, run.Finished, want.Started, want.Finished = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if diff := cmp.Diff(want, run); diff != "" {
			t.Errorf("run mismatch (-want +got):\n%s", diff)
		}

		gotTargets, err := s.Targets()
		must(t, err)
		if diff := cmp.Diff(targets, gotTargets); diff != "" {
			t.Errorf("targets mismatch (-want +got):\n%s", diff)
		}

		phases, err := s.Phases("win7-x64")
		must(t, err)
		if len(phases) != 2 || !samePhase(phases[0], ph) || !samePhase(phases[1], ph2) {
			t.Errorf("phases %+v, want %+v and %+v", phases, ph, ph2)
		}
		if p, _ := s.Phases("vista-sp1-x86"); len(p) != 0 {
			t.Errorf("vista has phases %+v, recorded none", p)
		}

		windows, err := s.Windows("win7-x64")
		must(t, err)
		if len(windows) != 2 || !sameWindow(windows[0], w) || !sameWindow(windows[1], w2) {
			t.Errorf("windows %+v, want %+v then %+v", windows, w, w2)
		}

		pool, err := s.Pool("win7-x64")
		must(t, err)
		if len(pool) != 4 {
			t.Fatalf("%d pool points for win7-x64, want 4", len(pool))
		}
		wantPool := PoolPoint{Target: "win7-x64", Phase: "before", At: t0.Add(3 * time.Second), GuestUS: smp1.TimeUS, Seq: 1,
			NPBytes: big, NPAllocs: smp1.NPAllocs, NPFrees: smp1.NPFrees, Blocked: 13, MultiChain: 12, NBLs: 87}
		if !pool[1].At.Equal(wantPool.At) {
			t.Errorf("pool[1].At = %v, want %v", pool[1].At, wantPool.At)
		}
		pool[1].At = wantPool.At
		if pool[1] != wantPool {
			t.Errorf("pool[1] = %+v, want %+v", pool[1], wantPool)
		}
		if pool[2].Blocked != 0 || pool[3].Phase != "after" {
			t.Errorf("pool[2..3] = %+v", pool[2:])
		}
		if all, _ := s.Pool(""); len(all) != 5 {
			t.Errorf("Pool(\"\") has %d points, want all 5", len(all))
		}

		layers, err := s.Layers("win7-x64")
		must(t, err)
		if len(layers) != 3*3 { // the "absent" sample has no layers
			t.Fatalf("%d layer points, want 9", len(layers))
		}
		l := layers[4] // sample 1, "stream" (layers sort by name: forward, stream, transport)
		if l.Layer != "stream" || l.Seq != 1 || l.Classify != 10 || l.NBLs != 80 || l.MultiChain != 10 || l.Hist != [6]uint64{0, 0, 0, 10, 0, 0} {
			t.Errorf("layer point %+v", l)
		}

		changes, err := tagChanges(s, "win7-x64")
		must(t, err)
		if len(changes) != 4 {
			t.Errorf("%d tag changes, want 4: %+v", len(changes), changes)
		}
		tags, err := s.Tags("win7-x64")
		must(t, err)
		type tv struct {
			phase, tag string
			bytes      uint64
		}
		var got []tv
		for _, p := range tags {
			got = append(got, tv{p.Phase, p.Tag, p.Bytes})
		}
		wantTags := []tv{
			{"before", "Nnbl", 4096}, {"before", "Ntf ", 256}, // sample 0: every tag
			{"before", "Nnbl", 6000}, {"before", "Ntf ", 256}, // sample 1: Nnbl changed, Ntf carried
			{"before", "Nnbl", 6000}, {"before", "Ntf ", 256}, // sample 2: nothing changed
			{"after", "Irp ", 128}, // new phase: a new table
		}
		if diff := cmp.Diff(wantTags, got, cmp.AllowUnexported(tv{})); diff != "" {
			t.Errorf("tags mismatch (-want +got):\n%s", diff)
		}
		if !tags[2].At.Equal(t0.Add(3*time.Second)) || tags[2].Allocs != 12 || tags[2].Frees != 1 {
			t.Errorf("tag point %+v", tags[2])
		}

		events, err := s.Events("win7-x64")
		must(t, err)
		if len(events) != 1 || events[0].Kind != ev.Kind || events[0].Message != ev.Message || !events[0].At.Equal(ev.At) || events[0].Phase != "before" {
			t.Errorf("events %+v, want %+v", events, ev)
		}
		if all, _ := s.Events(""); len(all) != 2 || all[1].Kind != "run" || all[1].Target != "" {
			t.Errorf("all events %+v", all)
		}

		tr, err := s.Traffic("win7-x64")
		must(t, err)
		wantTr := TrafficPoint{Target: "win7-x64", Phase: "before", Profile: "stream-burst", At: tick.At, Packets: 800, Bytes: 1168000, Bursts: 100, Errors: 3, Span: time.Second}
		if len(tr) != 2 || !tr[0].At.Equal(wantTr.At) {
			t.Fatalf("traffic %+v", tr)
		}
		wantFwd := TrafficPoint{Target: "win7-x64", Phase: "before", Profile: "fragment-forward", At: fwdTick.At, Packets: 500, Bytes: 2000000,
			Span: time.Second, Frames: 1500, ForwardedFrames: 1497, ForwardedDatagrams: 499, ForwardedBytes: 1996000}
		tr[1].At = wantFwd.At
		if diff := cmp.Diff(wantFwd, tr[1]); diff != "" {
			t.Errorf("forward traffic mismatch (-want +got):\n%s", diff)
		}
		tr[0].At = wantTr.At
		if diff := cmp.Diff(wantTr, tr[0]); diff != "" {
			t.Errorf("traffic mismatch (-want +got):\n%s", diff)
		}

		results, err := s.Results()
		must(t, err)
		if len(results) != 2 {
			t.Fatalf("%d results, want 2", len(results))
		}
		if diff := cmp.Diff(res, results[0]); diff != "" {
			t.Errorf("result mismatch (-want +got):\n%s", diff)
		}
		r := results[1]
		if !math.IsNaN(r.Leak.Slope) || !math.IsNaN(r.Leak.Lo) || !math.IsNaN(r.BytesPerChain) || r.PacketsPerSec != 0 ||
			r.Verdict != Inconclusive || r.Expected != Clean || r.Met || r.Note != "no samples" || r.TopTags != nil {
			t.Errorf("no-data result %+v", r)
		}
	}
	t.Run("live", func(t *testing.T) { check(t, s) })
	must(t, s.Close())
	t.Run("reopened", func(t *testing.T) {
		r, err := Open(dir) // the run folder works as well as the file
		must(t, err)
		defer r.Close()
		check(t, r)
	})
}

func samePhase(a, b PhaseInfo) bool {
	ok := a.Started.Equal(b.Started) && a.Ended.Equal(b.Ended)
	a.Started, a.Ended, b.Started, b.Ended = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return ok && a == b
}

func sameWindow(a, b Window) bool {
	ok := a.Start.Equal(b.Start) && a.End.Equal(b.End)
	a.Start, a.End, b.Start, b.End = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return ok && a == b
}

// Data written and never flushed or closed is readable by a second store on the same
// file within the commit interval.
func TestStoreCommitsWithoutFlush(t *testing.T) {
	s, dir := newStore(t)
	for i := uint64(0); i < 50; i++ {
		must(t, s.RecordSample("t1", "before", t0.Add(time.Duration(i)*time.Second), testSample(i, 1000+i, nil)))
	}
	must(t, s.RecordEvent(Event{Target: "t1", Kind: "driver", Message: "up"}))
	r, err := Open(filepath.Join(dir, StoreFile))
	must(t, err)
	defer r.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		pool, err := r.Pool("t1")
		must(t, err)
		events, err := r.Events("t1")
		must(t, err)
		if len(pool) == 50 && len(events) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("second reader sees %d samples and %d events after 10 s; want 50 and 1", len(pool), len(events))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const killHelperEnv = "WFPLAB_BENCH_KILL_HELPER_DIR"

// TestStoreKillHelper is the child process of TestStoreSurvivesKill: it writes, says
// how much is committed, keeps writing, and waits to be killed.
func TestStoreKillHelper(t *testing.T) {
	dir := os.Getenv(killHelperEnv)
	if dir == "" {
		return // only meaningful as TestStoreSurvivesKill's child
	}
	s, err := Create(dir, testRun("killed"))
	if err != nil {
		fmt.Println("ERROR", err)
		return
	}
	must(t, s.RecordTarget(TargetInfo{Name: "t1", OS: "win7-x64", Product: "Windows 7", Arch: "x64"}))
	must(t, s.RecordPhase(PhaseInfo{Target: "t1", Phase: "before", Started: t0}))
	must(t, s.RecordWindow(Window{Target: "t1", Phase: "before", Profile: "stream-burst", Start: t0}))
	for i := uint64(0); i < 200; i++ {
		must(t, s.RecordSample("t1", "before", t0.Add(time.Duration(i)*time.Millisecond), testSample(i, 5000+i, map[string]contract.TagUsage{"Nnbl": {Bytes: i}})))
	}
	must(t, s.Flush())
	fmt.Println("READY 200")
	// Keep writing until killed (bounded, in case the parent is gone).
	for i := uint64(200); i < 200+60*100; i++ {
		s.RecordSample("t1", "before", t0.Add(time.Duration(i)*time.Millisecond), testSample(i, 5000+i, nil))
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStoreSurvivesKill(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	cmd := exec.Command(os.Args[0], "-test.run=^TestStoreKillHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), killHelperEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	must(t, err)
	cmd.Stderr = os.Stderr
	must(t, cmd.Start())
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "READY") || strings.HasPrefix(sc.Text(), "ERROR") {
				lines <- sc.Text()
				return
			}
		}
		close(lines)
	}()
	select {
	case line, ok := <-lines:
		if !ok || !strings.HasPrefix(line, "READY") {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("helper did not get ready: %q", line)
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("helper not ready within 60 s")
	}
	time.Sleep(300 * time.Millisecond) // let it write (and commit) some more
	must(t, cmd.Process.Kill())
	cmd.Wait()

	s, err := Open(dir)
	must(t, err)
	defer s.Close()
	run, err := s.Run()
	must(t, err)
	if run.ID != "killed" || !run.Finished.IsZero() {
		t.Errorf("run %+v: want id killed and no finish time", run)
	}
	pool, err := s.Pool("t1")
	must(t, err)
	if len(pool) < 200 {
		t.Fatalf("%d samples survived the kill; 200 were committed before it", len(pool))
	}
	for i, p := range pool {
		if p.Seq != uint64(i) || p.NPBytes != 5000+uint64(i) {
			t.Fatalf("sample %d is %+v", i, p)
		}
	}
	if w, _ := s.Windows("t1"); len(w) != 1 || !w[0].End.IsZero() {
		t.Errorf("windows %+v: want the open window", w)
	}
	if tags, _ := s.Tags("t1"); len(tags) < 200 || tags[199].Bytes != 199 {
		t.Errorf("tags after kill: %d points", len(tags))
	}
}

func TestStoreConcurrentWriters(t *testing.T) {
	s, _ := newStore(t)
	const writers, perWriter = 8, 300
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for g := 0; g < writers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			target := fmt.Sprintf("t%d", g)
			if err := s.RecordTarget(TargetInfo{Name: target}); err != nil {
				errs <- err
				return
			}
			for i := uint64(0); i < perWriter; i++ {
				tags := map[string]contract.TagUsage{"Nnbl": {Bytes: i}}
				if err := s.RecordSample(target, "before", t0.Add(time.Duration(i)*time.Millisecond), testSample(i, uint64(g)*1e6+i, tags)); err != nil {
					errs <- err
					return
				}
				if i%50 == 0 {
					s.RecordEvent(Event{Target: target, Phase: "before", Kind: "tick", Message: fmt.Sprint(i)})
					s.RecordTraffic(target, "before", "single-nbl", traffic.Tick{At: t0, Delta: traffic.Counters{Packets: i}})
				}
				if i%100 == 0 {
					// Readers run while others write.
					if _, err := s.Pool(target); err != nil {
						errs <- err
						return
					}
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	must(t, s.Flush())
	for g := 0; g < writers; g++ {
		target := fmt.Sprintf("t%d", g)
		pool, err := s.Pool(target)
		must(t, err)
		if len(pool) != perWriter {
			t.Fatalf("%s: %d samples, want %d", target, len(pool), perWriter)
		}
		for i, p := range pool {
			if p.Seq != uint64(i) || p.NPBytes != uint64(g)*1e6+uint64(i) || p.Target != target {
				t.Fatalf("%s sample %d = %+v: out of order or mixed up", target, i, p)
			}
		}
		if ev, _ := s.Events(target); len(ev) != perWriter/50 {
			t.Errorf("%s: %d events, want %d", target, len(ev), perWriter/50)
		}
	}
	if tg, _ := s.Targets(); len(tg) != writers {
		t.Errorf("%d targets, want %d", len(tg), writers)
	}
}

func TestStoreErrors(t *testing.T) {
	s, dir := newStore(t)
	if _, err := Create(dir, testRun("again")); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("Create over an existing store: %v", err)
	}
	if _, err := Create(t.TempDir(), RunInfo{}); err == nil {
		t.Error("Create without a run id must fail")
	}
	if err := s.RecordSample("", "before", t0, contract.Sample{}); err == nil {
		t.Error("a sample without a target must be refused")
	}
	if err := s.RecordWindow(Window{Target: "t", Phase: "p"}); err == nil {
		t.Error("a window without a profile must be refused")
	}
	must(t, endPhase(s, "nobody", "before", t0))
	if err := s.Flush(); err == nil || !strings.Contains(err.Error(), "never recorded") {
		t.Errorf("ending an unknown phase: Flush says %v", err)
	}
	must(t, s.RecordEvent(Event{Kind: "still", Message: "works after a failed write"}))
	if ev, err := s.Events(""); err != nil || len(ev) != 1 {
		t.Errorf("events after a failed write: %v %v", ev, err)
	}
	s.Close()
	if err := s.RecordEvent(Event{Kind: "late"}); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("write after Close: %v", err)
	}

	if _, err := Open(filepath.Join(t.TempDir(), "missing.db")); err == nil {
		t.Error("Open of a missing file must fail")
	}
	if _, err := Open(t.TempDir()); err == nil {
		t.Error("Open of a folder without a store must fail")
	}
	junk := filepath.Join(t.TempDir(), "junk.db")
	must(t, os.WriteFile(junk, nil, 0o644))
	if _, err := Open(junk); err == nil || !strings.Contains(err.Error(), "not a wfplab run store") {
		t.Errorf("Open of an empty file: %v", err)
	}
}

// A store written by an older wfplab (schema 1 to 4) opens, gains every later column and
// table (zero frame counts, the throughput windows, results.dose, an unknown
// multi_blocked) and takes rows that carry them.
func TestStoreUpgradesOlderSchemas(t *testing.T) {
	for _, from := range []int{1, 2, 3, 4} {
		t.Run(fmt.Sprintf("from%d", from), func(t *testing.T) {
			s, dir := newStore(t)
			must(t, s.RecordTraffic("a", "before", "single-nbl", traffic.Tick{At: t0, Delta: traffic.Counters{Packets: 7}, Span: time.Second}))
			old := contract.Sample{Seq: 1, TimeUS: 1e6, Driver: contract.Driver{State: "running",
				Layers: map[contract.Layer]contract.LayerCounters{contract.LayerStream: {MultiChain: 4}}}}
			must(t, s.RecordSample("a", "before", t0, old))
			must(t, s.Close())
			// Take the store back to what that wfplab wrote.
			db, err := sql.Open("sqlite", filepath.Join(dir, StoreFile))
			must(t, err)
			drops := []string{`ALTER TABLE samples DROP COLUMN multi_blocked`}
			if from <= 3 {
				drops = append(drops, `ALTER TABLE results DROP COLUMN dose`)
			}
			if from <= 2 {
				drops = append(drops, `DROP TABLE tput_windows`)
			}
			if from == 1 {
				for _, col := range []string{"frames", "fwd_frames", "fwd_datagrams", "fwd_bytes"} {
					drops = append(drops, `ALTER TABLE traffic DROP COLUMN `+col)
				}
			}
			for _, d := range drops {
				_, err := db.Exec(d)
				must(t, err)
			}
			_, err = db.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, from))
			must(t, err)
			must(t, db.Close())

			s, err = Open(dir)
			must(t, err)
			defer s.Close()
			must(t, s.RecordTraffic("a", "after", "fragment-forward", traffic.Tick{At: t0.Add(time.Second),
				Delta: traffic.Counters{Packets: 2, Frames: 6, ForwardedFrames: 6, ForwardedDatagrams: 2, ForwardedBytes: 8000}, Span: time.Second}))
			fresh := contract.Sample{Seq: 2, TimeUS: 2e6, Driver: contract.Driver{State: "running",
				Layers: map[contract.Layer]contract.LayerCounters{contract.LayerStream: {MultiChain: 5, MultiBlocked: 3, HasMultiBlocked: true}}}}
			must(t, s.RecordSample("a", "after", t0.Add(time.Second), fresh))
			must(t, s.Flush())
			tr, err := s.Traffic("a")
			must(t, err)
			if len(tr) != 2 || tr[0].Packets != 7 || tr[1].Frames != 6 || tr[1].ForwardedFrames != 6 || tr[1].ForwardedDatagrams != 2 || tr[1].ForwardedBytes != 8000 {
				t.Fatalf("traffic after upgrade %+v", tr)
			}
			if from == 1 && (tr[0].Frames != 0 || tr[0].ForwardedDatagrams != 0) {
				t.Fatalf("a schema 1 second got frame counts: %+v", tr[0])
			}
			pool, err := s.Pool("a")
			must(t, err)
			if len(pool) != 2 || pool[0].HasMultiBlocked || pool[0].MultiChain != 4 ||
				!pool[1].HasMultiBlocked || pool[1].MultiBlocked != 3 || pool[1].MultiChain != 5 {
				t.Fatalf("samples after upgrade %+v", pool)
			}
			must(t, s.RecordTputWindow(TputWindow{Target: "a", Phase: "before", Profile: "single-nbl", Start: t0, End: t0.Add(time.Second), Sent: 5}))
			must(t, s.Flush())
			if ws, err := s.TputWindows(""); err != nil || len(ws) != 1 || ws[0].Sent != 5 || ws[0].Samples != 0 {
				t.Fatalf("throughput windows after upgrade %+v, %v", ws, err)
			}
			var v int
			must(t, s.rdb.QueryRow(`PRAGMA user_version`).Scan(&v))
			if v != SchemaVersion {
				t.Errorf("user_version %d after upgrade, want %d", v, SchemaVersion)
			}
		})
	}
}

// A sample from a version 2 driver keeps multi_blocked summed over its layers; one where a
// layer lacks it keeps NULL, not a partial sum.
func TestSampleMultiBlocked(t *testing.T) {
	s, _ := newStore(t)
	defer s.Close()
	v2 := map[contract.Layer]contract.LayerCounters{
		contract.LayerStream:  {MultiChain: 5, MultiBlocked: 4, HasMultiBlocked: true},
		contract.LayerForward: {MultiChain: 2, MultiBlocked: 2, HasMultiBlocked: true},
	}
	mixed := map[contract.Layer]contract.LayerCounters{
		contract.LayerStream:  {MultiChain: 5, MultiBlocked: 4, HasMultiBlocked: true},
		contract.LayerForward: {MultiChain: 2},
	}
	must(t, s.RecordSample("a", "before", t0, contract.Sample{Seq: 0, Driver: contract.Driver{State: "running", Layers: v2}}))
	must(t, s.RecordSample("a", "before", t0.Add(time.Second), contract.Sample{Seq: 1, Driver: contract.Driver{State: "running", Layers: mixed}}))
	must(t, s.RecordSample("a", "before", t0.Add(2*time.Second), contract.Sample{Seq: 2, Driver: contract.Driver{State: "absent"}}))
	must(t, s.Flush())
	pool, err := s.Pool("a")
	must(t, err)
	if len(pool) != 3 || !pool[0].HasMultiBlocked || pool[0].MultiBlocked != 6 || pool[0].MultiChain != 7 ||
		pool[1].HasMultiBlocked || pool[2].HasMultiBlocked {
		t.Fatalf("pool %+v", pool)
	}
}

// endPhase sets a recorded phase's end time, as RecordPhase with Ended set would; it also
// makes a write that fails in its batch (an unknown phase).
func endPhase(s *Store, target, phase string, at time.Time) error {
	return s.enqueue("end phase "+target+"/"+phase, func(b *batch) error {
		res, err := b.exec(`UPDATE phases SET ended_ns = ? WHERE target = ? AND phase = ?`, timeNS(at), target, phase)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("phase %s/%s was never recorded", target, phase)
		}
		return nil
	})
}

// tagChanges returns only the tags each sample reported as changed, as the store keeps them.
func tagChanges(s *Store, target string) ([]TagPoint, error) {
	rows, err := s.query("tag changes", `SELECT s.target, s.phase, s.at_ns, t.tag, t.allocs, t.frees, t.bytes
		FROM tag_changes t JOIN samples s ON s.id = t.sample_id
		WHERE (?1 = '' OR s.target = ?1) ORDER BY s.id, t.tag`, target)
	if err != nil {
		return nil, err
	}
	return readAll(s, "tag changes", rows, func(r *sql.Rows) (TagPoint, error) {
		var p TagPoint
		var at, a, f, b int64
		err := r.Scan(&p.Target, &p.Phase, &at, &p.Tag, &a, &f, &b)
		p.At, p.Allocs, p.Frees, p.Bytes = nsTime(at), uint64(a), uint64(f), uint64(b)
		return p, err
	})
}

// A result's bytes-per-chain fit survives the store, and a version 3 store (no results.dose)
// is upgraded with its results kept.
func TestStoreKeepsDoseAndUpgradesSchema3(t *testing.T) {
	s, dir := newStore(t)
	r := noDataResult(CellKey{"a", "before", "stream-burst"}, "")
	r.Verdict = Leak
	r.Dose = &Dose{PerChain: 352, Lo: 330, Hi: 374, Drift: -12, N: 110, DF: 107, Phi: 0.5, Walk: 0.01, Jumps: 1, ACF: [4]float64{0.01, -0.2, 0.03, 0}}
	plain := noDataResult(CellKey{"a", "before", "single-nbl"}, "rate rule")
	must(t, s.RecordResult(r))
	must(t, s.RecordResult(plain))
	must(t, s.Flush())
	got, err := s.Results()
	must(t, err)
	if len(got) != 2 || got[0].Dose == nil || *got[0].Dose != *r.Dose || got[1].Dose != nil {
		t.Fatalf("results back: %+v", got)
	}
	must(t, s.Close())
	db, err := sql.Open("sqlite", filepath.Join(dir, StoreFile))
	must(t, err)
	_, err = db.Exec(`ALTER TABLE results DROP COLUMN dose; ALTER TABLE samples DROP COLUMN multi_blocked; PRAGMA user_version = 3;`)
	must(t, err)
	must(t, db.Close())
	s, err = Open(dir)
	must(t, err)
	defer s.Close()
	got, err = s.Results()
	if err != nil || len(got) != 2 || got[0].Dose != nil || got[0].Verdict != Leak {
		t.Fatalf("results after upgrade: %+v, %v", got, err)
	}
	must(t, s.RecordResult(r))
	must(t, s.Flush())
	if got, err = s.Results(); err != nil || got[0].Dose == nil || got[0].Dose.PerChain != 352 {
		t.Fatalf("dose after upgrade: %+v, %v", got, err)
	}
}
