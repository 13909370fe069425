package traffic

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeGuest plays QEMU's two dgram sockets and a routing guest behind them: what wfplab sends
// into link A it forwards (or drops) out of link B, resolving the next hop with ARP on B as a
// real stack would, and it asks wfplab's link-A neighbour for its MAC too.
type fakeGuest struct {
	t        *testing.T
	qa, qb   *net.UDPConn
	wa, wb   netip.AddrPort // wfplab's ends
	macA     net.HardwareAddr
	macB     net.HardwareAddr
	ipA, ipB netip.Addr
	// drop decides per IPv4 frame (IP ID, fragment index) whether the guest drops it.
	drop func(id uint16, frag int) bool

	mu       sync.Mutex
	neigh    map[netip.Addr]net.HardwareAddr // learned from ARP replies
	pending  [][]byte                        // frames waiting for the next hop's MAC
	askedFor map[netip.Addr]bool
	fragIdx  map[uint16]int
	got      int // IPv4 frames received on A
	wg       sync.WaitGroup
}

func listenLoopbackUDP(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadBuffer(4 << 20)
	return c
}

// freeLoopbackPort finds a UDP port nobody holds (wfplab binds its ends itself).
func freeLoopbackPort(t *testing.T) netip.AddrPort {
	t.Helper()
	c := listenLoopbackUDP(t)
	ap := c.LocalAddr().(*net.UDPAddr).AddrPort()
	c.Close()
	return ap
}

func newFakeGuest(t *testing.T, drop func(id uint16, frag int) bool) (*fakeGuest, *Link, *Link) {
	g := &fakeGuest{t: t, qa: listenLoopbackUDP(t), qb: listenLoopbackUDP(t), wa: freeLoopbackPort(t), wb: freeLoopbackPort(t),
		macA: net.HardwareAddr{0x52, 0x54, 0, 0, 0, 2}, macB: net.HardwareAddr{0x52, 0x54, 0, 0, 0, 3},
		ipA: netip.MustParseAddr("198.51.100.1"), ipB: netip.MustParseAddr("203.0.113.1"),
		drop: drop, neigh: map[netip.Addr]net.HardwareAddr{}, askedFor: map[netip.Addr]bool{}, fragIdx: map[uint16]int{}}
	in := &Link{GuestSock: g.qa.LocalAddr().(*net.UDPAddr).AddrPort(), HostSock: g.wa,
		GuestMAC: g.macA, HostMAC: net.HardwareAddr{0x02, 0x77, 0x66, 0, 0, 0x0a},
		GuestIP: netip.MustParsePrefix("198.51.100.1/24"), HostIP: netip.MustParseAddr("198.51.100.2")}
	out := &Link{GuestSock: g.qb.LocalAddr().(*net.UDPAddr).AddrPort(), HostSock: g.wb,
		GuestMAC: g.macB, HostMAC: net.HardwareAddr{0x02, 0x77, 0x66, 0, 0, 0x0b},
		GuestIP: netip.MustParsePrefix("203.0.113.1/24"), HostIP: netip.MustParseAddr("203.0.113.2")}
	g.wg.Add(2)
	go g.readA()
	go g.readB()
	t.Cleanup(func() { g.qa.Close(); g.qb.Close(); g.wg.Wait() })
	return g, in, out
}

func arpRequest(mac net.HardwareAddr, ip, target netip.Addr) []byte {
	b := make([]byte, 42)
	copy(b, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(b[6:], mac)
	binary.BigEndian.PutUint16(b[12:], etherARP)
	a := b[14:]
	binary.BigEndian.PutUint16(a[0:], 1)
	binary.BigEndian.PutUint16(a[2:], etherIPv4)
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:], 1)
	copy(a[8:], mac)
	s, d := ip.As4(), target.As4()
	copy(a[14:], s[:])
	copy(a[24:], d[:])
	return b
}

// learn takes an ARP reply addressed to mac; it reports the sender.
func learn(fr []byte, mac net.HardwareAddr) (netip.Addr, net.HardwareAddr, bool) {
	if len(fr) < 42 || binary.BigEndian.Uint16(fr[12:]) != etherARP || binary.BigEndian.Uint16(fr[20:]) != 2 || !bytes.Equal(fr[:6], mac) {
		return netip.Addr{}, nil, false
	}
	return netip.AddrFrom4([4]byte(fr[28:32])), net.HardwareAddr(append([]byte(nil), fr[22:28]...)), true
}

func (g *fakeGuest) readA() {
	defer g.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, err := g.qa.Read(buf)
		if err != nil {
			return
		}
		fr := buf[:n]
		if ip, mac, ok := learn(fr, g.macA); ok {
			g.mu.Lock()
			g.neigh[ip] = mac
			g.mu.Unlock()
			continue
		}
		if binary.BigEndian.Uint16(fr[12:]) != etherIPv4 {
			continue
		}
		id := binary.BigEndian.Uint16(fr[18:])
		g.mu.Lock()
		g.got++
		idx := g.fragIdx[id]
		g.fragIdx[id] = idx + 1
		g.mu.Unlock()
		if g.drop != nil && g.drop(id, idx) {
			continue
		}
		dst := netip.AddrFrom4([4]byte(fr[30:34]))
		out := append([]byte(nil), fr...)
		copy(out[6:], g.macB)
		g.mu.Lock()
		mac := g.neigh[dst]
		if mac == nil {
			g.pending = append(g.pending, out)
			ask := !g.askedFor[dst]
			g.askedFor[dst] = true
			g.mu.Unlock()
			if ask {
				g.qb.WriteToUDPAddrPort(arpRequest(g.macB, g.ipB, dst), g.wb)
			}
			continue
		}
		g.mu.Unlock()
		copy(out, mac)
		g.qb.WriteToUDPAddrPort(out, g.wb)
	}
}

func (g *fakeGuest) readB() {
	defer g.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, err := g.qb.Read(buf)
		if err != nil {
			return
		}
		ip, mac, ok := learn(buf[:n], g.macB)
		if !ok {
			continue
		}
		g.mu.Lock()
		g.neigh[ip] = mac
		pending := g.pending
		g.pending = nil
		g.mu.Unlock()
		for _, fr := range pending {
			copy(fr, mac)
			g.qb.WriteToUDPAddrPort(fr, g.wb)
		}
	}
}

func (g *fakeGuest) neighbour(ip netip.Addr) net.HardwareAddr {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.neigh[ip]
}

// runThroughFakeGuest sends 300 datagrams of 4000 bytes (3 fragments each) through a fake guest.
func runThroughFakeGuest(t *testing.T, drop func(id uint16, frag int) bool, send SendMode) (*fakeGuest, Counters, []Tick) {
	g, in, out := newFakeGuest(t, drop)
	var ticks []Tick
	go func() {
		// The guest also asks for its link-A neighbour, as Windows does before it answers it.
		time.Sleep(50 * time.Millisecond)
		g.qa.WriteToUDPAddrPort(arpRequest(g.macA, g.ipA, in.HostIP), g.wa)
	}()
	c, err := Run(context.Background(), Spec{Profile: FragmentForward, Rate: 3000, MaxPackets: 300, Send: send},
		Addrs{ForwardIn: in, ForwardOut: out}, nil, func(tk Tick) { ticks = append(ticks, tk) })
	if err != nil {
		t.Fatal(err)
	}
	return g, c, ticks
}

func sumTicks(ticks []Tick) Counters {
	var s Counters
	for _, tk := range ticks {
		s = s.Add(tk.Delta)
	}
	return s
}

func TestFrameLinkForwardedThroughFakeGuest(t *testing.T) {
	for _, send := range []SendMode{SendAuto, SendSingle} {
		g, c, ticks := runThroughFakeGuest(t, nil, send)
		if c.Packets != 300 || c.Frames != 900 || c.Bytes != 300*4000 {
			t.Errorf("%q: sent %d datagrams, %d frames, %d bytes; want 300, 900, 1200000", send, c.Packets, c.Frames, c.Bytes)
		}
		if c.ForwardedFrames != 900 || c.ForwardedDatagrams != 300 || c.ForwardedBytes != 300*4000 {
			t.Errorf("%q: forwarded %d frames, %d datagrams, %d bytes; want 900, 300, 1200000", send, c.ForwardedFrames, c.ForwardedDatagrams, c.ForwardedBytes)
		}
		if send == SendAuto && c.Syscalls >= c.Packets {
			t.Errorf("%d send calls for %d datagrams: not batched", c.Syscalls, c.Packets)
		}
		if s := sumTicks(ticks); s.ForwardedDatagrams != c.ForwardedDatagrams || s.Frames != c.Frames || !ticks[len(ticks)-1].Final {
			t.Errorf("%q: ticks add up to %d forwarded datagrams, %d frames; totals %d, %d", send, s.ForwardedDatagrams, s.Frames, c.ForwardedDatagrams, c.Frames)
		}
		if mac := g.neighbour(netip.MustParseAddr("203.0.113.2")); !bytes.Equal(mac, net.HardwareAddr{2, 0x77, 0x66, 0, 0, 0x0b}) {
			t.Errorf("the guest's ARP for 203.0.113.2 on link B got %v", mac)
		}
		if mac := g.neighbour(netip.MustParseAddr("198.51.100.2")); !bytes.Equal(mac, net.HardwareAddr{2, 0x77, 0x66, 0, 0, 0x0a}) {
			t.Errorf("the guest's ARP for 198.51.100.2 on link A got %v", mac)
		}
	}
}

func TestFrameLinkBlockedShowsZeroForwarded(t *testing.T) {
	g, c, _ := runThroughFakeGuest(t, func(uint16, int) bool { return true }, SendAuto)
	if c.Packets != 300 || c.ForwardedFrames != 0 || c.ForwardedDatagrams != 0 || c.ForwardedBytes != 0 {
		t.Errorf("sent %d, forwarded %d frames %d datagrams %d bytes; want 300 sent and nothing forwarded", c.Packets, c.ForwardedFrames, c.ForwardedDatagrams, c.ForwardedBytes)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.got != 900 {
		t.Errorf("the guest received %d frames, want 900", g.got)
	}
}

// A group missing a fragment is counted in frames but not as a datagram.
func TestFrameLinkCountsOnlyWholeDatagrams(t *testing.T) {
	_, c, _ := runThroughFakeGuest(t, func(id uint16, frag int) bool { return id%10 == 0 && frag == 1 }, SendAuto)
	if c.ForwardedDatagrams != 270 || c.ForwardedFrames != 870 || c.ForwardedBytes != 270*4000 {
		t.Errorf("forwarded %d frames, %d datagrams, %d bytes; want 870, 270, 1080000", c.ForwardedFrames, c.ForwardedDatagrams, c.ForwardedBytes)
	}
}

func TestFrameLinkRefusals(t *testing.T) {
	_, in, out := newFakeGuest(t, nil)
	spec := Spec{Profile: FragmentForward, MaxPackets: 1}
	bad := func(mod func(in, out *Link, to *Addrs)) error {
		i, o := *in, *out
		to := Addrs{ForwardIn: &i, ForwardOut: &o}
		mod(&i, &o, &to)
		_, err := Run(context.Background(), spec, to, Allow{netip.MustParsePrefix("10.0.0.0/8")}, nil)
		return err
	}
	for name, tc := range map[string]struct {
		mod  func(in, out *Link, to *Addrs)
		want string
	}{
		"remote hypervisor": {func(in, _ *Link, _ *Addrs) { in.GuestSock = netip.MustParseAddrPort("10.1.2.3:5000") }, "not on loopback"},
		"not allowed":       {func(_, out *Link, _ *Addrs) { out.HostSock = netip.MustParseAddrPort("192.0.2.1:5000") }, "lab.allow"},
		"dest elsewhere":    {func(_, _ *Link, to *Addrs) { to.Forward = netip.MustParseAddrPort("192.0.2.9:9") }, "out link's network"},
		"dest is guest":     {func(_, _ *Link, to *Addrs) { to.Forward = netip.MustParseAddrPort("203.0.113.1:9") }, "out link's network"},
		"no MAC":            {func(in, _ *Link, _ *Addrs) { in.GuestMAC = nil }, "GuestMAC"},
		"overlap":           {func(_, out *Link, _ *Addrs) { out.GuestIP = netip.MustParsePrefix("198.51.100.1/16") }, "HostIP"},
	} {
		err := bad(tc.mod)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", name, err, tc.want)
		}
	}
}
