package agent

import (
	"fmt"
	"reflect"
	"testing"
)

func sampleLine(seq uint64, tags string) string {
	return fmt.Sprintf("S1 seq=%d t_us=%d np_bytes=1000 np_allocs=10 np_frees=5 cpu_kernel_ms=1 cpu_user_ms=1 cpu_idle_ms=1 drv=absent%s",
		seq, 1000+seq, tags)
}

func mustSample(t *testing.T, line string) Sample {
	t.Helper()
	s, err := ParseSample(line)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTrackerCarriesUnchangedTagsForward(t *testing.T) {
	var tr Tracker
	got := tr.Apply(mustSample(t, sampleLine(0, " T.Nnbl=10,5,640 T.Ntf%20=3,1,256")))
	want := map[string]TagUsage{"Nnbl": {10, 5, 640}, "Ntf ": {3, 1, 256}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after seq 0: %v, want %v", got, want)
	}
	got = tr.Apply(mustSample(t, sampleLine(1, " T.Nnbl=12,5,768")))
	want = map[string]TagUsage{"Nnbl": {12, 5, 768}, "Ntf ": {3, 1, 256}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after seq 1: %v, want %v", got, want)
	}
	got = tr.Apply(mustSample(t, sampleLine(2, "")))
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after seq 2 (no change): %v, want %v", got, want)
	}
	// A tag that drops to zero usage is a change too and stays in the table at zero.
	got = tr.Apply(mustSample(t, sampleLine(3, " T.Ntf%20=3,3,0")))
	if got["Ntf "] != (TagUsage{3, 3, 0}) || got["Nnbl"] != (TagUsage{12, 5, 768}) {
		t.Fatalf("after seq 3: %v", got)
	}
	// The returned map is the caller's: changing it does not change the tracker.
	got["Nnbl"] = TagUsage{}
	if again := tr.Apply(mustSample(t, sampleLine(4, ""))); again["Nnbl"] != (TagUsage{12, 5, 768}) {
		t.Fatalf("caller's edit leaked into the tracker: %v", again)
	}
	if tr.Gaps() != 0 {
		t.Fatalf("gaps = %d, want 0", tr.Gaps())
	}
}

func TestTrackerNewStreamAndGaps(t *testing.T) {
	var tr Tracker
	tr.Apply(mustSample(t, sampleLine(0, " T.Nnbl=10,5,640 T.Abcd=1,0,64")))
	tr.Apply(mustSample(t, sampleLine(2, " T.Nnbl=11,5,700"))) // seq 1 lost
	if tr.Gaps() != 1 {
		t.Fatalf("gaps = %d, want 1", tr.Gaps())
	}
	// A new agent process starts at seq 0 with every non-zero tag: old tags go away.
	got := tr.Apply(mustSample(t, sampleLine(0, " T.Nnbl=1,0,64")))
	if want := map[string]TagUsage{"Nnbl": {1, 0, 64}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after restart: %v, want %v", got, want)
	}
}
