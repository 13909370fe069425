package traffic

import (
	"context"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fastTuning keeps stream tests short: quick backoff, few attempts, short write timeout.
var fastTuning = tuning{
	dialTimeout:  2 * time.Second,
	writeTimeout: 300 * time.Millisecond,
	backoffBase:  time.Millisecond,
	backoffMax:   5 * time.Millisecond,
	maxFailures:  5,
	verdictWait:  time.Second, // a reset on loopback comes in microseconds; this is for loaded machines
}

func TestStreamBurstWritesWholeBurstsWithHeaders(t *testing.T) {
	sc := &streamCollector{payload: DefaultStreamPayload, seqs: map[uint64]struct{}{}}
	srv := newTCPServer(t, "tcp4", "127.0.0.1:0", sc.handle)
	spec := Spec{Profile: StreamBurst, Rate: 16000, MaxPackets: 800} // 8-segment bursts, 4 connections
	c, err := Run(context.Background(), spec, Addrs{Stream: srv.addr()}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Packets != 800 || c.Bursts != 100 || c.Bytes != 800*DefaultStreamPayload || c.Conns != 4 || c.Resets != 0 || c.ErrorCount() != 0 {
		t.Errorf("counters %+v: want 800 segments in 100 bursts over 4 connections, no reset", c)
	}
	if c.Syscalls != c.Bursts {
		t.Errorf("%d writes for %d bursts: each burst must be one write", c.Syscalls, c.Bursts)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		sc.mu.Lock()
		n := len(sc.seqs)
		sc.mu.Unlock()
		if n >= 800 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.bytes != 800*DefaultStreamPayload || len(sc.seqs) != 800 || sc.bad != 0 {
		t.Errorf("server read %d bytes, %d distinct segment headers, %d segments without one; want 800 segments", sc.bytes, len(sc.seqs), sc.bad)
	}
	if n := srv.waitConnections(4); n != 4 {
		t.Errorf("server saw %d connections, want 4", n)
	}
}

func TestStreamBurstReconnectsAfterResets(t *testing.T) {
	srv := newTCPServer(t, "tcp4", "127.0.0.1:0", resetAfterRead)
	// 200 bursts at 500 bursts/s: 0.4 s, time enough for the server to reset many times
	// even on a loaded machine.
	spec := Spec{Profile: StreamBurst, Rate: 4000, MaxPackets: 8 * 200, Conns: 2}
	start := time.Now()
	c, err := run(context.Background(), spec, Addrs{Stream: srv.addr()}, nil, nil, defaultDeps, fastTuning)
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("the run took %v", time.Since(start))
	}
	resetErrs := c.Errors["ECONNRESET"] + c.Errors["EPIPE"]
	if c.Resets < 2 || resetErrs != c.Resets || c.Conns < 3 {
		t.Errorf("counters %+v: want several resets (ECONNRESET/EPIPE) and reconnections", c)
	}
	if c.Conns > c.Resets+uint64(spec.Conns) {
		t.Errorf("%d connections for %d resets: connections opened without need", c.Conns, c.Resets)
	}
	if n := srv.waitConnections(int(c.Conns)); n != int(c.Conns) {
		t.Errorf("server accepted %d connections, counters say %d", n, c.Conns)
	}
	// Every attempted burst is counted: sent segments plus the failed writes' bursts fill MaxPackets.
	if c.Packets+8*resetErrs < 8*200 || c.Packets > 8*200 {
		t.Errorf("%d segments sent and %d failed bursts for MaxPackets %d", c.Packets, resetErrs, 8*200)
	}
}

// A guest that resets each connection after a blocked burst: a burst written before the
// reset arrived would be lost, so once a connection was reset after a burst, each burst waits
// for its verdict and the next one goes on a new connection.
func TestStreamBurstWaitsForTheResetAfterEachBurst(t *testing.T) {
	const burst = 8 * DefaultStreamPayload
	var mu sync.Mutex
	whole := 0 // bursts the server read in full
	srv := newTCPServer(t, "tcp4", "127.0.0.1:0", func(_ int, c *net.TCPConn) {
		buf := make([]byte, burst)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, buf); err == nil {
			mu.Lock()
			whole++
			mu.Unlock()
		}
		_ = c.SetLinger(0)
		c.Close()
	})
	spec := Spec{Profile: StreamBurst, Rate: 4000, MaxPackets: 8 * 100, Conns: 2}
	c, err := run(context.Background(), spec, Addrs{Stream: srv.addr()}, nil, nil, defaultDeps, fastTuning)
	if err != nil {
		t.Fatal(err)
	}
	srv.waitConnections(int(c.Conns))
	mu.Lock()
	got := whole
	mu.Unlock()
	// Only each slot's first connection can lose a burst: nothing told it yet that the guest resets.
	if lost := int(c.Bursts) - got; lost < 0 || lost > spec.Conns {
		t.Errorf("the client wrote %d whole bursts and the server read %d: %d lost into reset connections, want at most %d",
			c.Bursts, got, lost, spec.Conns)
	}
	if c.Resets < c.Bursts-uint64(spec.Conns) || c.Conns < c.Bursts-uint64(spec.Conns) {
		t.Errorf("counters %+v: want a reset and a new connection for about every burst", c)
	}
	if len(c.SendErrors()) != 0 {
		t.Errorf("send errors %v: resets after a blocked burst are not send errors", c.SendErrors())
	}
}

func TestStreamBurstGivesUpOnARefusingPort(t *testing.T) {
	dest := closedPort(t, "tcp")
	start := time.Now()
	c, err := run(context.Background(), Spec{Profile: StreamBurst, Duration: 30 * time.Second, Conns: 2}, Addrs{Stream: dest}, nil, nil, defaultDeps, fastTuning)
	if err == nil || !strings.Contains(err.Error(), dest.String()) || !strings.Contains(err.Error(), "gave up") {
		t.Fatalf("want an error naming %s that says the connections gave up, got %v", dest, err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("giving up took %v", time.Since(start))
	}
	if c.Errors["ECONNREFUSED"] != 2*uint64(fastTuning.maxFailures) || c.Conns != 0 || c.Packets != 0 {
		t.Errorf("counters %+v: want %d ECONNREFUSED (2 connections × %d attempts) and nothing sent", c, 2*fastTuning.maxFailures, fastTuning.maxFailures)
	}
}

func TestStreamBurstBackoffGrowsWithJitter(t *testing.T) {
	g := &gen{tune: tuning{backoffBase: 10 * time.Millisecond, backoffMax: 200 * time.Millisecond}}
	for failures, want := range map[int]time.Duration{1: 10, 2: 20, 3: 40, 4: 80, 5: 160, 6: 200, 50: 200} {
		want *= time.Millisecond
		if failures == 50 {
			want = 200 * time.Millisecond
		}
		seen := map[time.Duration]bool{}
		for range 200 {
			d := g.backoff(failures)
			if d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", failures, d, want/2, want)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Errorf("backoff(%d) took only %d values in 200 draws: no jitter", failures, len(seen))
		}
	}
}

func TestStreamBurstBlockedConnectionDoesNotStallTheOthers(t *testing.T) {
	// The first connection's peer never reads: its writes fill the buffers and time out. The
	// other connection must keep the rate meanwhile.
	var mu sync.Mutex
	var stalled []*net.TCPConn
	sc := &streamCollector{payload: DefaultStreamPayload, seqs: map[uint64]struct{}{}}
	// Small receive buffers (set on the listener, so accepted sockets start with them) keep
	// the stalled connection's window small: it blocks after little data.
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = setRcvBuf(fd, 8192) })
	}}
	srv := newTCPServerWith(t, lc, "tcp4", "127.0.0.1:0", func(i int, c *net.TCPConn) {
		if i == 0 {
			mu.Lock()
			stalled = append(stalled, c) // kept open, never read
			mu.Unlock()
			return
		}
		sc.handle(i, c)
	})
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range stalled {
			c.Close()
		}
	})
	// Small send buffers too, so the stalled connection blocks after a few bursts whatever
	// the machine's TCP autotuning allows.
	deps := defaultDeps
	deps.dialTCP = func(ctx context.Context, addr netip.AddrPort, timeout time.Duration) (net.Conn, error) {
		c, err := dialTCP(ctx, addr, timeout)
		if err == nil {
			_ = c.(*net.TCPConn).SetWriteBuffer(8192)
		}
		return c, err
	}
	tune := fastTuning
	tune.writeTimeout = 1200 * time.Millisecond
	ticks := &tickLog{t: t}
	spec := Spec{Profile: StreamBurst, Rate: 20000, Duration: 2 * time.Second, Conns: 2}
	c, err := run(context.Background(), spec, Addrs{Stream: srv.addr()}, nil, ticks.onTick, deps, tune)
	if err != nil {
		t.Fatal(err)
	}
	if c.Errors[KindTimeout] != 1 || c.Conns != 3 {
		t.Errorf("counters %+v: want the blocked connection's write to time out once and be replaced", c)
	}
	// During the first second the stalled connection was blocked (it holds a few dozen
	// segments at most, with 8 kB buffers at both ends): whatever went out came from the other.
	// At 20000/s that is thousands; the bound is loose for loaded machines.
	if len(ticks.ticks) == 0 || ticks.ticks[0].Delta.Packets < 500 || ticks.ticks[0].Delta.Errors[KindTimeout] != 0 {
		t.Errorf("first second %+v: the blocked connection stalled the other", ticks.ticks)
	}
	// The bucket starts with 1 ms worth (20 segments) and fills at 20000/s.
	if c.Packets > 40020+8 {
		t.Errorf("%d segments in 2 s at 20000/s: above the rate", c.Packets)
	}
}

func TestStreamBurstFakeClockBurstAccounting(t *testing.T) {
	sc := &streamCollector{payload: 100, seqs: map[uint64]struct{}{}}
	srv := newTCPServer(t, "tcp4", "127.0.0.1:0", sc.handle)
	clock := newFakeClock(epoch)
	ticks := &tickLog{t: t}
	spec := Spec{Profile: StreamBurst, Rate: 1000, BurstSegments: 10, PayloadBytes: 100, Conns: 1, Duration: 3 * time.Second, Clock: clock}
	c, err := Run(context.Background(), spec, Addrs{Stream: srv.addr()}, nil, ticks.onTick)
	if err != nil {
		t.Fatal(err)
	}
	// 1000 segments/s in bursts of 10: 100 bursts each simulated second.
	if c.Bursts != 300 || c.Packets != 3000 || c.Bytes != 300000 {
		t.Errorf("counters %+v: want 300 bursts of 10 × 100 bytes", c)
	}
	if len(ticks.ticks) != 3 {
		t.Fatalf("%d ticks, want 3", len(ticks.ticks))
	}
	for i, tk := range ticks.ticks {
		if tk.Delta.Bursts != 100 || tk.Delta.Packets != 1000 {
			t.Errorf("tick %d: %d bursts, %d segments; want 100 and 1000", i, tk.Delta.Bursts, tk.Delta.Packets)
		}
	}
}

func TestIPv6Loopback(t *testing.T) {
	if ok, why := haveIPv6Loopback(); !ok {
		t.Skip("skipped: " + why)
	}
	control := newUDPSink(t, "udp6", "[::1]:0")
	forward := newUDPSink(t, "udp6", "[::1]:0")
	sc := &streamCollector{payload: DefaultStreamPayload, seqs: map[uint64]struct{}{}}
	srv := newTCPServer(t, "tcp6", "[::1]:0", sc.handle)
	to := Addrs{Stream: srv.addr(), Forward: forward.addr(), Control: control.addr()}
	if !to.Control.Addr().Is6() || to.Control.Addr() != netip.IPv6Loopback() {
		t.Fatalf("sink is on %v, not ::1", to.Control)
	}
	for _, tc := range []struct {
		profile Profile
		sink    *udpSink
		size    int
	}{{SingleNBL, control, DefaultSinglePayload}, {FragmentForward, forward, DefaultFragmentPayload}} {
		c, err := Run(context.Background(), Spec{Profile: tc.profile, Rate: 2000, MaxPackets: 100}, to, nil, nil)
		if err != nil {
			t.Fatalf("%s over IPv6: %v", tc.profile, err)
		}
		if c.Packets != 100 {
			t.Errorf("%s over IPv6: sent %d", tc.profile, c.Packets)
		}
		if n := tc.sink.waitFor(100); n != 100 {
			t.Errorf("%s over IPv6: sink got %d", tc.profile, n)
		}
		tc.sink.mu.Lock()
		if tc.sink.size[tc.size] != 100 || tc.sink.prof[tc.profile] != 100 {
			t.Errorf("%s over IPv6: sizes %v, profiles %v", tc.profile, tc.sink.size, tc.sink.prof)
		}
		tc.sink.mu.Unlock()
	}
	c, err := Run(context.Background(), Spec{Profile: StreamBurst, Rate: 8000, MaxPackets: 160, Conns: 2}, to, nil, nil)
	if err != nil || c.Packets != 160 || c.Bursts != 20 || c.Conns != 2 {
		t.Errorf("stream-burst over IPv6: %+v, %v", c, err)
	}
	// An IPv4-mapped IPv6 loopback address is loopback too, and goes out as IPv4.
	mapped := netip.AddrPortFrom(netip.AddrFrom16(netip.MustParseAddr("127.0.0.1").As16()), 1)
	if !(Allow{}).Permits(mapped.Addr()) {
		t.Error("::ffff:127.0.0.1 is not permitted")
	}
}
