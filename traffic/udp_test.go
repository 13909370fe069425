package traffic

import (
	"context"
	"runtime"
	"testing"
	"time"
)

func TestSingleNBLReachesTheSinkInEverySendMode(t *testing.T) {
	for _, mode := range []SendMode{SendAuto, SendGSO, SendBatch, SendSingle} {
		sink := newUDPSink(t, "udp4", "127.0.0.1:0")
		spec := Spec{Profile: SingleNBL, Rate: 5000, MaxPackets: 500, Send: mode}
		c, err := Run(context.Background(), spec, Addrs{Control: sink.addr()}, nil, nil)
		if mode == SendGSO && err != nil && !gsoAvailable() {
			t.Logf("SendGSO refused here, as it must be without UDP_SEGMENT: %v", err)
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", mode, err)
		}
		if c.Packets != 500 || c.Bytes != 500*DefaultSinglePayload || c.ErrorCount() != 0 {
			t.Errorf("%q: counters %+v, want 500 packets of 64 bytes and no error", mode, c)
		}
		if got := sink.waitFor(500); got != 500 {
			t.Errorf("%q: sink got %d datagrams, want 500", mode, got)
		}
		sink.mu.Lock()
		if sink.size[DefaultSinglePayload] != 500 || sink.prof[SingleNBL] != 500 || len(sink.seqs) != 500 || sink.bad != 0 {
			t.Errorf("%q: sink sizes %v, profiles %v, %d distinct sequence numbers, %d without header", mode, sink.size, sink.prof, len(sink.seqs), sink.bad)
		}
		for seq := range uint64(500) {
			if _, ok := sink.seqs[seq]; !ok {
				t.Errorf("%q: sequence number %d never arrived", mode, seq)
				break
			}
		}
		sink.mu.Unlock()
		if mode == SendSingle && c.Syscalls != 500 {
			t.Errorf("single: %d send calls for 500 datagrams", c.Syscalls)
		}
		if mode == SendBatch && runtime.GOOS == "linux" && c.Syscalls >= 500 {
			t.Errorf("batch: %d send calls for 500 datagrams: not batching", c.Syscalls)
		}
	}
}

func TestFragmentForwardSendsBigDatagrams(t *testing.T) {
	sink := newUDPSink(t, "udp4", "127.0.0.1:0")
	c, err := Run(context.Background(), Spec{Profile: FragmentForward, Rate: 2000, MaxPackets: 200}, Addrs{Forward: sink.addr()}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Packets != 200 || c.Bytes != 200*DefaultFragmentPayload {
		t.Errorf("counters %+v, want 200 datagrams of 4000 bytes", c)
	}
	if got := sink.waitFor(200); got != 200 {
		t.Errorf("sink got %d datagrams, want 200", got)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if sink.size[DefaultFragmentPayload] != 200 || sink.prof[FragmentForward] != 200 {
		t.Errorf("sink sizes %v, profiles %v; want 200 × 4000 bytes of fragment-forward", sink.size, sink.prof)
	}
}

func TestUDPToAClosedPortCountsECONNREFUSED(t *testing.T) {
	// The connected socket hears the ICMP port-unreachable and reports it on a later send.
	c, err := Run(context.Background(), Spec{Profile: SingleNBL, Rate: 2000, MaxPackets: 200}, Addrs{Control: closedPort(t, "udp")}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Errors["ECONNREFUSED"] == 0 {
		t.Errorf("no ECONNREFUSED counted: %+v", c)
	}
	if attempts := c.Packets + c.ErrorCount(); attempts != 200 {
		t.Errorf("%d sent + %d errors = %d attempts, want MaxPackets = 200", c.Packets, c.ErrorCount(), attempts)
	}
}

func TestMaxPacketsBoundsAnUnpacedRun(t *testing.T) {
	sink := newUDPSink(t, "udp4", "127.0.0.1:0")
	for _, max := range []uint64{1, 63, 64, 65, 1000} {
		c, err := Run(context.Background(), Spec{Profile: SingleNBL, MaxPackets: max}, Addrs{Control: sink.addr()}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.Packets != max {
			t.Errorf("MaxPackets %d: sent %d", max, c.Packets)
		}
	}
}

func TestDurationBoundsARealRun(t *testing.T) {
	sink := newUDPSink(t, "udp4", "127.0.0.1:0")
	start := time.Now()
	c, err := Run(context.Background(), Spec{Profile: SingleNBL, Rate: 1000, Duration: 300 * time.Millisecond}, Addrs{Control: sink.addr()}, nil, nil)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if elapsed < 300*time.Millisecond || elapsed > 3*time.Second {
		t.Errorf("a 300 ms run took %v", elapsed)
	}
	// The bucket starts with one token and fills at 1000/s: at most 301 can go in 300 ms.
	// The lower bound is loose: a loaded machine may starve the sender for a while.
	if c.Packets < 30 || c.Packets > 301 {
		t.Errorf("300 ms at 1000/s sent %d packets, want 30..301", c.Packets)
	}
}

func TestFakeClockRunIsExactPerSecond(t *testing.T) {
	sink := newUDPSink(t, "udp4", "127.0.0.1:0")
	for _, rate := range []float64{10, 1000, 20000} {
		clock := newFakeClock(epoch)
		ticks := &tickLog{t: t}
		spec := Spec{Profile: SingleNBL, Rate: rate, Duration: 3 * time.Second, Clock: clock}
		c, err := Run(context.Background(), spec, Addrs{Control: sink.addr()}, nil, ticks.onTick)
		if err != nil {
			t.Fatal(err)
		}
		if c.Packets != uint64(3*rate) {
			t.Errorf("rate %v for 3 s: sent %d", rate, c.Packets)
		}
		if len(ticks.ticks) != 3 {
			t.Fatalf("rate %v: %d ticks, want 3: %+v", rate, len(ticks.ticks), ticks.ticks)
		}
		for i, tk := range ticks.ticks {
			if tk.Delta.Packets != uint64(rate) || tk.Span != time.Second || !tk.At.Equal(epoch.Add(time.Duration(i+1)*time.Second)) {
				t.Errorf("rate %v tick %d: %d packets over %v at %v", rate, i, tk.Delta.Packets, tk.Span, tk.At.Sub(epoch))
			}
			if tk.PacketRate() != rate {
				t.Errorf("rate %v tick %d: PacketRate %v", rate, i, tk.PacketRate())
			}
			if tk.Final != (i == 2) {
				t.Errorf("rate %v tick %d: Final = %v", rate, i, tk.Final)
			}
		}
		if sum := ticks.sum(); sum.Packets != c.Packets || sum.Bytes != c.Bytes || sum.Syscalls != c.Syscalls {
			t.Errorf("rate %v: ticks add up to %+v, totals are %+v", rate, sum, c)
		}
	}
}

func TestFakeClockRunEndsWithAPartialTick(t *testing.T) {
	sink := newUDPSink(t, "udp4", "127.0.0.1:0")
	clock := newFakeClock(epoch)
	ticks := &tickLog{t: t}
	spec := Spec{Profile: SingleNBL, Rate: 100, Duration: 2500 * time.Millisecond, Clock: clock}
	c, err := Run(context.Background(), spec, Addrs{Control: sink.addr()}, nil, ticks.onTick)
	if err != nil {
		t.Fatal(err)
	}
	if c.Packets != 250 || len(ticks.ticks) != 3 {
		t.Fatalf("sent %d in %d ticks, want 250 in 3", c.Packets, len(ticks.ticks))
	}
	last := ticks.ticks[2]
	if !last.Final || last.Span != 500*time.Millisecond || last.Delta.Packets != 50 || last.PacketRate() != 100 {
		t.Errorf("last tick %+v, want Final, 500 ms, 50 packets, 100/s", last)
	}
	if !last.At.Equal(epoch.Add(2500 * time.Millisecond)) {
		t.Errorf("last tick at %v, want the run's end", last.At.Sub(epoch))
	}
}

func TestRealClockTicks(t *testing.T) {
	sink := newUDPSink(t, "udp4", "127.0.0.1:0")
	ticks := &tickLog{t: t}
	c, err := Run(context.Background(), Spec{Profile: SingleNBL, Rate: 1000, Duration: 1200 * time.Millisecond}, Addrs{Control: sink.addr()}, nil, ticks.onTick)
	if err != nil {
		t.Fatal(err)
	}
	if len(ticks.ticks) != 2 {
		t.Fatalf("%d ticks for a 1.2 s run, want 2: %+v", len(ticks.ticks), ticks.ticks)
	}
	first, last := ticks.ticks[0], ticks.ticks[1]
	if first.Final || first.Span != time.Second || !last.Final || last.Span != 200*time.Millisecond {
		t.Errorf("ticks %+v / %+v: want a full second then a final 200 ms", first, last)
	}
	// At most the rate plus the first token; loosely bounded below for loaded machines.
	if r := first.PacketRate(); r < 100 || r > 1001 {
		t.Errorf("first second ran at %.0f/s, target 1000", r)
	}
	if sum := ticks.sum(); sum.Packets != c.Packets {
		t.Errorf("ticks add up to %d packets, totals %d", sum.Packets, c.Packets)
	}
}

func TestCancelledRunReturnsCountersAndContextError(t *testing.T) {
	sink := newUDPSink(t, "udp4", "127.0.0.1:0")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	ticks := &tickLog{t: t}
	c, err := Run(ctx, Spec{Profile: SingleNBL, Rate: 1000, Duration: time.Hour}, Addrs{Control: sink.addr()}, nil, ticks.onTick)
	if err != context.DeadlineExceeded {
		t.Errorf("err = %v, want context.DeadlineExceeded", err)
	}
	if c.Packets == 0 || len(ticks.ticks) == 0 || !ticks.ticks[len(ticks.ticks)-1].Final {
		t.Errorf("cancelled run: %d packets, ticks %+v; want some packets and a final tick", c.Packets, ticks.ticks)
	}
}

func TestMixSplitsRateAndPacketsByWeight(t *testing.T) {
	parts, err := Spec{Profile: Mix, Rate: 400, MaxPackets: 101, Duration: time.Second,
		Weights: map[Profile]float64{SingleNBL: 3, FragmentForward: 1}}.parts()
	if err != nil {
		t.Fatal(err)
	}
	got := map[Profile]part{}
	for _, pt := range parts {
		got[pt.profile] = pt
	}
	if len(parts) != 2 || got[SingleNBL].rate != 300 || got[FragmentForward].rate != 100 ||
		got[SingleNBL].maxPackets+got[FragmentForward].maxPackets != 101 ||
		got[SingleNBL].payload != DefaultSinglePayload || got[FragmentForward].payload != DefaultFragmentPayload {
		t.Errorf("mix parts %+v: want single-nbl at 300/s and fragment-forward at 100/s, 101 packets between them, default sizes", parts)
	}

	control := newUDPSink(t, "udp4", "127.0.0.1:0")
	forward := newUDPSink(t, "udp4", "127.0.0.1:0")
	to := Addrs{Control: control.addr(), Forward: forward.addr()}
	// MaxPackets splits by weight: 75 small and 25 big datagrams.
	c, err := Run(context.Background(), Spec{Profile: Mix, Rate: 2000, MaxPackets: 100, Weights: map[Profile]float64{SingleNBL: 3, FragmentForward: 1}}, to, nil, nil)
	if err != nil || c.Packets != 100 || c.Bytes != 75*DefaultSinglePayload+25*DefaultFragmentPayload {
		t.Errorf("mix with MaxPackets 100: %+v, %v; want 75 × 64 + 25 × 4000 bytes", c, err)
	}
	if n := control.waitFor(75); n != 75 {
		t.Errorf("single-nbl sink got %d, want 75", n)
	}
	if n := forward.waitFor(25); n != 25 {
		t.Errorf("fragment-forward sink got %d, want 25", n)
	}
	forward.mu.Lock()
	if forward.prof[FragmentForward] != 25 || forward.size[DefaultFragmentPayload] != 25 {
		t.Errorf("fragment-forward sink: %v, %v", forward.prof, forward.size)
	}
	forward.mu.Unlock()
}

func TestBitRate(t *testing.T) {
	sink := newUDPSink(t, "udp4", "127.0.0.1:0")
	clock := newFakeClock(epoch)
	// 512 kbit/s of 64-byte payloads is 1000 datagrams/s.
	spec := Spec{Profile: SingleNBL, BitRate: 512000, Duration: 2 * time.Second, Clock: clock}
	ticks := &tickLog{t: t}
	c, err := Run(context.Background(), spec, Addrs{Control: sink.addr()}, nil, ticks.onTick)
	if err != nil {
		t.Fatal(err)
	}
	if c.Packets != 2000 {
		t.Errorf("sent %d, want 2000", c.Packets)
	}
	for _, tk := range ticks.ticks {
		if tk.BitRate() != 512000 {
			t.Errorf("tick bit rate %v, want 512000", tk.BitRate())
		}
	}
}
