//go:build linux

package traffic

import (
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

func gsoAvailable() bool {
	c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9})
	if err != nil {
		return false
	}
	defer c.Close()
	_, err = newGSOWriter(c, SingleNBL, 64, 64, true)
	return err == nil
}

func sockopt(t *testing.T, c *net.UDPConn, level, opt int) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var serr error
	if err := rc.Control(func(fd uintptr) { v, serr = unix.GetsockoptInt(int(fd), level, opt) }); err != nil {
		t.Fatal(err)
	}
	if serr != nil {
		t.Fatal(serr)
	}
	return v
}

func setsockopt(t *testing.T, c *net.UDPConn, level, opt, v int) {
	t.Helper()
	rc, _ := c.SyscallConn()
	var serr error
	_ = rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), level, opt, v) })
	if serr != nil {
		t.Fatal(serr)
	}
}

func TestClearDontFragment(t *testing.T) {
	c4, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9})
	if err != nil {
		t.Fatal(err)
	}
	defer c4.Close()
	setsockopt(t, c4, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DO) // DF on, to see it cleared
	if err := clearDontFragment(c4, true); err != nil {
		t.Fatal(err)
	}
	if v := sockopt(t, c4, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER); v != unix.IP_PMTUDISC_DONT {
		t.Errorf("IP_MTU_DISCOVER = %d after clearing, want IP_PMTUDISC_DONT", v)
	}

	if ok, why := haveIPv6Loopback(); !ok {
		t.Skip("IPv6 part skipped: " + why)
	}
	c6, err := net.DialUDP("udp6", nil, &net.UDPAddr{IP: net.IPv6loopback, Port: 9})
	if err != nil {
		t.Fatal(err)
	}
	defer c6.Close()
	setsockopt(t, c6, unix.IPPROTO_IPV6, unix.IPV6_DONTFRAG, 1)
	if err := clearDontFragment(c6, false); err != nil {
		t.Fatal(err)
	}
	if v := sockopt(t, c6, unix.IPPROTO_IPV6, unix.IPV6_DONTFRAG); v != 0 {
		t.Errorf("IPV6_DONTFRAG = %d after clearing, want 0", v)
	}
}

func TestGSOSendsSeparateDatagrams(t *testing.T) {
	if !gsoAvailable() {
		t.Skip("this kernel has no UDP_SEGMENT (Linux < 4.18): the auto path falls back to sendmmsg, covered elsewhere")
	}
	sink := newUDPSink(t, "udp4", "127.0.0.1:0")
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(sink.addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w, err := newGSOWriter(c, FragmentForward, 1000, 64, true)
	if err != nil {
		t.Fatal(err)
	}
	sent, calls, err := w.send(100, 7)
	if err != nil || sent != 100 || calls != 2 {
		t.Fatalf("send(100) = %d, %d calls, %v; want 100 in 2 super-packets of at most 64", sent, calls, err)
	}
	if got := sink.waitFor(100); got != 100 {
		t.Errorf("sink got %d datagrams, want 100 separate ones", got)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if sink.size[1000] != 100 {
		t.Errorf("sizes %v, want 100 × 1000 bytes", sink.size)
	}
	for seq := uint64(7); seq < 107; seq++ {
		if _, ok := sink.seqs[seq]; !ok {
			t.Fatalf("sequence %d missing", seq)
		}
	}
}

// forceReadBuffer raises the receive buffer past net.core.rmem_max where allowed (root).
func forceReadBuffer(c *net.UDPConn, n int) {
	if rc, err := c.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { _ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n) })
	}
}
