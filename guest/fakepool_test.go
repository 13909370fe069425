package guest

import (
	"fmt"
	"maps"
	"regexp"
	"strconv"
	"testing"

	"github.com/wfplab/wfplab/lab/agentfmt"
	"github.com/wfplab/wfplab/lab/contract"
)

// The synthetic pool of agent/fakepool/fakepool.c, computed the same way: tag i's
// nonpaged numbers after k earlier successful queries.
const fakeTags = 1500

func fakeTag(i int) string {
	switch i {
	case 0:
		return "Wrap"
	case 1:
		return "Ntf "
	case 2:
		return "%=/,"
	case 3:
		return "Bad\x7f"
	}
	return string([]byte{'F', byte('a' + (i/676)%26), byte('a' + (i/26)%26), byte('a' + i%26)})
}

func fakeRate(i int) uint64 {
	switch {
	case i == 0:
		return 0x40
	case i%20 == 0:
		return uint64(i + 1)
	}
	return 0
}

func fakeValues(i int, k uint64) contract.TagUsage {
	if i%11 == 10 {
		return contract.TagUsage{}
	}
	base, spread := 1000+3*uint64(i), 100+uint64(i)
	if i == 0 {
		base, spread = 0xFFFFFF00, 5
	}
	allocs := base + k*fakeRate(i)
	return contract.TagUsage{Allocs: allocs, Frees: allocs - spread, Bytes: 64*uint64(i+1) + 8*k*fakeRate(i)}
}

var tagsDeferredRe = regexp.MustCompile(` tags_deferred=([0-9]+)(?: |\r?\n?$)`)

// checkFakePoolStream holds the agent's S1 lines to the synthetic pool: totals exact
// in every sample, per-tag values exact or stale but never invented, the wrapping
// 32-bit counter widened, the backlog reported with tags_deferred and drained, and in
// the end the reader's table equal to the pool.
func checkFakePoolStream(t *testing.T, lines []string) {
	t.Helper()
	byTag := make(map[string]int, fakeTags)
	for i := 0; i < fakeTags; i++ {
		byTag[fakeTag(i)] = i
	}
	var tr contract.TagTable
	var table map[string]contract.TagUsage
	appearances := map[string]int{}
	samples := 0
	for _, line := range lines[1:] {
		s, err := agentfmt.ParseSample(line)
		if err != nil {
			t.Fatalf("line %d %q: %v", samples+1, clip(line), err)
		}
		k := s.Seq
		if k != uint64(samples) {
			t.Fatalf("seq %d, want %d", k, samples)
		}
		samples++
		var want contract.TagUsage
		var wantBytes, wantAllocs, wantFrees uint64
		for i := 0; i < fakeTags; i++ {
			want = fakeValues(i, k)
			wantBytes += want.Bytes
			wantAllocs += want.Allocs
			wantFrees += want.Frees
		}
		if s.NPBytes != wantBytes || s.NPAllocs != wantAllocs || s.NPFrees != wantFrees {
			t.Errorf("seq %d totals bytes/allocs/frees %d/%d/%d, want %d/%d/%d",
				k, s.NPBytes, s.NPAllocs, s.NPFrees, wantBytes, wantAllocs, wantFrees)
		}
		m := tagsDeferredRe.FindStringSubmatch(line)
		if k == 0 && m == nil {
			t.Errorf("sample 0 holds %d of %d tags but no tags_deferred", len(s.ChangedTags), fakeTags)
		}
		for tag, got := range s.ChangedTags {
			i, ok := byTag[tag]
			if !ok {
				t.Errorf("seq %d: unknown tag %q", k, tag)
				continue
			}
			if got != fakeValues(i, k) {
				t.Errorf("seq %d: T.%q=%+v, pool has %+v", k, tag, got, fakeValues(i, k))
			}
			appearances[tag]++
		}
		tr.Apply(s.Seq, s.ChangedTags)
		table = maps.Clone(tr.Tags())
		for tag, got := range table {
			i := byTag[tag]
			if !reachedBy(i, got, k) {
				t.Errorf("seq %d: reader holds %q=%+v, which the pool never had", k, tag, got)
			}
		}
		if m != nil {
			n, _ := strconv.Atoi(m[1])
			if n == 0 {
				t.Errorf("seq %d: tags_deferred=0 should be left out", k)
			}
		}
	}
	if samples < 12 {
		t.Fatalf("only %d samples", samples)
	}
	last := uint64(samples - 1)
	nonZero := 0
	for i := 0; i < fakeTags; i++ {
		tag, want := fakeTag(i), fakeValues(i, last)
		if want == (contract.TagUsage{}) {
			if appearances[tag] != 0 {
				t.Errorf("tag %q has no nonpaged usage but was printed %d times", tag, appearances[tag])
			}
			continue
		}
		nonZero++
		if table[tag] != want {
			t.Errorf("after %d samples the reader holds %q=%+v, the pool %+v", samples, tag, table[tag], want)
		}
		if fakeRate(i) == 0 && appearances[tag] != 1 {
			t.Errorf("unchanging tag %q printed %d times, want once", tag, appearances[tag])
		}
	}
	if len(table) != nonZero {
		t.Errorf("reader holds %d tags, the pool has %d with nonpaged usage", len(table), nonZero)
	}
	if w := table["Wrap"]; w.Allocs <= 0xFFFFFFFF {
		t.Errorf("Wrap allocs %d: the 32-bit counter was not widened past 2^32", w.Allocs)
	}
	if testing.Verbose() {
		fmt.Printf("fakepool: %d samples, %d tags with nonpaged usage, all converged\n", samples, nonZero)
	}
}

// reachedBy reports whether tag i had usage u after some k' <= k queries.
func reachedBy(i int, u contract.TagUsage, k uint64) bool {
	r := fakeRate(i)
	if r == 0 {
		return u == fakeValues(i, 0)
	}
	base := fakeValues(i, 0)
	if u.Allocs < base.Allocs || (u.Allocs-base.Allocs)%r != 0 {
		return false
	}
	kk := (u.Allocs - base.Allocs) / r
	return kk <= k && u == fakeValues(i, kk)
}
