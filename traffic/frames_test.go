package traffic

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

var (
	testHostMAC  = net.HardwareAddr{0x02, 0x77, 0x66, 0x00, 0x00, 0x0a}
	testGuestMAC = net.HardwareAddr{0x52, 0x54, 0x00, 0x12, 0x34, 0x02}
	testSrc      = netip.MustParseAddrPort("198.51.100.2:49200")
	testDst      = netip.MustParseAddrPort("203.0.113.2:9")
)

// ipChecksumOK verifies an IPv4 header's checksum the way a receiver does: the ones'-complement
// sum over the header, checksum included, is all ones.
func ipChecksumOK(h []byte) bool { return fold(sumWords(0, h)) == 0xffff }

// decodeGroup decodes frames with gopacket, checks every fragment's header, and returns the
// reassembled IP payload (UDP header and data).
func decodeGroup(t *testing.T, frames [][]byte, id uint16, mtu int) []byte {
	t.Helper()
	var whole []byte
	for i, fr := range frames {
		pkt := gopacket.NewPacket(fr, layers.LayerTypeEthernet, gopacket.Default)
		eth, _ := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if eth == nil || ip == nil {
			t.Fatalf("frame %d does not decode as Ethernet/IPv4: %v", i, pkt.ErrorLayer())
		}
		if !bytes.Equal(eth.SrcMAC, testHostMAC) || !bytes.Equal(eth.DstMAC, testGuestMAC) || eth.EthernetType != layers.EthernetTypeIPv4 {
			t.Errorf("frame %d: Ethernet %v -> %v type %v", i, eth.SrcMAC, eth.DstMAC, eth.EthernetType)
		}
		if ip.Id != id || ip.Protocol != layers.IPProtocolUDP || ip.TTL != frameTTL || ip.IHL != 5 {
			t.Errorf("frame %d: id %d proto %v ttl %d ihl %d", i, ip.Id, ip.Protocol, ip.TTL, ip.IHL)
		}
		if !ip.SrcIP.Equal(testSrc.Addr().AsSlice()) || !ip.DstIP.Equal(testDst.Addr().AsSlice()) {
			t.Errorf("frame %d: %v -> %v", i, ip.SrcIP, ip.DstIP)
		}
		if int(ip.Length) > mtu || int(ip.Length) != ipv4Header+len(ip.Payload) {
			t.Errorf("frame %d: IP length %d, payload %d, MTU %d", i, ip.Length, len(ip.Payload), mtu)
		}
		if !ipChecksumOK(fr[ethHeader : ethHeader+ipv4Header]) {
			t.Errorf("frame %d: bad IP header checksum %#04x", i, ip.Checksum)
		}
		last := i == len(frames)-1
		if mf := ip.Flags&layers.IPv4MoreFragments != 0; mf == last && len(frames) > 1 {
			t.Errorf("frame %d of %d: MF = %v", i, len(frames), mf)
		}
		if ip.Flags&layers.IPv4DontFragment != 0 {
			t.Errorf("frame %d: DF set", i)
		}
		if int(ip.FragOffset)*8 != len(whole) {
			t.Errorf("frame %d: offset %d×8, want %d", i, ip.FragOffset, len(whole))
		}
		if !last && len(ip.Payload)%8 != 0 {
			t.Errorf("frame %d: a non-last fragment of %d bytes (not a multiple of 8)", i, len(ip.Payload))
		}
		whole = append(whole, ip.Payload...)
	}
	return whole
}

// The frames decode back with gopacket into a correct fragment group, and the reassembled
// datagram is the UDP datagram gopacket builds unfragmented (same checksum).
func TestBuildFragmentsDecodes(t *testing.T) {
	for _, tc := range []struct{ payload, mtu, frames int }{
		{16, 1500, 1}, {1472, 1500, 1}, {1473, 1500, 2}, {4000, 1500, 3}, {2952, 1500, 2}, {2953, 1500, 3},
		{65507, 1500, 45}, {4000, 576, 8}, {100, 68, 3},
	} {
		payload := make([]byte, tc.payload)
		fillPayload(payload)
		PutHeader(payload, FragmentForward, 77)
		frames, err := BuildFragments(Datagram{SrcMAC: testHostMAC, DstMAC: testGuestMAC, Src: testSrc, Dst: testDst,
			ID: 0xbeef, Payload: payload, MTU: tc.mtu})
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := FragmentPlan(tc.payload, tc.mtu); len(frames) != tc.frames || n != tc.frames {
			t.Errorf("payload %d MTU %d: %d frames, plan %d, want %d", tc.payload, tc.mtu, len(frames), n, tc.frames)
			continue
		}
		whole := decodeGroup(t, frames, 0xbeef, tc.mtu)
		var udp layers.UDP
		if err := udp.DecodeFromBytes(whole, gopacket.NilDecodeFeedback); err != nil {
			t.Fatal(err)
		}
		if int(udp.SrcPort) != 49200 || int(udp.DstPort) != 9 || int(udp.Length) != len(whole) || !bytes.Equal(udp.Payload, payload) {
			t.Errorf("payload %d: reassembled UDP %d->%d length %d, payload equal %v", tc.payload, udp.SrcPort, udp.DstPort, udp.Length, bytes.Equal(udp.Payload, payload))
		}
		if want := referenceUDPChecksum(t, payload); udp.Checksum != want {
			t.Errorf("payload %d: UDP checksum %#04x, gopacket computes %#04x", tc.payload, udp.Checksum, want)
		}
		if h, ok := ParseHeader(udp.Payload); !ok || h.Seq != 77 || h.Profile != FragmentForward {
			t.Errorf("payload header %+v %v", h, ok)
		}
	}
}

// referenceUDPChecksum is the checksum gopacket gives the same datagram unfragmented.
func referenceUDPChecksum(t *testing.T, payload []byte) uint16 {
	t.Helper()
	ip := layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: testSrc.Addr().AsSlice(), DstIP: testDst.Addr().AsSlice()}
	udp := layers.UDP{SrcPort: 49200, DstPort: 9}
	_ = udp.SetNetworkLayerForChecksum(&ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, &udp, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	return binary.BigEndian.Uint16(buf.Bytes()[6:])
}

func TestBuildFragmentsRefuses(t *testing.T) {
	ok := Datagram{SrcMAC: testHostMAC, DstMAC: testGuestMAC, Src: testSrc, Dst: testDst, Payload: make([]byte, 100)}
	for name, d := range map[string]Datagram{
		"mtu":  func() Datagram { d := ok; d.MTU = 60; return d }(),
		"ipv6": func() Datagram { d := ok; d.Dst = netip.MustParseAddrPort("[2001:db8::1]:9"); return d }(),
		"mac":  func() Datagram { d := ok; d.SrcMAC = nil; return d }(),
		"size": func() Datagram { d := ok; d.Payload = make([]byte, 65508); return d }(),
	} {
		if _, err := BuildFragments(d); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// The send path's restamped template is byte for byte what gopacket builds for that ID and
// sequence number, checksums included.
func TestTemplateStampMatchesGopacket(t *testing.T) {
	for _, size := range []int{16, 1000, 4000, 9000} {
		tmpl, err := newGroupTemplate(testHostMAC, testGuestMAC, testSrc, testDst, size, 1500)
		if err != nil {
			t.Fatal(err)
		}
		slot := tmpl.clone()
		for _, seq := range []uint64{0, 1, 65535, 65536, 0x0123456789abcdef, ^uint64(0), 48879} {
			slot.stamp(uint16(seq), seq)
			payload := make([]byte, size)
			fillPayload(payload)
			PutHeader(payload, FragmentForward, seq)
			want, err := BuildFragments(Datagram{SrcMAC: testHostMAC, DstMAC: testGuestMAC, Src: testSrc, Dst: testDst, ID: uint16(seq), Payload: payload})
			if err != nil {
				t.Fatal(err)
			}
			if len(want) != len(slot.frames) {
				t.Fatalf("size %d: %d frames, want %d", size, len(slot.frames), len(want))
			}
			for i := range want {
				if !bytes.Equal(slot.frames[i], want[i]) {
					t.Fatalf("size %d seq %#x frame %d differs from gopacket's:\n got %x\nwant %x", size, seq, i, slot.frames[i][:64], want[i][:64])
				}
			}
		}
		if bytes.Equal(slot.frames[0], tmpl.frames[0]) {
			t.Fatal("stamping a clone changed the template it came from, or did nothing")
		}
	}
}

func TestARPReplyDecodes(t *testing.T) {
	asker := net.HardwareAddr{0x52, 0x54, 0, 0, 0, 3}
	b, err := arpReply(testHostMAC, netip.MustParseAddr("203.0.113.2"), asker, netip.MustParseAddr("203.0.113.1"))
	if err != nil {
		t.Fatal(err)
	}
	pkt := gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.Default)
	eth, _ := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	arp, _ := pkt.Layer(layers.LayerTypeARP).(*layers.ARP)
	if eth == nil || arp == nil {
		t.Fatalf("does not decode: %v", pkt.ErrorLayer())
	}
	if len(b) != 60 || !bytes.Equal(eth.DstMAC, asker) || !bytes.Equal(eth.SrcMAC, testHostMAC) {
		t.Errorf("frame of %d bytes, %v -> %v", len(b), eth.SrcMAC, eth.DstMAC)
	}
	if arp.Operation != layers.ARPReply || arp.AddrType != layers.LinkTypeEthernet || arp.Protocol != layers.EthernetTypeIPv4 ||
		!bytes.Equal(arp.SourceHwAddress, testHostMAC) || !bytes.Equal(arp.SourceProtAddress, []byte{203, 0, 113, 2}) ||
		!bytes.Equal(arp.DstHwAddress, asker) || !bytes.Equal(arp.DstProtAddress, []byte{203, 0, 113, 1}) {
		t.Errorf("ARP %+v", arp)
	}
}

func TestGroupTracker(t *testing.T) {
	tr := newGroupTracker()
	now := time.Unix(1000, 0)
	k := fragKey{src: [4]byte{1, 2, 3, 4}, id: 7}
	// Out of order, with a duplicate-free split different from ours: 0..1480, 2960..4008, 1480..2960.
	if done, _ := tr.add(k, 0, 1480, true, now); done {
		t.Fatal("complete after the first fragment")
	}
	if done, _ := tr.add(k, 2960, 1048, false, now); done {
		t.Fatal("complete with the middle fragment missing")
	}
	if done, size := tr.add(k, 1480, 1480, true, now); !done || size != 4008 {
		t.Fatalf("done %v size %d, want true 4008", done, size)
	}
	if len(tr.groups) != 0 {
		t.Fatalf("%d groups left open", len(tr.groups))
	}
	if done, size := tr.add(k, 0, 64, false, now); !done || size != 64 {
		t.Fatalf("unfragmented: done %v size %d", done, size)
	}
	// A group that never completes is dropped once the table fills and it is old.
	tr.add(fragKey{id: 1}, 0, 8, true, now)
	for i := range maxOpenGroups - 1 {
		tr.add(fragKey{id: uint16(i + 2), src: [4]byte{9}}, 0, 8, true, now.Add(3*time.Second))
	}
	tr.add(fragKey{id: 9, src: [4]byte{8}}, 0, 8, true, now.Add(3*time.Second))
	if _, ok := tr.groups[fragKey{id: 1}]; ok || len(tr.groups) != maxOpenGroups {
		t.Fatalf("old group kept (%v), %d open", ok, len(tr.groups))
	}
}
