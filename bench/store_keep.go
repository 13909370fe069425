package bench

import (
	"fmt"
	"slices"
	"sort"

	"github.com/wfplab/wfplab/lab/contract"
)

// keptSamples are one target's pool samples, kept by KeepPool, with their store ids.
type keptSamples struct {
	ids  []int64
	pool []PoolPoint
}

// KeepPool reads every pool sample of the store in one pass and keeps them: from then on
// Pool(target) and Tags(target) answer from memory, and samples written after the call
// are not seen. For a reader that reads a run's samples more than once (wfplab report:
// the analysis, then the charts); a million samples take about 140 MB.
func (s *Store) KeepPool() error {
	// A store of schema 4 or older, opened read-only, has no multi_blocked: NULL, as unknown.
	multiBlocked := "multi_blocked"
	if s.readOnly && s.version < 5 {
		multiBlocked = "NULL"
	}
	kept := map[string]*keptSamples{}
	names := map[string]string{} // one string per target and phase name, not one per sample
	intern := func(b []byte) string {
		if v, ok := names[string(b)]; ok {
			return v
		}
		v := string(b)
		names[v] = v
		return v
	}
	// Sized first: growing slices of a million samples cost more than the read itself.
	counts, err := s.query("sample counts", `SELECT target, count(*) FROM samples GROUP BY target`)
	if err != nil {
		return err
	}
	for counts.Next() {
		var target string
		var n int
		if err := counts.Scan(&target, &n); err != nil {
			counts.Close()
			return fmt.Errorf("bench: count samples in %s: %w", s.path, err)
		}
		names[target] = target
		kept[target] = &keptSamples{ids: make([]int64, 0, n), pool: make([]PoolPoint, 0, n)}
	}
	if err := counts.Close(); err != nil {
		return fmt.Errorf("bench: count samples in %s: %w", s.path, err)
	}
	var cur *keptSamples
	var curTarget string
	err = s.rawQuery("samples", `SELECT id, target, phase, at_ns, guest_us, seq, np_bytes, np_allocs, np_frees,
		blocked, multi_chain, nbls, `+multiBlocked+` FROM samples ORDER BY id`, func(r *rawRows) error {
		target := r.text(1)
		if cur == nil || string(target) != curTarget {
			curTarget = intern(target)
			if cur = kept[curTarget]; cur == nil {
				cur = &keptSamples{}
				kept[curTarget] = cur
			}
		}
		p := PoolPoint{Target: curTarget, Phase: intern(r.text(2)), At: nsTime(r.int64(3)),
			GuestUS: uint64(r.int64(4)), Seq: uint64(r.int64(5)), NPBytes: uint64(r.int64(6)),
			NPAllocs: uint64(r.int64(7)), NPFrees: uint64(r.int64(8)), Blocked: uint64(r.int64(9)),
			MultiChain: uint64(r.int64(10)), NBLs: uint64(r.int64(11))}
		if !r.null(12) {
			p.MultiBlocked, p.HasMultiBlocked = uint64(r.int64(12)), true
		}
		cur.ids = append(cur.ids, r.int64(0))
		cur.pool = append(cur.pool, p)
		return nil
	})
	if err != nil {
		return err
	}
	s.keptMu.Lock()
	s.kept = kept
	s.keptMu.Unlock()
	return nil
}

// keptFor is target's kept samples, or nil when KeepPool was not called (or target is "").
func (s *Store) keptFor(target string) (*keptSamples, bool) {
	s.keptMu.Lock()
	defer s.keptMu.Unlock()
	if s.kept == nil || target == "" {
		return nil, false
	}
	k := s.kept[target]
	if k == nil {
		k = &keptSamples{}
	}
	return k, true
}

// keptPool is Pool from the kept samples: shared, so callers must not change them (the
// capacity is clipped so an append copies).
func (k *keptSamples) keptPool() []PoolPoint {
	if len(k.pool) == 0 {
		return nil
	}
	return slices.Clip(k.pool)
}

// walkKeptTags is walkTags over kept samples: the tag changes come from one pass over
// tag_changes, merged with the target's samples by id.
func (s *Store) walkKeptTags(target string, k *keptSamples, visit func(target, phase string, pos samplePos, table *tagTable)) error {
	type change struct {
		id  int64
		tag string
		use contract.TagUsage
	}
	var changes []change
	tags := map[string]string{}
	err := s.rawQuery("tags", `SELECT sample_id, tag, allocs, frees, bytes FROM tag_changes ORDER BY sample_id, tag`,
		func(r *rawRows) error {
			id := r.int64(0)
			// Only this target's samples: a binary search, the ids being in order.
			if _, ok := slices.BinarySearch(k.ids, id); !ok {
				return nil
			}
			b := r.text(1)
			tag, ok := tags[string(b)]
			if !ok {
				tag = string(b)
				tags[tag] = tag
			}
			changes = append(changes, change{id, tag, contract.TagUsage{Allocs: uint64(r.int64(2)),
				Frees: uint64(r.int64(3)), Bytes: uint64(r.int64(4))}})
			return nil
		})
	if err != nil {
		return err
	}
	if !sort.SliceIsSorted(changes, func(i, j int) bool { return changes[i].id < changes[j].id }) {
		return fmt.Errorf("bench: read tags from %s: tag changes out of sample order", s.path)
	}
	tables := map[string]*tagTable{}
	next := 0
	for i, p := range k.pool {
		id := k.ids[i]
		var changed map[string]contract.TagUsage
		for ; next < len(changes) && changes[next].id == id; next++ {
			if changed == nil {
				changed = map[string]contract.TagUsage{}
			}
			changed[changes[next].tag] = changes[next].use
		}
		tt := tables[p.Phase]
		if tt == nil {
			tt = &tagTable{}
			tables[p.Phase] = tt
		}
		tt.apply(p.Seq, changed)
		visit(target, p.Phase, samplePos{id: id, at: p.At, seq: p.Seq}, tt)
	}
	return nil
}
