package contract_test

import (
	"fmt"
	"maps"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wfplab/wfplab/lab/agentfmt"
	"github.com/wfplab/wfplab/lab/contract"
)

func sampleLine(seq uint64, tags string) string {
	return fmt.Sprintf("S1 seq=%d t_us=%d np_bytes=1000 np_allocs=10 np_frees=5 cpu_kernel_ms=1 cpu_user_ms=1 cpu_idle_ms=1 drv=absent%s",
		seq, 1000+seq, tags)
}

func mustSample(t *testing.T, line string) contract.Sample {
	t.Helper()
	s, err := agentfmt.ParseSample(line)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// apply folds one agent line into tr and returns a copy of the table after it.
func apply(t *testing.T, tr *contract.TagTable, line string) map[string]contract.TagUsage {
	t.Helper()
	s := mustSample(t, line)
	tr.Apply(s.Seq, s.ChangedTags)
	return maps.Clone(tr.Tags())
}

func TestTagTableCarriesUnchangedTagsForward(t *testing.T) {
	var tr contract.TagTable
	got := apply(t, &tr, sampleLine(0, " T.Nnbl=10,5,640 T.Ntf%20=3,1,256"))
	want := map[string]contract.TagUsage{"Nnbl": {Allocs: 10, Frees: 5, Bytes: 640}, "Ntf ": {Allocs: 3, Frees: 1, Bytes: 256}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("after seq 0 (-want +got):\n%s", diff)
	}
	got = apply(t, &tr, sampleLine(1, " T.Nnbl=12,5,768"))
	want = map[string]contract.TagUsage{"Nnbl": {Allocs: 12, Frees: 5, Bytes: 768}, "Ntf ": {Allocs: 3, Frees: 1, Bytes: 256}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("after seq 1 (-want +got):\n%s", diff)
	}
	got = apply(t, &tr, sampleLine(2, ""))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("after seq 2, no change (-want +got):\n%s", diff)
	}
	// A tag that drops to zero usage is a change too and stays in the table at zero.
	got = apply(t, &tr, sampleLine(3, " T.Ntf%20=3,3,0"))
	want = map[string]contract.TagUsage{"Nnbl": {Allocs: 12, Frees: 5, Bytes: 768}, "Ntf ": {Allocs: 3, Frees: 3, Bytes: 0}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("after seq 3 (-want +got):\n%s", diff)
	}
	if tr.Gaps() != 0 {
		t.Fatalf("gaps = %d, want 0", tr.Gaps())
	}
}

func TestTagTableNewStreamAndGaps(t *testing.T) {
	var tr contract.TagTable
	apply(t, &tr, sampleLine(0, " T.Nnbl=10,5,640 T.Abcd=1,0,64"))
	apply(t, &tr, sampleLine(2, " T.Nnbl=11,5,700")) // seq 1 lost
	if tr.Gaps() != 1 {
		t.Fatalf("gaps = %d, want 1", tr.Gaps())
	}
	// A new agent process starts at seq 0 with every non-zero tag: old tags go away.
	got := apply(t, &tr, sampleLine(0, " T.Nnbl=1,0,64"))
	if diff := cmp.Diff(map[string]contract.TagUsage{"Nnbl": {Allocs: 1, Frees: 0, Bytes: 64}}, got); diff != "" {
		t.Fatalf("after restart (-want +got):\n%s", diff)
	}
}
