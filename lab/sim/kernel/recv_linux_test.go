//go:build linux

package kernel

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// gsoSender sends super-packets with UDP_SEGMENT: the kernel cuts each into datagrams of
// segment bytes (the last one shorter when the total is not a multiple), as the traffic
// generator's default send path does.
type gsoSender struct {
	c   *net.UDPConn
	oob []byte
	buf []byte
}

func newGSOSender(t testing.TB, to netip.AddrPort, segment int) *gsoSender {
	t.Helper()
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(to))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	oob := make([]byte, unix.CmsgSpace(2))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level, h.Type = unix.SOL_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(oob[unix.CmsgLen(0):], uint16(segment))
	return &gsoSender{c: c, oob: oob, buf: make([]byte, 65000)}
}

func (s *gsoSender) send(t testing.TB, total int) {
	t.Helper()
	if _, _, err := s.c.WriteMsgUDP(s.buf[:total], s.oob, nil); err != nil {
		t.Fatalf("sendmsg with UDP_SEGMENT: %v", err)
	}
}

// A UDP_SEGMENT super-packet reaches a UDP_GRO socket as one buffer; the guest must still
// indicate one chain per datagram, the short tail included, exactly as if each had been
// sent alone, and leak exactly as much.
func TestCoalescedDatagramsCountOneByOne(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) { testCoalesced(t, netip.MustParseAddr(host)) })
	}
}

func testCoalesced(t *testing.T, host netip.Addr) {
	k := quietKernel(t, "x64", false)
	n, err := Listen(k, host, Ports{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Error(err)
		}
	})
	if !n.gro {
		t.Fatal("UDP_GRO could not be turned on: this test needs Linux 5.0 or later")
	}
	before := k.Pool(0)
	_, fwd, ctl := n.Addrs()
	drv := driverFor(n)
	drv.ForwardPrefix = netip.PrefixFrom(fwd.Addr(), fwd.Addr().BitLen())
	if err := k.StartDriver(drv); err != nil {
		t.Fatal(err)
	}

	// Forward: 10 datagrams of 4000 bytes (3 fragments each) and a 1000-byte tail (one NBL)
	// per super-packet.
	const supers = 40
	fs := newGSOSender(t, fwd, 4000)
	for i := 0; i < supers; i++ {
		fs.send(t, 10*4000+1000)
		if i%8 == 7 {
			time.Sleep(time.Millisecond)
		}
	}
	// Control: 64 datagrams of 64 bytes, then 30 with a 10-byte tail.
	cs := newGSOSender(t, ctl, 64)
	for i := 0; i < supers; i++ {
		cs.send(t, 64*64)
		cs.send(t, 29*64+10)
	}
	// Forward: each datagram's 3 fragments alone, then its group; the tail alone.
	const wantFwd, wantCtl = supers * (10*4 + 1), supers * (64 + 30)
	waitFor(t, "every datagram", func() bool {
		c, _ := k.Counters()
		return c[LayerForward].Classify >= wantFwd && c[LayerTransport].Classify >= wantCtl
	})
	time.Sleep(50 * time.Millisecond) // anything extra would show now
	c, _ := k.Counters()
	f, x := c[LayerForward], c[LayerTransport]
	if f.Classify != wantFwd || f.NBLs != supers*(10*6+1) || f.MultiChain != supers*10 ||
		f.Hist[0] != supers*31 || f.Hist[HistBucket(3)] != supers*10 || f.MultiBlocked != supers*10 {
		t.Fatalf("forward: %+v, want per super-packet 31 lone NBLs and 10 blocked chains of 3", f)
	}
	if x.Classify != wantCtl || x.NBLs != wantCtl || x.MultiChain != 0 || x.Hist[0] != wantCtl {
		t.Fatalf("transport: %+v, want %d single-NBL chains", x, wantCtl)
	}
	if got := n.fwdStats.coalesced.Load() + n.ctlStats.coalesced.Load(); got == 0 {
		t.Fatalf("no buffer held more than one datagram: UDP_GRO did not coalesce (stats fwd %d/%d ctl %d/%d buffers/datagrams)",
			n.fwdStats.buffers.Load(), n.fwdStats.datagrams.Load(), n.ctlStats.buffers.Load(), n.ctlStats.datagrams.Load())
	}
	if d := n.fwdStats.datagrams.Load(); d != supers*11 {
		t.Fatalf("forward reader counted %d datagrams, want %d", d, supers*11)
	}
	wantLeak := f.MultiChain * k.NBLBytes()
	if got := k.Pool(time.Second).Bytes - before.Bytes; got != wantLeak {
		t.Fatalf("pool grew %d bytes, want %d (%d chains x %d)", got, wantLeak, f.MultiChain, k.NBLBytes())
	}
}

func TestGROSegmentSize(t *testing.T) {
	msg := func(level, typ int32, data []byte) []byte {
		b := make([]byte, unix.CmsgSpace(len(data)))
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		h.Level, h.Type = level, typ
		h.SetLen(unix.CmsgLen(len(data)))
		copy(b[unix.CmsgLen(0):], data)
		return b
	}
	size := func(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }
	other := msg(unix.SOL_SOCKET, unix.SO_TIMESTAMP, make([]byte, 16))
	gro := msg(unix.SOL_UDP, unix.UDP_GRO, size(1472))
	for _, tc := range []struct {
		name string
		oob  []byte
		want int
	}{
		{"none", nil, 0},
		{"gro", gro, 1472},
		{"after another", append(append([]byte{}, other...), gro...), 1472},
		{"other only", other, 0},
		{"truncated header", gro[:4], 0},
		{"truncated data", gro[:unix.CmsgLen(2)], 0},
		{"length past the end", func() []byte { b := append([]byte{}, gro...); b[0] = 200; return b }(), 0},
	} {
		b := make([]byte, len(tc.oob), len(tc.oob)+8) // a fresh, aligned copy
		copy(b, tc.oob)
		if got := groSegmentSize(b); got != tc.want {
			t.Errorf("%s: groSegmentSize = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// BenchmarkUDPReceiveGSO offers the guest UDP_SEGMENT super-packets of 64 datagrams, the
// traffic generator's default send path, on the control (single-NBL) socket.
func BenchmarkUDPReceiveGSO(b *testing.B) {
	k := New(Config{Arch: "x64", OSVersion: "6.1"})
	defer k.Close()
	n, err := Listen(k, loopback, Ports{})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	k.StartDriver(driverFor(n))
	_, _, ctl := n.Addrs()
	s := newGSOSender(b, ctl, 64)
	b.SetBytes(64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += 64 {
		s.send(b, min(64, b.N-i)*64)
	}
	reportReceived(b, k, LayerTransport)
}
