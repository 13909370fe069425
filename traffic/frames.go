package traffic

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Frame sizes of the forward path's virtual Ethernet links.
const (
	// DefaultMTU is Ethernet's: the guest's NICs carry frames of at most 1500 bytes of IP.
	DefaultMTU = 1500
	ipv4Header = 20
	udpHeader  = 8
	// ethHeader is the Ethernet header without FCS: QEMU's dgram netdev carries no FCS.
	ethHeader = 14
	// frameTTL is what a fresh IPv4 datagram starts with (Windows and Linux use 128 / 64).
	frameTTL = 64
	// minMTU is IPv4's smallest (RFC 791); it also keeps the payload header in the first fragment.
	minMTU = 68
)

// FragmentPlan is how one UDP datagram of payload bytes splits over an MTU: each fragment but
// the last carries per bytes of IP payload (a multiple of 8, UDP header included).
func FragmentPlan(payload, mtu int) (fragments, per int) {
	ip := udpHeader + payload
	per = (mtu - ipv4Header) &^ 7
	if per <= 0 {
		return 0, 0
	}
	if ip+ipv4Header <= mtu {
		return 1, ip
	}
	return (ip + per - 1) / per, per
}

// Datagram is one UDP datagram to put on a virtual Ethernet link.
type Datagram struct {
	SrcMAC, DstMAC net.HardwareAddr
	Src, Dst       netip.AddrPort // IPv4
	ID             uint16         // IPv4 identification, one per fragment group
	Payload        []byte
	MTU            int // 0: DefaultMTU
}

// BuildFragments returns the Ethernet frames of d: one if it fits the MTU, else an IPv4
// fragment group (every fragment with d.ID, MF on all but the last, offsets in 8-byte units,
// header checksums, and the UDP checksum over the whole datagram in the first fragment).
// The frames are built with gopacket's layers.
func BuildFragments(d Datagram) ([][]byte, error) {
	mtu := d.MTU
	if mtu == 0 {
		mtu = DefaultMTU
	}
	if mtu < minMTU || mtu > 65535 {
		return nil, fmt.Errorf("traffic: MTU %d is outside %d..65535", mtu, minMTU)
	}
	if !d.Src.Addr().Is4() || !d.Dst.Addr().Is4() {
		return nil, fmt.Errorf("traffic: the forward path is IPv4 only; got %s -> %s", d.Src, d.Dst)
	}
	if len(d.Payload) > maxUDPPayload4 {
		return nil, fmt.Errorf("traffic: a %d-byte payload is above the largest UDP payload over IPv4 (%d)", len(d.Payload), maxUDPPayload4)
	}
	if len(d.SrcMAC) != 6 || len(d.DstMAC) != 6 {
		return nil, fmt.Errorf("traffic: Ethernet addresses must be 6 bytes (source %v, destination %v)", d.SrcMAC, d.DstMAC)
	}
	src, dst := d.Src.Addr().As4(), d.Dst.Addr().As4()
	ip := layers.IPv4{Version: 4, TTL: frameTTL, Protocol: layers.IPProtocolUDP, Id: d.ID,
		SrcIP: net.IP(src[:]), DstIP: net.IP(dst[:])}
	udp := layers.UDP{SrcPort: layers.UDPPort(d.Src.Port()), DstPort: layers.UDPPort(d.Dst.Port())}
	if err := udp.SetNetworkLayerForChecksum(&ip); err != nil {
		return nil, err
	}
	// The whole UDP datagram first (its checksum covers all of it), then cut into fragments.
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, &udp, gopacket.Payload(d.Payload)); err != nil {
		return nil, fmt.Errorf("traffic: building a UDP datagram: %w", err)
	}
	whole := buf.Bytes()
	n, per := FragmentPlan(len(d.Payload), mtu)
	eth := layers.Ethernet{SrcMAC: d.SrcMAC, DstMAC: d.DstMAC, EthernetType: layers.EthernetTypeIPv4}
	frames := make([][]byte, 0, n)
	for off := 0; off < len(whole); off += per {
		end := min(off+per, len(whole))
		frag := ip
		frag.FragOffset = uint16(off / 8)
		if end < len(whole) {
			frag.Flags = layers.IPv4MoreFragments
		}
		fb := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(fb, opts, &eth, &frag, gopacket.Payload(whole[off:end])); err != nil {
			return nil, fmt.Errorf("traffic: building fragment at offset %d: %w", off, err)
		}
		frames = append(frames, append([]byte(nil), fb.Bytes()...))
	}
	return frames, nil
}

// groupTemplate is one fragment group built once with gopacket, then restamped per datagram
// with a new IP ID and payload sequence number: only those bytes and the checksums change,
// so the send path does not run the serializer for every datagram.
type groupTemplate struct {
	frames [][]byte
	// udpSum is the ones'-complement sum of the pseudo-header and UDP datagram with the
	// checksum and the sequence number zeroed; seqAt and csumAt are offsets in frames[0].
	udpSum        uint32
	seqAt, csumAt int
}

const ipAt = ethHeader // offset of the IPv4 header in a frame

func newGroupTemplate(srcMAC, dstMAC net.HardwareAddr, src, dst netip.AddrPort, payload, mtu int) (*groupTemplate, error) {
	if payload < HeaderLen {
		return nil, fmt.Errorf("traffic: a fragment-forward payload needs at least %d bytes for its header, got %d", HeaderLen, payload)
	}
	body := make([]byte, payload)
	fillPayload(body)
	PutHeader(body, FragmentForward, 0)
	frames, err := BuildFragments(Datagram{SrcMAC: srcMAC, DstMAC: dstMAC, Src: src, Dst: dst, Payload: body, MTU: mtu})
	if err != nil {
		return nil, err
	}
	t := &groupTemplate{frames: frames, csumAt: ipAt + ipv4Header + 6, seqAt: ipAt + ipv4Header + udpHeader + 8}
	// Recompute the sum from scratch over what the checksum covers, seq and checksum zeroed.
	var sum uint32
	sum = sumWords(sum, frames[0][ipAt+12:ipAt+20]) // source and destination addresses
	ulen := udpHeader + payload
	sum += uint32(layers.IPProtocolUDP) + uint32(ulen)
	for i, f := range frames {
		ihl := ipAt + ipv4Header
		tot := int(binary.BigEndian.Uint16(f[ipAt+2:]))
		part := f[ihl : ipAt+tot]
		if i == 0 {
			z := append([]byte(nil), part...)
			z[6], z[7] = 0, 0
			clear(z[udpHeader+8 : udpHeader+16])
			part = z
		}
		sum = sumWords(sum, part) // every fragment but the last carries a multiple of 8 bytes
	}
	t.udpSum = sum
	return t, nil
}

// clone returns a template with frame buffers of its own, for one slot of a send batch.
func (t *groupTemplate) clone() *groupTemplate {
	c := *t
	c.frames = make([][]byte, len(t.frames))
	for i, f := range t.frames {
		c.frames[i] = append([]byte(nil), f...)
	}
	return &c
}

// stamp rewrites the group in place for IP ID id and payload sequence seq.
func (t *groupTemplate) stamp(id uint16, seq uint64) {
	for _, f := range t.frames {
		binary.BigEndian.PutUint16(f[ipAt+4:], id)
		f[ipAt+10], f[ipAt+11] = 0, 0
		binary.BigEndian.PutUint16(f[ipAt+10:], ^fold(sumWords(0, f[ipAt:ipAt+ipv4Header])))
	}
	f := t.frames[0]
	binary.BigEndian.PutUint64(f[t.seqAt:], seq)
	c := ^fold(sumWords(t.udpSum, f[t.seqAt:t.seqAt+8]))
	if c == 0 {
		c = 0xffff // RFC 768: a computed zero is sent as all ones
	}
	binary.BigEndian.PutUint16(f[t.csumAt:], c)
}

// sumWords adds b as big-endian 16-bit words (an odd last byte padded with zero) to sum.
func sumWords(sum uint32, b []byte) uint32 {
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	return sum
}

func fold(sum uint32) uint16 {
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return uint16(sum)
}

// arpReply builds the ARP reply of a neighbour (mac, ip) to a request from (toMAC, toIP).
func arpReply(mac net.HardwareAddr, ip netip.Addr, toMAC net.HardwareAddr, toIP netip.Addr) ([]byte, error) {
	a, b := ip.As4(), toIP.As4()
	eth := layers.Ethernet{SrcMAC: mac, DstMAC: toMAC, EthernetType: layers.EthernetTypeARP}
	arp := layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, Operation: layers.ARPReply,
		SourceHwAddress: mac, SourceProtAddress: a[:], DstHwAddress: toMAC, DstProtAddress: b[:]}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, &eth, &arp); err != nil {
		return nil, fmt.Errorf("traffic: building an ARP reply for %s: %w", ip, err)
	}
	return buf.Bytes(), nil
}
