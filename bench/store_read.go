package bench

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/wfplab/wfplab/lab/contract"
)

// Readers see every committed write; on a store being written they first wait for the
// writes queued before the call. A target of "" means every target (for Events, also
// the run-wide events).

const targetFilter = `(?1 = '' OR target = ?1)`

func (s *Store) query(what string, q string, args ...any) (*sql.Rows, error) {
	if err := s.waitCommitted(); err != nil {
		return nil, err
	}
	rows, err := s.rdb.Query(q, args...)
	if err != nil {
		return nil, fmt.Errorf("bench: read %s from %s: %w", what, s.path, err)
	}
	return rows, nil
}

// readAll scans every row with scan and closes rows.
func readAll[T any](s *Store, what string, rows *sql.Rows, scan func(*sql.Rows) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("bench: read %s from %s: %w", what, s.path, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("bench: read %s from %s: %w", what, s.path, err)
	}
	return out, nil
}

// Run returns the run's description.
func (s *Store) Run() (RunInfo, error) {
	rows, err := s.query("run", `SELECT id, scenario, scenario_text, provider, seed, tool, started_ns, finished_ns FROM run`)
	if err != nil {
		return RunInfo{}, err
	}
	runs, err := readAll(s, "run", rows, func(r *sql.Rows) (RunInfo, error) {
		var ri RunInfo
		var started, finished int64
		err := r.Scan(&ri.ID, &ri.Scenario, &ri.ScenarioText, &ri.Provider, &ri.Seed, &ri.Tool, &started, &finished)
		ri.Started, ri.Finished = nsTime(started), nsTime(finished)
		return ri, err
	})
	if err != nil {
		return RunInfo{}, err
	}
	if len(runs) != 1 {
		return RunInfo{}, fmt.Errorf("bench: read run from %s: %d run rows, want 1 (damaged store?)", s.path, len(runs))
	}
	return runs[0], nil
}

// Targets returns the targets in the order they were first recorded.
func (s *Store) Targets() ([]TargetInfo, error) {
	rows, err := s.query("targets", `SELECT name, os, product, arch FROM targets ORDER BY ord`)
	if err != nil {
		return nil, err
	}
	return readAll(s, "targets", rows, func(r *sql.Rows) (TargetInfo, error) {
		var t TargetInfo
		return t, r.Scan(&t.Name, &t.OS, &t.Product, &t.Arch)
	})
}

// Phases returns a target's phases in the order they were first recorded.
func (s *Store) Phases(target string) ([]PhaseInfo, error) {
	rows, err := s.query("phases", `SELECT target, phase, os_build, netio, hotfix, started_ns, ended_ns
		FROM phases WHERE `+targetFilter+` ORDER BY ord`, target)
	if err != nil {
		return nil, err
	}
	return readAll(s, "phases", rows, func(r *sql.Rows) (PhaseInfo, error) {
		var p PhaseInfo
		var started, ended int64
		err := r.Scan(&p.Target, &p.Phase, &p.OSBuild, &p.Netio, &p.Hotfix, &started, &ended)
		p.Started, p.Ended = nsTime(started), nsTime(ended)
		return p, err
	})
}

// Windows returns a target's windows in the order they were first recorded. End is zero
// for a window that never ended (the run was killed).
func (s *Store) Windows(target string) ([]Window, error) {
	rows, err := s.query("windows", `SELECT target, phase, profile, start_ns, end_ns
		FROM windows WHERE `+targetFilter+` ORDER BY ord`, target)
	if err != nil {
		return nil, err
	}
	return readAll(s, "windows", rows, func(r *sql.Rows) (Window, error) {
		var w Window
		var start, end int64
		err := r.Scan(&w.Target, &w.Phase, &w.Profile, &start, &end)
		w.Start, w.End = nsTime(start), nsTime(end)
		return w, err
	})
}

// Pool returns a target's samples in arrival order.
func (s *Store) Pool(target string) ([]PoolPoint, error) {
	if k, ok := s.keptFor(target); ok {
		return k.keptPool(), nil
	}
	// A store of schema 4 or older, opened read-only, has no multi_blocked: NULL, as unknown.
	multiBlocked := "multi_blocked"
	if s.readOnly && s.version < 5 {
		multiBlocked = "NULL"
	}
	rows, err := s.query("samples", `SELECT target, phase, at_ns, guest_us, seq, np_bytes, np_allocs, np_frees,
		blocked, multi_chain, nbls, `+multiBlocked+` FROM samples WHERE `+targetFilter+` ORDER BY id`, target)
	if err != nil {
		return nil, err
	}
	return readAll(s, "samples", rows, func(r *sql.Rows) (PoolPoint, error) {
		var p PoolPoint
		var at int64
		var n [8]int64
		var multiBlocked sql.NullInt64
		err := r.Scan(&p.Target, &p.Phase, &at, &n[0], &n[1], &n[2], &n[3], &n[4], &n[5], &n[6], &n[7], &multiBlocked)
		p.At = nsTime(at)
		p.MultiBlocked, p.HasMultiBlocked = uint64(multiBlocked.Int64), multiBlocked.Valid
		p.GuestUS, p.Seq, p.NPBytes, p.NPAllocs = uint64(n[0]), uint64(n[1]), uint64(n[2]), uint64(n[3])
		p.NPFrees, p.Blocked, p.MultiChain, p.NBLs = uint64(n[4]), uint64(n[5]), uint64(n[6]), uint64(n[7])
		return p, err
	})
}

// Layers returns a target's per-layer driver counters, by sample then layer name.
func (s *Store) Layers(target string) ([]LayerPoint, error) {
	rows, err := s.query("layer counters", `SELECT s.target, s.phase, s.at_ns, s.seq, l.layer, l.classify, l.blocked,
		l.nbls, l.multi_chain, l.h1, l.h2, l.h3_4, l.h5_8, l.h9_16, l.h17
		FROM layer_counters l JOIN samples s ON s.id = l.sample_id
		WHERE (?1 = '' OR s.target = ?1) ORDER BY s.id, l.layer`, target)
	if err != nil {
		return nil, err
	}
	return readAll(s, "layer counters", rows, func(r *sql.Rows) (LayerPoint, error) {
		var p LayerPoint
		var at, seq int64
		var n [10]int64
		err := r.Scan(&p.Target, &p.Phase, &at, &seq, &p.Layer, &n[0], &n[1], &n[2], &n[3],
			&n[4], &n[5], &n[6], &n[7], &n[8], &n[9])
		p.At, p.Seq = nsTime(at), uint64(seq)
		p.Classify, p.Blocked, p.NBLs, p.MultiChain = uint64(n[0]), uint64(n[1]), uint64(n[2]), uint64(n[3])
		for i := range p.Hist {
			p.Hist[i] = uint64(n[4+i])
		}
		return p, err
	})
}

// Tags returns, for every sample of a target, the full nonpaged tag table in force after
// it (sorted by tag), rebuilt from the changed tags the store keeps. The table restarts
// at each new phase and at each new agent process (seq 0), whose first sample carries
// every tag in use.
func (s *Store) Tags(target string) ([]TagPoint, error) {
	var out []TagPoint
	err := s.walkTags(target, func(target, phase string, at samplePos, tt *tagTable) {
		table := tt.Tags()
		for _, tag := range sortedKeys(table) {
			u := table[tag]
			out = append(out, TagPoint{Target: target, Phase: phase, At: at.at, Tag: tag,
				Allocs: u.Allocs, Frees: u.Frees, Bytes: u.Bytes})
		}
	})
	return out, err
}

// samplePos is where a sample sits in the store.
type samplePos struct {
	id  int64
	at  time.Time
	seq uint64
}

// tagTable is a contract.TagTable that counts its changes, so a reader that keeps copies
// of it copies only when it changed.
type tagTable struct {
	contract.TagTable
	version uint64
}

func (t *tagTable) apply(seq uint64, changed map[string]contract.TagUsage) {
	if len(changed) > 0 || seq == 0 || t.Tags() == nil {
		t.version++
	}
	t.Apply(seq, changed)
}

// walkTags calls visit after every sample of target (in arrival order) with the tag table
// in force after it (contract.TagTable's rule, one table per target and phase). visit
// must not keep the table.
func (s *Store) walkTags(target string, visit func(target, phase string, pos samplePos, table *tagTable)) error {
	if k, ok := s.keptFor(target); ok {
		return s.walkKeptTags(target, k, visit)
	}
	rows, err := s.query("tags", `SELECT s.id, s.target, s.phase, s.at_ns, s.seq, t.tag, t.allocs, t.frees, t.bytes
		FROM samples s LEFT JOIN tag_changes t ON t.sample_id = s.id
		WHERE (?1 = '' OR s.target = ?1) ORDER BY s.id, t.tag`, target)
	if err != nil {
		return err
	}
	defer rows.Close()
	type key struct{ target, phase string }
	tables := map[key]*tagTable{}
	var cur struct {
		key
		pos     samplePos
		changed map[string]contract.TagUsage
		valid   bool
	}
	flush := func() {
		if !cur.valid {
			return
		}
		tt := tables[cur.key]
		if tt == nil {
			tt = &tagTable{}
			tables[cur.key] = tt
		}
		tt.apply(cur.pos.seq, cur.changed)
		visit(cur.target, cur.phase, cur.pos, tt)
	}
	for rows.Next() {
		var id, at, seq int64
		var tgt, phase string
		var tag sql.NullString
		var a, f, b sql.NullInt64
		if err := rows.Scan(&id, &tgt, &phase, &at, &seq, &tag, &a, &f, &b); err != nil {
			return fmt.Errorf("bench: read tags from %s: %w", s.path, err)
		}
		if !cur.valid || id != cur.pos.id {
			flush()
			cur.key, cur.pos, cur.valid = key{tgt, phase}, samplePos{id: id, at: nsTime(at), seq: uint64(seq)}, true
			cur.changed = nil
		}
		if tag.Valid {
			if cur.changed == nil {
				cur.changed = map[string]contract.TagUsage{}
			}
			cur.changed[tag.String] = contract.TagUsage{Allocs: uint64(a.Int64), Frees: uint64(f.Int64), Bytes: uint64(b.Int64)}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("bench: read tags from %s: %w", s.path, err)
	}
	flush()
	return nil
}

// Events returns a target's events in the order they were recorded ("" = all, run-wide included).
func (s *Store) Events(target string) ([]Event, error) {
	rows, err := s.query("events", `SELECT target, phase, at_ns, kind, message FROM events
		WHERE `+targetFilter+` ORDER BY id`, target)
	if err != nil {
		return nil, err
	}
	return readAll(s, "events", rows, func(r *sql.Rows) (Event, error) {
		var e Event
		var at int64
		err := r.Scan(&e.Target, &e.Phase, &at, &e.Kind, &e.Message)
		e.At = nsTime(at)
		return e, err
	})
}

// Traffic returns a target's traffic seconds in the order they were recorded.
func (s *Store) Traffic(target string) ([]TrafficPoint, error) {
	rows, err := s.query("traffic", `SELECT target, phase, profile, at_ns, packets, bytes, bursts, errors, span_ns,
		frames, fwd_frames, fwd_datagrams, fwd_bytes FROM traffic WHERE `+targetFilter+` ORDER BY id`, target)
	if err != nil {
		return nil, err
	}
	return readAll(s, "traffic", rows, func(r *sql.Rows) (TrafficPoint, error) {
		var p TrafficPoint
		var at int64
		var n [8]int64
		var span int64
		err := r.Scan(&p.Target, &p.Phase, &p.Profile, &at, &n[0], &n[1], &n[2], &n[3], &span, &n[4], &n[5], &n[6], &n[7])
		p.At, p.Span = nsTime(at), time.Duration(span)
		p.Packets, p.Bytes, p.Bursts, p.Errors = uint64(n[0]), uint64(n[1]), uint64(n[2]), uint64(n[3])
		p.Frames, p.ForwardedFrames, p.ForwardedDatagrams, p.ForwardedBytes = uint64(n[4]), uint64(n[5]), uint64(n[6]), uint64(n[7])
		return p, err
	})
}

// Results returns the cell results in the order they were first recorded.
func (s *Store) Results() ([]CellResult, error) {
	rows, err := s.query("results", `SELECT target, phase, profile, slope, lo, hi, n, n_eff, chains_per_sec,
		packets_per_sec, bytes_per_chain, top_tags, verdict, expected, met, note, dose FROM results ORDER BY ord`)
	if err != nil {
		return nil, err
	}
	return readAll(s, "results", rows, func(r *sql.Rows) (CellResult, error) {
		var c CellResult
		var f [7]sql.NullFloat64
		var tags, verdict, expected string
		var dose sql.NullString
		err := r.Scan(&c.Target, &c.Phase, &c.Profile, &f[0], &f[1], &f[2], &c.Leak.N, &f[3], &f[4], &f[5], &f[6],
			&tags, &verdict, &expected, &c.Met, &c.Note, &dose)
		if err != nil {
			return c, err
		}
		if dose.Valid {
			c.Dose = new(Dose)
			if err := json.Unmarshal([]byte(dose.String), c.Dose); err != nil {
				return c, errors.New("bytes-per-chain fit of " + c.Target + "/" + c.Phase + "/" + c.Profile + ": " + err.Error())
			}
		}
		c.Leak.Slope, c.Leak.Lo, c.Leak.Hi, c.Leak.NEff = nanIfNull(f[0]), nanIfNull(f[1]), nanIfNull(f[2]), nanIfNull(f[3])
		c.ChainsPerSec, c.PacketsPerSec, c.BytesPerChain = nanIfNull(f[4]), nanIfNull(f[5]), nanIfNull(f[6])
		c.Verdict, c.Expected = Verdict(verdict), Verdict(expected)
		if err := json.Unmarshal([]byte(tags), &c.TopTags); err != nil {
			return c, errors.New("top tags of " + c.Target + "/" + c.Phase + "/" + c.Profile + ": " + err.Error())
		}
		if len(c.TopTags) == 0 {
			c.TopTags = nil
		}
		return c, nil
	})
}

func nanIfNull(f sql.NullFloat64) float64 {
	if !f.Valid {
		return math.NaN()
	}
	return f.Float64
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
