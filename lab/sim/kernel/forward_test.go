package kernel

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/wfplab/wfplab/traffic"
)

var (
	fwdInMAC    = net.HardwareAddr{0x52, 0x54, 0, 0, 0, 2}
	fwdOutMAC   = net.HardwareAddr{0x52, 0x54, 0, 0, 0, 3}
	neighInMAC  = net.HardwareAddr{0x02, 0x77, 0x66, 0, 0, 0x0a}
	neighOutMAC = net.HardwareAddr{0x02, 0x77, 0x66, 0, 0, 0x0b}
	fwdInAddr   = netip.MustParsePrefix("198.51.100.1/24")
	fwdOutAddr  = netip.MustParsePrefix("203.0.113.1/24")
	fwdSrc      = netip.MustParseAddrPort("198.51.100.2:49200")
	fwdDst      = netip.MustParseAddrPort("203.0.113.2:9")
)

// group builds the frames of one datagram of size bytes from the in link's neighbour.
func group(t *testing.T, id uint16, size int, dst netip.AddrPort) [][]byte {
	t.Helper()
	return groupTo(t, fwdInMAC, id, size, dst)
}

// groupTo is group with the guest's in MAC given.
func groupTo(t *testing.T, guestMAC net.HardwareAddr, id uint16, size int, dst netip.AddrPort) [][]byte {
	t.Helper()
	frames, err := traffic.BuildFragments(traffic.Datagram{SrcMAC: neighInMAC, DstMAC: guestMAC, Src: fwdSrc, Dst: dst,
		ID: id, Payload: bytes.Repeat([]byte{byte(id)}, size)})
	if err != nil {
		t.Fatal(err)
	}
	return frames
}

func TestReassemblerGroups(t *testing.T) {
	r := newReassembler()
	now := time.Unix(100, 0)
	k := fragKey{src: fwdSrc.Addr(), dst: fwdDst.Addr(), id: 1, proto: protoUDP}
	// Out of order: last, first, middle.
	for i, f := range []struct {
		off, n int
		more   bool
	}{{2960, 1048, false}, {0, 1480, true}} {
		if c, drop := r.add(k, f.off, f.n, f.more, []byte{byte(i)}, now); c != nil || drop != 0 {
			t.Fatalf("fragment %d: chain %v, dropped %d", i, c, drop)
		}
	}
	// A duplicate is dropped and does not complete the group.
	if c, drop := r.add(k, 0, 1480, true, []byte{9}, now); c != nil || drop != 1 {
		t.Fatalf("duplicate: chain %v, dropped %d", c, drop)
	}
	c, drop := r.add(k, 1480, 1480, true, []byte{2}, now)
	if len(c) != 3 || drop != 0 || c[0][0] != 0 || c[1][0] != 1 || c[2][0] != 2 || len(r.groups) != 0 {
		t.Fatalf("complete group: chain %v, dropped %d, %d open", c, drop, len(r.groups))
	}
	// Another ID is another group; one that never completes expires.
	k2 := k
	k2.id = 2
	r.add(k2, 0, 1480, true, []byte{0}, now)
	if c, drop := r.add(k, 0, 1480, true, []byte{0}, now.Add(fragTimeout+time.Second)); c != nil || drop != 1 || len(r.groups) != 1 {
		t.Fatalf("expiry: chain %v, dropped %d, %d open", c, drop, len(r.groups))
	}
	// A non-last fragment whose size is not a multiple of 8 is malformed.
	k3 := k
	k3.id = 3
	if _, drop := r.add(k3, 0, 1001, true, nil, now.Add(fragTimeout+time.Second)); drop != 1 {
		t.Fatalf("malformed fragment kept")
	}
}

func TestReassemblerBounds(t *testing.T) {
	r := newReassembler()
	now := time.Unix(100, 0)
	for i := range maxFragGroups {
		r.add(fragKey{id: uint16(i)}, 0, 8, true, nil, now)
	}
	if _, drop := r.add(fragKey{id: maxFragGroups}, 0, 8, true, nil, now); drop != 1 || len(r.groups) != maxFragGroups {
		t.Fatalf("group over the bound: dropped %d, %d open", drop, len(r.groups))
	}
	k := fragKey{id: 1}
	for i := 1; i < maxGroupFrags; i++ {
		r.add(k, i*8, 8, true, nil, now)
	}
	if _, drop := r.add(k, maxGroupFrags*8, 8, true, nil, now); drop != 1 {
		t.Fatalf("fragment over the per-group bound kept")
	}
	// Once they are old, the next fragment clears them.
	if _, drop := r.add(fragKey{id: 60000}, 0, 8, true, nil, now.Add(fragTimeout+time.Second)); drop != maxFragGroups-1+maxGroupFrags {
		t.Fatalf("expired %d fragments, want %d", drop, maxFragGroups-1+maxGroupFrags)
	}
}

// fakePort records the frames written to it.
type fakePort struct {
	mu     sync.Mutex
	frames [][]byte
}

func (p *fakePort) writeFrame(fr []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.frames = append(p.frames, append([]byte(nil), fr...))
	return nil
}

func (p *fakePort) take() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.frames
	p.frames = nil
	return f
}

func newTestForwarder(k *Kernel) (*frameForwarder, *fakePort, *fakePort) {
	in, out := &fakePort{}, &fakePort{}
	return newFrameForwarder(k, fwdInMAC, fwdOutMAC, fwdInAddr, fwdOutAddr, in, out), in, out
}

// decodeARP decodes an ARP frame with gopacket.
func decodeARP(t *testing.T, fr []byte) (*layers.Ethernet, *layers.ARP) {
	t.Helper()
	pkt := gopacket.NewPacket(fr, layers.LayerTypeEthernet, gopacket.Default)
	eth, _ := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	arp, _ := pkt.Layer(layers.LayerTypeARP).(*layers.ARP)
	if eth == nil || arp == nil {
		t.Fatalf("not an ARP frame: %x", fr)
	}
	return eth, arp
}

func TestForwarderAnswersARPForItsAddressesOnly(t *testing.T) {
	k := New(Config{Arch: "x64"})
	defer k.Close()
	f, in, out := newTestForwarder(k)
	f.fromIn(arpFrame(1, neighInMAC, fwdSrc.Addr(), nil, fwdInAddr.Addr()))
	f.fromIn(arpFrame(1, neighInMAC, fwdSrc.Addr(), nil, netip.MustParseAddr("198.51.100.7")))
	f.fromOut(arpFrame(1, neighOutMAC, fwdDst.Addr(), nil, fwdOutAddr.Addr()))
	f.fromOut(arpFrame(1, neighOutMAC, fwdDst.Addr(), nil, fwdInAddr.Addr())) // the in address, asked on out
	replies := in.take()
	if len(replies) != 1 {
		t.Fatalf("%d replies on in, want 1", len(replies))
	}
	eth, arp := decodeARP(t, replies[0])
	if !bytes.Equal(eth.DstMAC, neighInMAC) || !bytes.Equal(eth.SrcMAC, fwdInMAC) || arp.Operation != layers.ARPReply ||
		!bytes.Equal(arp.SourceHwAddress, fwdInMAC) || !bytes.Equal(arp.SourceProtAddress, []byte{198, 51, 100, 1}) ||
		!bytes.Equal(arp.DstHwAddress, neighInMAC) || !bytes.Equal(arp.DstProtAddress, []byte{198, 51, 100, 2}) {
		t.Errorf("reply on in: %v -> %v, %+v", eth.SrcMAC, eth.DstMAC, arp)
	}
	replies = out.take()
	if len(replies) != 1 {
		t.Fatalf("%d replies on out, want 1", len(replies))
	}
	if _, arp := decodeARP(t, replies[0]); !bytes.Equal(arp.SourceProtAddress, []byte{203, 0, 113, 1}) || !bytes.Equal(arp.SourceHwAddress, fwdOutMAC) {
		t.Errorf("reply on out: %+v", arp)
	}
	if s := f.Stats(); s.ARPReplies != 2 {
		t.Errorf("ARPReplies %d, want 2", s.ARPReplies)
	}
}

// checkForwarded checks a frame the guest put on the out link: next hop's MAC, the out NIC's
// MAC, TTL one less with a good header checksum, the same IP ID.
func checkForwarded(t *testing.T, fr []byte, id uint16) *layers.IPv4 {
	t.Helper()
	return checkForwardedFrom(t, fr, fwdOutMAC, id)
}

func checkForwardedFrom(t *testing.T, fr []byte, outMAC net.HardwareAddr, id uint16) *layers.IPv4 {
	t.Helper()
	pkt := gopacket.NewPacket(fr, layers.LayerTypeEthernet, gopacket.Default)
	eth, _ := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if eth == nil || ip == nil {
		t.Fatalf("forwarded frame does not decode: %x", fr[:min(len(fr), 40)])
	}
	if !bytes.Equal(eth.DstMAC, neighOutMAC) || !bytes.Equal(eth.SrcMAC, outMAC) {
		t.Errorf("forwarded frame %v -> %v", eth.SrcMAC, eth.DstMAC)
	}
	if ip.TTL != 63 || ip.Id != id || checksum(fr[ethHeader:ethHeader+20]) != 0 {
		t.Errorf("forwarded IP: TTL %d, id %d, header checksum ok %v", ip.TTL, ip.Id, checksum(fr[ethHeader:ethHeader+20]) == 0)
	}
	return ip
}

func TestForwarderForwardsWholeGroupsAfterARP(t *testing.T) {
	k := New(Config{Arch: "x64", GroupFragments: true})
	defer k.Close()
	f, _, out := newTestForwarder(k)
	frames := group(t, 7, 4000, fwdDst)
	// The last fragment first: each fragment is indicated alone, the group only once complete.
	f.fromIn(frames[2])
	f.fromIn(frames[0])
	if tot := k.totals()[LayerForward]; tot.Chains != 2 || tot.NBLs != 2 || len(out.take()) != 0 {
		t.Fatalf("an incomplete group was indicated (%d indications of %d NBLs, want 2 of 1) or forwarded", tot.Chains, tot.NBLs)
	}
	f.fromIn(frames[1])
	if tot := k.totals()[LayerForward]; tot.Chains != 4 || tot.NBLs != 6 || tot.Blocked != 0 {
		t.Fatalf("forward layer totals %+v, want 3 lone fragments and one chain of 3 NBLs, not blocked", tot)
	}
	// The next hop is unknown: the guest asks for it and holds the frames.
	asked := out.take()
	if len(asked) != 1 {
		t.Fatalf("%d frames on out before the next hop answered, want 1 ARP request", len(asked))
	}
	eth, arp := decodeARP(t, asked[0])
	if !bytes.Equal(eth.DstMAC, broadcastMAC) || arp.Operation != layers.ARPRequest || !bytes.Equal(arp.DstProtAddress, []byte{203, 0, 113, 2}) ||
		!bytes.Equal(arp.SourceProtAddress, []byte{203, 0, 113, 1}) || !bytes.Equal(arp.SourceHwAddress, fwdOutMAC) {
		t.Fatalf("ARP request %v %+v", eth.DstMAC, arp)
	}
	f.fromOut(arpFrame(2, neighOutMAC, fwdDst.Addr(), fwdOutMAC, fwdOutAddr.Addr()))
	sent := out.take()
	if len(sent) != 3 {
		t.Fatalf("%d frames forwarded, want 3", len(sent))
	}
	var whole []byte
	for i, fr := range sent {
		ip := checkForwarded(t, fr, 7)
		if i == 0 && ip.FragOffset != 2960/8 { // held in arrival order
			t.Errorf("first forwarded fragment at offset %d, want the one that came first", ip.FragOffset*8)
		}
		whole = append(whole, ip.Payload...)
	}
	if len(whole) != 4008 {
		t.Errorf("forwarded %d bytes of IP payload, want 4008", len(whole))
	}
	// Known next hop now: the next group goes straight out; a single datagram is a chain of 1.
	for _, fr := range group(t, 8, 4000, fwdDst) {
		f.fromIn(fr)
	}
	f.fromIn(group(t, 9, 100, fwdDst)[0])
	if n := len(out.take()); n != 4 {
		t.Errorf("%d frames forwarded, want 4", n)
	}
	if tot := k.totals()[LayerForward]; tot.Chains != 9 || tot.NBLs != 13 {
		t.Errorf("totals %+v, want 9 indications (6 lone fragments, 2 groups, 1 datagram), 13 NBLs", tot)
	}
}

func TestForwarderBlockLeaksLastNBLWhenUnpatched(t *testing.T) {
	for _, patched := range []bool{false, true} {
		k := New(Config{Arch: "x64", Patched: patched, GroupFragments: true})
		f, _, out := newTestForwarder(k)
		f.learn(fwdDst.Addr(), neighOutMAC)
		if err := k.StartDriver(DriverConfig{ForwardPrefix: netip.MustParsePrefix("203.0.113.0/24")}); err != nil {
			t.Fatal(err)
		}
		for id := range uint16(5) {
			for _, fr := range group(t, id, 4000, fwdDst) {
				f.fromIn(fr)
			}
		}
		f.fromIn(group(t, 99, 64, fwdDst)[0])
		// Only the single datagram (one NBL) passes the driver.
		if n := len(out.take()); n != 1 {
			t.Errorf("patched %v: %d frames forwarded through a path that blocks groups, want the 1 unfragmented datagram", patched, n)
		}
		c, _ := k.Counters()
		lc := c[LayerForward]
		if lc.Classify != 21 || lc.Blocked != 5 || lc.NBLs != 31 || lc.MultiChain != 5 || lc.Hist[2] != 5 || lc.Hist[0] != 16 || lc.MultiBlocked != 5 {
			t.Errorf("patched %v: driver counters %+v, want 15 lone fragments and 1 datagram permitted, 5 groups of 3 blocked", patched, lc)
		}
		wantLeaks := uint64(5)
		if patched {
			wantLeaks = 0
		}
		if tot := k.totals()[LayerForward]; tot.Leaked != wantLeaks || tot.LeakedBytes != wantLeaks*k.NBLBytes() {
			t.Errorf("patched %v: leaked %d chains (%d bytes), want %d", patched, tot.Leaked, tot.LeakedBytes, wantLeaks)
		}
		if s := f.Stats(); s.Groups != 21 || s.Blocked != 5 || s.FramesOut != 1 {
			t.Errorf("patched %v: stats %+v", patched, s)
		}
		k.Close()
	}
}

func TestForwarderDrops(t *testing.T) {
	k := New(Config{Arch: "x86"})
	defer k.Close()
	f, in, out := newTestForwarder(k)
	f.learn(fwdDst.Addr(), neighOutMAC)
	noRoute := group(t, 1, 64, netip.MustParseAddrPort("192.0.2.1:9"))[0]
	toGuest := group(t, 2, 64, netip.AddrPortFrom(fwdInAddr.Addr(), 9))[0]
	otherMAC := group(t, 3, 64, fwdDst)[0]
	copy(otherMAC, []byte{2, 0, 0, 0, 0, 9})
	ttl1 := group(t, 4, 64, fwdDst)[0]
	ttl1[ethHeader+8] = 1
	ttl1[ethHeader+10], ttl1[ethHeader+11] = 0, 0
	binary.BigEndian.PutUint16(ttl1[ethHeader+10:], checksum(ttl1[ethHeader:ethHeader+20]))
	badSum := group(t, 5, 64, fwdDst)[0]
	badSum[ethHeader+10] ^= 0xff
	for _, fr := range [][]byte{noRoute, toGuest, otherMAC, ttl1, badSum} {
		f.fromIn(fr)
	}
	if n := len(out.take()) + len(in.take()); n != 0 {
		t.Errorf("%d frames written", n)
	}
	if tot := k.totals()[LayerForward]; tot.Chains != 0 {
		t.Errorf("%d chains indicated", tot.Chains)
	}
	if s := f.Stats(); s.Dropped != 3 || s.FramesIn != 4 {
		t.Errorf("stats %+v, want 3 dropped (no route, TTL, checksum) of 4 frames taken", s)
	}
}

func TestCheckForwarderAddrs(t *testing.T) {
	for _, c := range []struct {
		in, out string
		a, b    string
		ok      bool
	}{
		{"eth1", "eth2", "198.51.100.1/24", "203.0.113.1/24", true},
		{"eth1", "eth1", "198.51.100.1/24", "203.0.113.1/24", false},
		{"eth1", "eth2", "198.51.100.1/16", "198.51.200.1/24", false},
		{"eth1", "eth2", "198.51.100.1/32", "203.0.113.1/24", false},
		{"eth1", "eth2", "2001:db8::1/64", "203.0.113.1/24", false},
	} {
		err := checkForwarderAddrs(c.in, c.out, netip.MustParsePrefix(c.a), netip.MustParsePrefix(c.b))
		if (err == nil) != c.ok {
			t.Errorf("%s %s %s %s: %v", c.in, c.out, c.a, c.b, err)
		}
	}
}
