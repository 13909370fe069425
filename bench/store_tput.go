package bench

import (
	"database/sql"
	"fmt"
	"time"
)

// tputSchema holds the throughput windows (schema 3): what the runner offered and sent,
// recorded as each window starts and ends, and the guest-side figures the analysis
// derives from the samples inside it (NULL until analysed).
const tputSchema = `
CREATE TABLE IF NOT EXISTS tput_windows (
	target      TEXT NOT NULL,
	phase       TEXT NOT NULL,
	profile     TEXT NOT NULL,
	idx         INTEGER NOT NULL,
	start_ns    INTEGER NOT NULL,
	end_ns      INTEGER NOT NULL,
	asked_pps   REAL NOT NULL,
	sent        INTEGER NOT NULL,
	fwd_frames  INTEGER NOT NULL,
	frame_links INTEGER NOT NULL,
	samples     INTEGER,
	sent_pps    REAL,
	cls_stream    REAL,
	cls_forward   REAL,
	cls_transport REAL,
	fwd_pps     REAL,
	cpu_pct     REAL,
	PRIMARY KEY (target, phase, profile, idx)
);
`

// TputWindow is one throughput window: the driver permitting and counting while a profile
// is offered at AskedPPS. The figures are per second of guest time over the window after
// its settle; NaN when the window has too few samples (or, Forwarded, no frame links).
type TputWindow struct {
	Target, Phase, Profile string
	Index                  int // 0 .. windows-1
	Start, End             time.Time
	AskedPPS               float64
	Sent                   uint64 // packets the generator sent
	ForwardedFrames        uint64 // frames the guest forwarded out (frame links only)
	FrameLinks             bool   // the forward path ran over frame links, so ForwardedFrames counts

	Samples    int        // samples the figures span (0: not analysed)
	SentPPS    float64    // packets sent per second of host time
	Classified [3]float64 // packets (NBLs) classified per second, by layer: stream, forward, transport
	FwdPPS     float64    // forwarded frames per second
	CPUPct     float64    // guest CPU busy (kernel + user), percent of all processors
}

// upgradeFrom2 adds version 3's throughput table.
func (s *Store) upgradeFrom2() error {
	return s.migrate(3, tputSchema)
}

// RecordTputWindow records a throughput window as it starts (End zero) and again as it
// ends; it leaves the figures alone.
func (s *Store) RecordTputWindow(w TputWindow) error {
	if w.Target == "" || w.Phase == "" || w.Profile == "" || w.Index < 0 {
		return fmt.Errorf("bench: record throughput window: target %q, phase %q, profile %q and index %d must all be set",
			w.Target, w.Phase, w.Profile, w.Index)
	}
	return s.enqueue(fmt.Sprintf("record throughput window %s/%s/%s#%d", w.Target, w.Phase, w.Profile, w.Index), func(b *batch) error {
		_, err := b.exec(`INSERT INTO tput_windows (target, phase, profile, idx, start_ns, end_ns, asked_pps, sent, fwd_frames, frame_links)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (target, phase, profile, idx) DO UPDATE SET start_ns = excluded.start_ns, end_ns = excluded.end_ns,
				asked_pps = excluded.asked_pps, sent = excluded.sent, fwd_frames = excluded.fwd_frames, frame_links = excluded.frame_links`,
			w.Target, w.Phase, w.Profile, w.Index, timeNS(w.Start), timeNS(w.End), w.AskedPPS, u64(w.Sent), u64(w.ForwardedFrames), w.FrameLinks)
		return err
	})
}

// RecordTputFigures stores a window's analysed figures.
func (s *Store) RecordTputFigures(w TputWindow) error {
	return s.enqueue(fmt.Sprintf("record throughput figures %s/%s/%s#%d", w.Target, w.Phase, w.Profile, w.Index), func(b *batch) error {
		_, err := b.exec(`UPDATE tput_windows SET samples = ?, sent_pps = ?, cls_stream = ?, cls_forward = ?, cls_transport = ?,
			fwd_pps = ?, cpu_pct = ? WHERE target = ? AND phase = ? AND profile = ? AND idx = ?`,
			w.Samples, sqlFloat(w.SentPPS), sqlFloat(w.Classified[0]), sqlFloat(w.Classified[1]), sqlFloat(w.Classified[2]),
			sqlFloat(w.FwdPPS), sqlFloat(w.CPUPct), w.Target, w.Phase, w.Profile, w.Index)
		return err
	})
}

// TputWindows returns a target's throughput windows ("" for all), by target (in the run's
// order), then as recorded, with whatever figures the last analysis stored.
func (s *Store) TputWindows(target string) ([]TputWindow, error) {
	if s.readOnly && s.version < 3 {
		return nil, nil // an older store opened read-only: it has no throughput table
	}
	rows, err := s.query("throughput windows", `SELECT target, phase, profile, idx, start_ns, end_ns, asked_pps, sent, fwd_frames,
		frame_links, COALESCE(samples, 0), sent_pps, cls_stream, cls_forward, cls_transport, fwd_pps, cpu_pct
		FROM tput_windows WHERE `+targetFilter+`
		ORDER BY (SELECT ord FROM targets WHERE name = tput_windows.target), rowid`, target)
	if err != nil {
		return nil, err
	}
	return readAll(s, "throughput windows", rows, func(r *sql.Rows) (TputWindow, error) {
		var w TputWindow
		var start, end, sent, fwd int64
		var f [6]sql.NullFloat64
		err := r.Scan(&w.Target, &w.Phase, &w.Profile, &w.Index, &start, &end, &w.AskedPPS, &sent, &fwd, &w.FrameLinks,
			&w.Samples, &f[0], &f[1], &f[2], &f[3], &f[4], &f[5])
		w.Start, w.End, w.Sent, w.ForwardedFrames = nsTime(start), nsTime(end), uint64(sent), uint64(fwd)
		w.SentPPS, w.FwdPPS, w.CPUPct = nanIfNull(f[0]), nanIfNull(f[4]), nanIfNull(f[5])
		for i := range w.Classified {
			w.Classified[i] = nanIfNull(f[1+i])
		}
		return w, err
	})
}

// CPUPoint is one sample's system-wide CPU times (GetSystemTimes on the guest).
type CPUPoint struct {
	Phase                    string
	At                       time.Time
	GuestUS                  uint64
	KernelMS, UserMS, IdleMS uint64
}

// CPU returns a target's CPU times, in arrival order.
func (s *Store) CPU(target string) ([]CPUPoint, error) {
	rows, err := s.query("cpu", `SELECT phase, at_ns, guest_us, cpu_kernel_ms, cpu_user_ms, cpu_idle_ms
		FROM samples WHERE target = ? ORDER BY id`, target)
	if err != nil {
		return nil, err
	}
	return readAll(s, "cpu", rows, func(r *sql.Rows) (CPUPoint, error) {
		var p CPUPoint
		var at int64
		var n [4]int64
		err := r.Scan(&p.Phase, &at, &n[0], &n[1], &n[2], &n[3])
		p.At = nsTime(at)
		p.GuestUS, p.KernelMS, p.UserMS, p.IdleMS = uint64(n[0]), uint64(n[1]), uint64(n[2]), uint64(n[3])
		return p, err
	})
}
