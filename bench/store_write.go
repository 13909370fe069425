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
	"github.com/wfplab/wfplab/traffic"
)

// The Record methods queue a write and return at once; the writer commits it within
// commitEvery. They fail only on bad input, a closed store or a stalled writer; a write
// that fails inside SQLite is reported by Flush, Close and Err.

// RecordTarget records (or updates) a target.
func (s *Store) RecordTarget(t TargetInfo) error {
	if t.Name == "" {
		return errors.New("bench: record target: name is empty")
	}
	return s.enqueue("record target "+t.Name, func(b *batch) error {
		_, err := b.exec(`INSERT INTO targets (name, os, product, arch, ord)
			VALUES (?, ?, ?, ?, (SELECT COALESCE(MAX(ord), 0) + 1 FROM targets))
			ON CONFLICT (name) DO UPDATE SET os = excluded.os, product = excluded.product, arch = excluded.arch`,
			t.Name, t.OS, t.Product, t.Arch)
		return err
	})
}

// RecordPhase records a phase, or updates it: call it when the phase starts (Ended zero)
// and again when it ends.
func (s *Store) RecordPhase(p PhaseInfo) error {
	if p.Target == "" || p.Phase == "" {
		return fmt.Errorf("bench: record phase: target %q and phase %q must both be set", p.Target, p.Phase)
	}
	return s.enqueue("record phase "+p.Target+"/"+p.Phase, func(b *batch) error {
		_, err := b.exec(`INSERT INTO phases (target, phase, os_build, netio, hotfix, started_ns, ended_ns, ord)
			VALUES (?, ?, ?, ?, ?, ?, ?, (SELECT COALESCE(MAX(ord), 0) + 1 FROM phases))
			ON CONFLICT (target, phase) DO UPDATE SET os_build = excluded.os_build, netio = excluded.netio,
				hotfix = excluded.hotfix, started_ns = excluded.started_ns, ended_ns = excluded.ended_ns`,
			p.Target, p.Phase, p.OSBuild, p.Netio, p.Hotfix, timeNS(p.Started), timeNS(p.Ended))
		return err
	})
}

// RecordWindow records a window, or updates it: call it when the window starts (End
// zero) and again when it ends, so a run killed mid-window still shows where it was.
func (s *Store) RecordWindow(w Window) error {
	if w.Target == "" || w.Phase == "" || w.Profile == "" {
		return fmt.Errorf("bench: record window: target %q, phase %q and profile %q must all be set", w.Target, w.Phase, w.Profile)
	}
	return s.enqueue("record window "+w.Target+"/"+w.Phase+"/"+w.Profile, func(b *batch) error {
		_, err := b.exec(`INSERT INTO windows (target, phase, profile, start_ns, end_ns, ord)
			VALUES (?, ?, ?, ?, ?, (SELECT COALESCE(MAX(ord), 0) + 1 FROM windows))
			ON CONFLICT (target, phase, profile) DO UPDATE SET start_ns = excluded.start_ns, end_ns = excluded.end_ns`,
			w.Target, w.Phase, w.Profile, timeNS(w.Start), timeNS(w.End))
		return err
	})
}

type layerRow struct {
	layer string
	c     contract.LayerCounters
}

type tagRow struct {
	tag string
	u   contract.TagUsage
}

// RecordSample records one sample: pool totals, driver counters summed over layers and
// per layer, and the tags that changed. at is the host time the sample arrived.
func (s *Store) RecordSample(target, phase string, at time.Time, smp contract.Sample) error {
	if target == "" || phase == "" {
		return fmt.Errorf("bench: record sample: target %q and phase %q must both be set", target, phase)
	}
	// Copy the maps now: the caller may reuse them once this returns.
	layers := make([]layerRow, 0, len(smp.Driver.Layers))
	var sum contract.LayerCounters
	// multi_blocked is NULL unless every layer reported it (a version 2 driver).
	var multiBlocked any
	allMulti := len(smp.Driver.Layers) > 0
	for l, c := range smp.Driver.Layers {
		layers = append(layers, layerRow{string(l), c})
		sum.Classify += c.Classify
		sum.Blocked += c.Blocked
		sum.NBLs += c.NBLs
		sum.MultiChain += c.MultiChain
		sum.MultiBlocked += c.MultiBlocked
		allMulti = allMulti && c.HasMultiBlocked
	}
	if allMulti {
		multiBlocked = u64(sum.MultiBlocked)
	}
	sort.Slice(layers, func(i, j int) bool { return layers[i].layer < layers[j].layer })
	tags := make([]tagRow, 0, len(smp.ChangedTags))
	for t, u := range smp.ChangedTags {
		tags = append(tags, tagRow{t, u})
	}
	sort.Slice(tags, func(i, j int) bool { return tags[i].tag < tags[j].tag })
	what := fmt.Sprintf("record sample %s/%s seq %d", target, phase, smp.Seq)
	return s.enqueue(what, func(b *batch) error {
		res, err := b.exec(`INSERT INTO samples (target, phase, at_ns, seq, guest_us, np_bytes, np_allocs, np_frees,
			cpu_kernel_ms, cpu_user_ms, cpu_idle_ms, drv_state, classify, blocked, nbls, multi_chain, multi_blocked)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			target, phase, timeNS(at), u64(smp.Seq), u64(smp.TimeUS), u64(smp.NPBytes), u64(smp.NPAllocs), u64(smp.NPFrees),
			u64(smp.CPUKernelMS), u64(smp.CPUUserMS), u64(smp.CPUIdleMS), smp.Driver.State,
			u64(sum.Classify), u64(sum.Blocked), u64(sum.NBLs), u64(sum.MultiChain), multiBlocked)
		if err != nil {
			return err
		}
		id, err := res.LastInsertId()
		if err != nil {
			return err
		}
		for _, l := range layers {
			h := l.c.Hist
			if _, err := b.exec(`INSERT INTO layer_counters (sample_id, layer, classify, blocked, nbls, multi_chain,
				h1, h2, h3_4, h5_8, h9_16, h17) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				id, l.layer, u64(l.c.Classify), u64(l.c.Blocked), u64(l.c.NBLs), u64(l.c.MultiChain),
				u64(h[0]), u64(h[1]), u64(h[2]), u64(h[3]), u64(h[4]), u64(h[5])); err != nil {
				return err
			}
		}
		for _, t := range tags {
			if _, err := b.exec(`INSERT INTO tag_changes (sample_id, tag, allocs, frees, bytes) VALUES (?, ?, ?, ?, ?)`,
				id, t.tag, u64(t.u.Allocs), u64(t.u.Frees), u64(t.u.Bytes)); err != nil {
				return err
			}
		}
		return nil
	})
}

// RecordEvent records an event. Target "" is a run-wide event.
func (s *Store) RecordEvent(e Event) error {
	if e.Kind == "" {
		return fmt.Errorf("bench: record event for %q: kind is empty", e.Target)
	}
	if e.At.IsZero() {
		e.At = time.Now()
	}
	return s.enqueue("record event "+e.Kind, func(b *batch) error {
		_, err := b.exec(`INSERT INTO events (target, phase, at_ns, kind, message) VALUES (?, ?, ?, ?, ?)`,
			e.Target, e.Phase, timeNS(e.At), e.Kind, e.Message)
		return err
	})
}

// RecordTraffic records one second of generated traffic.
func (s *Store) RecordTraffic(target, phase, profile string, t traffic.Tick) error {
	if target == "" || phase == "" || profile == "" {
		return fmt.Errorf("bench: record traffic: target %q, phase %q and profile %q must all be set", target, phase, profile)
	}
	// A stream reset is the blocked burst doing its job (resets has its own column), not a
	// send error; errors_by_kind keeps every kind.
	var errs uint64
	for _, n := range t.Delta.SendErrors() {
		errs += n
	}
	byKind := "{}"
	if len(t.Delta.Errors) > 0 {
		j, err := json.Marshal(t.Delta.Errors) // map keys come out sorted
		if err != nil {
			return fmt.Errorf("bench: record traffic %s/%s/%s: %w", target, phase, profile, err)
		}
		byKind = string(j)
	}
	d := t.Delta
	return s.enqueue("record traffic "+target+"/"+phase+"/"+profile, func(b *batch) error {
		_, err := b.exec(`INSERT INTO traffic (target, phase, profile, at_ns, packets, bytes, bursts, conns, resets,
			errors, errors_by_kind, span_ns, syscalls, frames, fwd_frames, fwd_datagrams, fwd_bytes)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			target, phase, profile, timeNS(t.At), u64(d.Packets), u64(d.Bytes), u64(d.Bursts), u64(d.Conns),
			u64(d.Resets), u64(errs), byKind, int64(t.Span), u64(d.Syscalls),
			u64(d.Frames), u64(d.ForwardedFrames), u64(d.ForwardedDatagrams), u64(d.ForwardedBytes))
		return err
	})
}

// RecordResult records a cell's analysis, replacing an earlier result for the same cell.
func (s *Store) RecordResult(r CellResult) error {
	if r.Target == "" || r.Phase == "" || r.Profile == "" {
		return fmt.Errorf("bench: record result: target %q, phase %q and profile %q must all be set", r.Target, r.Phase, r.Profile)
	}
	tags := r.TopTags
	if tags == nil {
		tags = []TagGrowth{}
	}
	tagJSON, err := json.Marshal(tags)
	if err != nil {
		return fmt.Errorf("bench: record result %s/%s/%s: %w", r.Target, r.Phase, r.Profile, err)
	}
	var dose sql.NullString
	if r.Dose != nil {
		// Its values are finite: a fit that failed leaves Dose nil.
		j, err := json.Marshal(r.Dose)
		if err != nil {
			return fmt.Errorf("bench: record result %s/%s/%s: dose: %w", r.Target, r.Phase, r.Profile, err)
		}
		dose = sql.NullString{String: string(j), Valid: true}
	}
	return s.enqueue("record result "+r.Target+"/"+r.Phase+"/"+r.Profile, func(b *batch) error {
		_, err := b.exec(`INSERT INTO results (target, phase, profile, slope, lo, hi, n, n_eff, chains_per_sec,
			packets_per_sec, bytes_per_chain, top_tags, verdict, expected, met, note, dose, ord)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, (SELECT COALESCE(MAX(ord), 0) + 1 FROM results))
			ON CONFLICT (target, phase, profile) DO UPDATE SET slope = excluded.slope, lo = excluded.lo,
				hi = excluded.hi, n = excluded.n, n_eff = excluded.n_eff, chains_per_sec = excluded.chains_per_sec,
				packets_per_sec = excluded.packets_per_sec, bytes_per_chain = excluded.bytes_per_chain,
				top_tags = excluded.top_tags, verdict = excluded.verdict, expected = excluded.expected,
				met = excluded.met, note = excluded.note, dose = excluded.dose`,
			r.Target, r.Phase, r.Profile, sqlFloat(r.Leak.Slope), sqlFloat(r.Leak.Lo), sqlFloat(r.Leak.Hi), r.Leak.N, sqlFloat(r.Leak.NEff),
			sqlFloat(r.ChainsPerSec), sqlFloat(r.PacketsPerSec), sqlFloat(r.BytesPerChain), string(tagJSON),
			string(r.Verdict), string(r.Expected), r.Met, r.Note, dose)
		return err
	})
}

// FinishRun sets the run's end time.
func (s *Store) FinishRun(at time.Time) error {
	if at.IsZero() {
		at = time.Now()
	}
	return s.enqueue("finish run", func(b *batch) error {
		_, err := b.exec(`UPDATE run SET finished_ns = ?`, timeNS(at))
		return err
	})
}

// sqlFloat stores a float; NaN becomes NULL (SQLite has no NaN) and is read back as NaN.
func sqlFloat(f float64) any {
	if math.IsNaN(f) {
		return nil
	}
	return f
}
