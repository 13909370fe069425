package traffic

import (
	"testing"
	"time"
)

func TestRecorderFilesEventsBySecondAndKeepsLateOnes(t *testing.T) {
	r := newRecorder(epoch, true)
	r.add(epoch.Add(100*time.Millisecond), event{packets: 3, bytes: 30, syscalls: 1})
	r.add(epoch.Add(999*time.Millisecond), event{packets: 1, errKind: "EPIPE", resets: 1})
	r.add(epoch.Add(1500*time.Millisecond), event{packets: 5})
	if c := r.take(0); c.Packets != 4 || c.Bytes != 30 || c.Resets != 1 || c.Errors["EPIPE"] != 1 {
		t.Errorf("second 0: %+v", c)
	}
	// A send stamped in second 0 that is recorded after second 0 was reported counts in the
	// next one, so the ticks still add up to the totals.
	r.add(epoch.Add(900*time.Millisecond), event{packets: 7})
	if c := r.take(1); c.Packets != 12 {
		t.Errorf("second 1: %d packets, want 5 + 7 late", c.Packets)
	}
	if tot := r.totals(); tot.Packets != 16 || tot.Errors["EPIPE"] != 1 {
		t.Errorf("totals %+v", tot)
	}

	var ticks []Tick
	r.add(epoch.Add(2100*time.Millisecond), event{packets: 1})
	r.add(epoch.Add(3200*time.Millisecond), event{packets: 2})
	r.flush(2, epoch.Add(3500*time.Millisecond), func(tk Tick) { ticks = append(ticks, tk) })
	if len(ticks) != 2 || ticks[0].Delta.Packets != 1 || ticks[0].Final || ticks[0].Span != time.Second ||
		ticks[1].Delta.Packets != 2 || !ticks[1].Final || ticks[1].Span != 500*time.Millisecond {
		t.Errorf("flush ticks %+v: want second 2 whole, then a final 500 ms", ticks)
	}

	quiet := newRecorder(epoch, false)
	quiet.add(epoch, event{packets: 1})
	if len(quiet.seconds) != 0 || quiet.totals().Packets != 1 {
		t.Error("a recorder without ticks keeps per-second deltas")
	}
}
