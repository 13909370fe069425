package traffic

import (
	"github.com/wfplab/wfplab/internal/freeport"

	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// udpSink counts the datagrams that reach a loopback UDP socket.
type udpSink struct {
	conn *net.UDPConn
	mu   sync.Mutex
	n    int
	size map[int]int         // datagram size → count
	prof map[Profile]int     // header profile → count
	seqs map[uint64]struct{} // distinct sequence numbers
	bad  int                 // datagrams without a header
	done chan struct{}
}

func newUDPSink(t *testing.T, network, addr string) *udpSink {
	t.Helper()
	pc, err := net.ListenPacket(network, addr)
	if err != nil {
		t.Fatalf("listen %s %s: %v", network, addr, err)
	}
	conn := pc.(*net.UDPConn)
	// A big receive buffer, so a sink reader starved by a loaded machine does not drop
	// datagrams the test counts. Above net.core.rmem_max only root can force it.
	_ = conn.SetReadBuffer(8 << 20)
	forceReadBuffer(conn, 8<<20)
	s := &udpSink{conn: conn, size: map[int]int{}, prof: map[Profile]int{}, seqs: map[uint64]struct{}{}, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		buf := make([]byte, 70000)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.n++
			s.size[n]++
			if h, ok := ParseHeader(buf[:n]); ok {
				s.prof[h.Profile]++
				s.seqs[h.Seq] = struct{}{}
			} else {
				s.bad++
			}
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.Close(); <-s.done })
	return s
}

func (s *udpSink) addr() netip.AddrPort { return s.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

func (s *udpSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// waitFor waits (at most 5 s) until the sink has seen n datagrams, and returns its count.
func (s *udpSink) waitFor(n int) int {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && s.count() < n {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // and a moment more, to catch any extra
	return s.count()
}

// tcpServer accepts connections on loopback and handles each with handle.
type tcpServer struct {
	ln       net.Listener
	mu       sync.Mutex
	accepted int
	wg       sync.WaitGroup
}

func newTCPServer(t *testing.T, network, addr string, handle func(i int, c *net.TCPConn)) *tcpServer {
	t.Helper()
	return newTCPServerWith(t, net.ListenConfig{}, network, addr, handle)
}

func newTCPServerWith(t *testing.T, lc net.ListenConfig, network, addr string, handle func(i int, c *net.TCPConn)) *tcpServer {
	t.Helper()
	ln, err := lc.Listen(context.Background(), network, addr)
	if err != nil {
		t.Fatalf("listen %s %s: %v", network, addr, err)
	}
	s := &tcpServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			i := s.accepted
			s.accepted++
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				handle(i, c.(*net.TCPConn))
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *tcpServer) addr() netip.AddrPort { return s.ln.Addr().(*net.TCPAddr).AddrPort() }

func (s *tcpServer) connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// waitConnections waits (at most 5 s) until the server has accepted n connections: the last
// ones may still sit in the listen backlog when the client is done.
func (s *tcpServer) waitConnections(n int) int {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && s.connections() < n {
		time.Sleep(5 * time.Millisecond)
	}
	return s.connections()
}

// resetAfterRead reads once, then resets the connection (linger 0 + close sends RST), as a
// guest does with a stream its callout blocked.
func resetAfterRead(_ int, c *net.TCPConn) {
	buf := make([]byte, 64<<10)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _ = c.Read(buf)
	_ = c.SetLinger(0)
	c.Close()
}

// streamCollector reads whole connections and checks every segment's header.
type streamCollector struct {
	payload int
	mu      sync.Mutex
	bytes   int
	seqs    map[uint64]struct{}
	bad     int
}

func (sc *streamCollector) handle(_ int, c *net.TCPConn) {
	defer c.Close()
	buf := make([]byte, sc.payload)
	for {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		sc.mu.Lock()
		sc.bytes += len(buf)
		if h, ok := ParseHeader(buf); ok && h.Profile == StreamBurst {
			sc.seqs[h.Seq] = struct{}{}
		} else {
			sc.bad++
		}
		sc.mu.Unlock()
	}
}

// noNetwork fails the test if Run opens any socket.
func noNetwork(t *testing.T) netDeps {
	return netDeps{
		dialTCP: func(context.Context, netip.AddrPort, time.Duration) (net.Conn, error) {
			t.Errorf("a TCP connection was opened")
			return nil, errors.New("no network in this test")
		},
		dialUDP: func(netip.AddrPort) (*net.UDPConn, error) {
			t.Errorf("a UDP socket was opened")
			return nil, errors.New("no network in this test")
		},
	}
}

// tickLog collects ticks and checks onTick is never called concurrently.
type tickLog struct {
	mu    sync.Mutex
	busy  bool
	ticks []Tick
	t     *testing.T
}

func (l *tickLog) onTick(tk Tick) {
	l.mu.Lock()
	if l.busy {
		l.t.Errorf("onTick called while another call was running")
	}
	l.busy = true
	l.mu.Unlock()
	time.Sleep(time.Microsecond)
	l.mu.Lock()
	l.ticks = append(l.ticks, tk)
	l.busy = false
	l.mu.Unlock()
}

func (l *tickLog) sum() Counters {
	var c Counters
	for _, tk := range l.ticks {
		c = c.Add(tk.Delta)
	}
	return c
}

func loopback4(port uint16) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)
}

// closedPort returns a loopback port nothing listens on (for network).
func closedPort(t *testing.T, network string) netip.AddrPort {
	t.Helper()
	if network != "tcp" {
		network = "udp"
	}
	p, err := freeport.Get(network)
	if err != nil {
		t.Fatal(err)
	}
	return loopback4(p)
}

// haveIPv6Loopback reports whether ::1 is configured and usable here; some containers run
// with IPv6 disabled, and then there is no ::1 to test against.
func haveIPv6Loopback() (bool, string) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false, "cannot list interface addresses: " + err.Error()
	}
	found := false
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(net.IPv6loopback) {
			found = true
		}
	}
	if !found {
		return false, "no interface has ::1 (IPv6 disabled on this machine)"
	}
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false, "::1 is configured but cannot be bound: " + err.Error()
	}
	ln.Close()
	return true, ""
}
