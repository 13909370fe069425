package kernel

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// The forward path of a simulated guest that routes between two Ethernet links, as Windows
// does with IP forwarding on: frames come in on one interface, IPv4 fragment groups are held
// until complete and indicated at the forward layer as one chain of one NBL per fragment
// (so the driver's block and netio's leak apply as on the loopback path), and what is
// permitted goes out of the other interface to the next hop, whose MAC the guest learns by ARP.
// The I/O is AF_PACKET on Linux (forward_linux.go); the logic here runs on any frame port.

// Frame-forwarding parameters (guesses where Windows' figures are not documented as such).
const (
	// fragTimeout drops an incomplete fragment group. Windows keeps them 60 s; the model
	// keeps them less, since a lost fragment here only ties up memory.
	fragTimeout = 5 * time.Second
	// maxFragGroups and maxGroupFrags bound reassembly (Windows bounds it too, by memory).
	maxFragGroups = 1024
	maxGroupFrags = 64
	// maxPendingFrames are frames waiting for the next hop's ARP reply, over all next hops.
	maxPendingFrames = 1024
	// arpRetry is how often an unanswered ARP request is repeated while frames wait.
	arpRetry = 500 * time.Millisecond
	// pendingTimeout drops frames whose next hop never answered.
	pendingTimeout = 3 * time.Second
)

const (
	ethHeader = 14
	etherIPv4 = 0x0800
	etherARP  = 0x0806
	arpLen    = 28
	protoUDP  = 17
)

var broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// framePort writes whole Ethernet frames to one interface.
type framePort interface {
	writeFrame(frame []byte) error
}

// ForwarderStats count what a frame forwarder did.
type ForwarderStats struct {
	FramesIn    uint64 // frames taken from the in interface (ours or broadcast)
	Groups      uint64 // indications at the forward layer (packets and fragments alone, fragment groups)
	Blocked     uint64 // chains the driver blocked
	FramesOut   uint64 // frames written to the out interface
	ARPReplies  uint64 // ARP requests for the guest's own addresses answered
	ARPRequests uint64 // ARP requests sent for next hops
	Dropped     uint64 // frames dropped: no route, TTL, bad header, expired fragments or next hops
}

// frameForwarder is the forwarding logic between two ports; safe for one reader per port.
type frameForwarder struct {
	k                 *Kernel
	inMAC, outMAC     net.HardwareAddr
	inAddr, outAddr   netip.Prefix
	inPort, outPort   framePort
	now               func() time.Time
	reasm             *reassembler
	framesIn, groups  atomic.Uint64
	blocked, out      atomic.Uint64
	arpReplies, arpRq atomic.Uint64
	dropped           atomic.Uint64

	mu      sync.Mutex
	neigh   map[netip.Addr]net.HardwareAddr // the out link's neighbours, learned by ARP
	pending map[netip.Addr]*pendingHop
	queued  int
}

type pendingHop struct {
	frames  [][]byte
	asked   time.Time // last ARP request
	started time.Time
}

func newFrameForwarder(k *Kernel, inMAC, outMAC net.HardwareAddr, inAddr, outAddr netip.Prefix, inPort, outPort framePort) *frameForwarder {
	return &frameForwarder{k: k, inMAC: inMAC, outMAC: outMAC, inAddr: inAddr, outAddr: outAddr,
		inPort: inPort, outPort: outPort, now: time.Now, reasm: newReassembler(),
		neigh: map[netip.Addr]net.HardwareAddr{}, pending: map[netip.Addr]*pendingHop{}}
}

// Stats returns the counters so far.
func (f *frameForwarder) Stats() ForwarderStats {
	return ForwarderStats{FramesIn: f.framesIn.Load(), Groups: f.groups.Load(), Blocked: f.blocked.Load(),
		FramesOut: f.out.Load(), ARPReplies: f.arpReplies.Load(), ARPRequests: f.arpRq.Load(), Dropped: f.dropped.Load()}
}

// forMe reports whether an Ethernet frame is addressed to mac or broadcast.
func forMe(fr []byte, mac net.HardwareAddr) bool {
	dst := net.HardwareAddr(fr[:6])
	return string(dst) == string(mac) || string(dst) == string(broadcastMAC)
}

// fromIn handles a frame read from the in interface. The frame is the caller's buffer.
func (f *frameForwarder) fromIn(fr []byte) {
	if len(fr) < ethHeader || !forMe(fr, f.inMAC) {
		return
	}
	f.framesIn.Add(1)
	switch binary.BigEndian.Uint16(fr[12:]) {
	case etherARP:
		f.arp(fr, f.inPort, f.inMAC, f.inAddr.Addr())
	case etherIPv4:
		f.route(fr)
	}
}

// fromOut handles a frame read from the out interface: ARP for the guest's address there,
// and ARP replies from next hops.
func (f *frameForwarder) fromOut(fr []byte) {
	if len(fr) < ethHeader || !forMe(fr, f.outMAC) || binary.BigEndian.Uint16(fr[12:]) != etherARP {
		return
	}
	f.arp(fr, f.outPort, f.outMAC, f.outAddr.Addr())
}

// arp answers a request for ours on port, and learns the sender of any ARP packet on the out
// link (a reply to our request, or a request that tells us the asker), flushing frames that
// waited for it.
func (f *frameForwarder) arp(fr []byte, port framePort, mac net.HardwareAddr, ours netip.Addr) {
	a := fr[ethHeader:]
	if len(a) < arpLen || binary.BigEndian.Uint16(a[0:]) != 1 || binary.BigEndian.Uint16(a[2:]) != etherIPv4 || a[4] != 6 || a[5] != 4 {
		return
	}
	op := binary.BigEndian.Uint16(a[6:])
	sender := netip.AddrFrom4([4]byte(a[14:18]))
	senderMAC := net.HardwareAddr(append([]byte(nil), a[8:14]...))
	target := netip.AddrFrom4([4]byte(a[24:28]))
	if port == f.outPort && f.outAddr.Masked().Contains(sender) && sender != ours && (op == 2 || target == ours) {
		f.learn(sender, senderMAC)
	}
	if op == 1 && target == ours {
		if err := port.writeFrame(arpFrame(2, mac, ours, senderMAC, sender)); err == nil {
			f.arpReplies.Add(1)
		}
	}
}

// arpFrame builds an ARP request (op 1, to broadcast) or reply (op 2).
func arpFrame(op uint16, mac net.HardwareAddr, ip netip.Addr, toMAC net.HardwareAddr, toIP netip.Addr) []byte {
	b := make([]byte, 60) // the Ethernet minimum without FCS, zero padded
	dst := toMAC
	if op == 1 {
		dst, toMAC = broadcastMAC, make(net.HardwareAddr, 6)
	}
	copy(b, dst)
	copy(b[6:], mac)
	binary.BigEndian.PutUint16(b[12:], etherARP)
	a := b[ethHeader:]
	binary.BigEndian.PutUint16(a[0:], 1)
	binary.BigEndian.PutUint16(a[2:], etherIPv4)
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:], op)
	s, t := ip.As4(), toIP.As4()
	copy(a[8:], mac)
	copy(a[14:], s[:])
	copy(a[18:], toMAC)
	copy(a[24:], t[:])
	return b
}

// ipv4Info is what routing needs from an IPv4 header.
type ipv4Info struct {
	src, dst   netip.Addr
	id         uint16
	proto      byte
	off        int // fragment offset in bytes
	more       bool
	ihl, total int
}

func parseIPv4(p []byte) (ipv4Info, bool) {
	if len(p) < ipv4Header || p[0]>>4 != 4 {
		return ipv4Info{}, false
	}
	h := ipv4Info{ihl: int(p[0]&0x0f) * 4, total: int(binary.BigEndian.Uint16(p[2:]))}
	if h.ihl < ipv4Header || h.total < h.ihl || h.total > len(p) || checksum(p[:h.ihl]) != 0 {
		return ipv4Info{}, false
	}
	ff := binary.BigEndian.Uint16(p[6:])
	h.id, h.proto, h.off, h.more = binary.BigEndian.Uint16(p[4:]), p[9], int(ff&0x1fff)*8, ff&0x2000 != 0
	h.src, h.dst = netip.AddrFrom4([4]byte(p[12:16])), netip.AddrFrom4([4]byte(p[16:20]))
	return h, true
}

// checksum is the Internet checksum of b (0 when b holds a correct checksum field).
func checksum(b []byte) uint16 {
	var sum uint32
	for ; len(b) >= 2; b = b[2:] {
		sum += uint32(b[0])<<8 | uint32(b[1])
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// route handles an IPv4 frame from the in link.
func (f *frameForwarder) route(fr []byte) {
	h, ok := parseIPv4(fr[ethHeader:])
	if !ok {
		f.dropped.Add(1)
		return
	}
	outNet := f.outAddr.Masked()
	if h.dst == f.inAddr.Addr() || h.dst == f.outAddr.Addr() {
		return // to the guest itself: not the forward path
	}
	if !outNet.Contains(h.dst) || h.dst == outNet.Addr() || h.dst == lastAddr(outNet) || fr[ethHeader+8] <= 1 {
		f.dropped.Add(1) // no route (the guest has no default gateway), a broadcast, or TTL
		return
	}
	frame := append([]byte(nil), fr[:ethHeader+h.total]...) // without Ethernet padding
	local := netip.AddrPortFrom(h.dst, 0)
	// Every packet, whole or a fragment, is indicated alone as it arrives; with fragment
	// grouping on, a fragment is held and indicated again inside its group once complete.
	f.groups.Add(1)
	if f.k.Indicate(LayerForward, 1, local) {
		f.blocked.Add(1)
		return
	}
	if h.off == 0 && !h.more || !f.k.FragmentGrouping() {
		f.send(h.dst, frame)
		return
	}
	chain, expired := f.reasm.add(fragKey{src: h.src, dst: h.dst, id: h.id, proto: h.proto}, h.off, h.total-h.ihl, h.more, frame, f.now())
	f.dropped.Add(uint64(expired))
	if chain == nil {
		return
	}
	f.groups.Add(1)
	if f.k.Indicate(LayerForward, len(chain), local) {
		f.blocked.Add(1)
		return
	}
	for _, c := range chain {
		f.send(h.dst, c)
	}
}

// send forwards one frame to next hop dst: TTL down by one, new Ethernet addresses.
func (f *frameForwarder) send(dst netip.Addr, fr []byte) {
	ip := fr[ethHeader:]
	ip[8]--
	ip[10], ip[11] = 0, 0
	ihl := int(ip[0]&0x0f) * 4
	binary.BigEndian.PutUint16(ip[10:], checksum(ip[:ihl]))
	copy(fr[6:], f.outMAC)
	now := f.now()
	f.mu.Lock()
	mac := f.neigh[dst]
	if mac == nil {
		ask := f.queue(dst, fr, now)
		f.mu.Unlock()
		if ask {
			f.askFor(dst)
		}
		return
	}
	f.mu.Unlock()
	copy(fr, mac)
	if f.outPort.writeFrame(fr) == nil {
		f.out.Add(1)
	} else {
		f.dropped.Add(1)
	}
}

// queue holds a frame until dst's MAC is known; it reports whether to (re)send an ARP
// request. f.mu is held.
func (f *frameForwarder) queue(dst netip.Addr, fr []byte, now time.Time) bool {
	p := f.pending[dst]
	if p == nil {
		p = &pendingHop{started: now}
		f.pending[dst] = p
	}
	if now.Sub(p.started) > pendingTimeout { // nobody answers: give up on what waited
		f.dropped.Add(uint64(len(p.frames)))
		f.queued -= len(p.frames)
		p.frames, p.started = nil, now
	}
	if f.queued < maxPendingFrames {
		p.frames = append(p.frames, fr)
		f.queued++
	} else {
		f.dropped.Add(1)
	}
	if now.Sub(p.asked) < arpRetry {
		return false
	}
	p.asked = now
	return true
}

func (f *frameForwarder) askFor(dst netip.Addr) {
	if f.outPort.writeFrame(arpFrame(1, f.outMAC, f.outAddr.Addr(), nil, dst)) == nil {
		f.arpRq.Add(1)
	}
}

// learn records a next hop's MAC and sends what waited for it.
func (f *frameForwarder) learn(ip netip.Addr, mac net.HardwareAddr) {
	f.mu.Lock()
	f.neigh[ip] = mac
	var frames [][]byte
	if p := f.pending[ip]; p != nil {
		frames = p.frames
		f.queued -= len(frames)
		delete(f.pending, ip)
	}
	f.mu.Unlock()
	for _, fr := range frames {
		copy(fr, mac)
		if f.outPort.writeFrame(fr) == nil {
			f.out.Add(1)
		} else {
			f.dropped.Add(1)
		}
	}
}

// lastAddr is a network's broadcast address.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	v := binary.BigEndian.Uint32(b[:]) | (1<<(32-p.Bits()) - 1)
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// fragKey names a fragment group (RFC 791: source, destination, protocol, identification).
type fragKey struct {
	src, dst netip.Addr
	id       uint16
	proto    byte
}

type fragGroup struct {
	frames  [][]byte
	offsets map[int]bool
	got     int // IP payload bytes held
	total   int // the datagram's IP payload length; 0 until the last fragment came
	first   time.Time
}

// reassembler holds fragments until their group is complete. It is not safe for concurrent
// use: only the in link's reader calls it.
type reassembler struct {
	groups     map[fragKey]*fragGroup
	lastExpire time.Time
}

func newReassembler() *reassembler { return &reassembler{groups: map[fragKey]*fragGroup{}} }

// add takes one fragment (frame, holding n bytes of IP payload at byte offset off). When its
// group is complete it returns the group's frames in arrival order (one NBL each, as WFP
// indicates a fragment group); expired counts fragments dropped on the way (timed out,
// duplicates, inconsistent or over the bounds).
func (r *reassembler) add(k fragKey, off, n int, more bool, frame []byte, now time.Time) (chain [][]byte, expired int) {
	expired = r.expire(now)
	g := r.groups[k]
	if g == nil {
		if len(r.groups) >= maxFragGroups {
			return nil, expired + 1
		}
		g = &fragGroup{offsets: map[int]bool{}, first: now}
		r.groups[k] = g
	}
	// A duplicate, a fragment past the known end, a non-last fragment not a multiple of 8,
	// or a group grown too long: drop this fragment (overlaps are not modelled).
	if g.offsets[off] || (g.total > 0 && off+n > g.total) || (more && n%8 != 0) || len(g.frames) >= maxGroupFrags ||
		(!more && g.total > 0) {
		return nil, expired + 1
	}
	g.offsets[off] = true
	g.frames = append(g.frames, frame)
	g.got += n
	if !more {
		g.total = off + n
	}
	if g.total > 0 && g.got == g.total {
		delete(r.groups, k)
		return g.frames, expired
	}
	if g.total > 0 && g.got > g.total {
		delete(r.groups, k)
		return nil, expired + len(g.frames)
	}
	return nil, expired
}

// expire drops groups older than fragTimeout; it returns how many fragments went.
func (r *reassembler) expire(now time.Time) int {
	if now.Sub(r.lastExpire) < fragTimeout/10 && len(r.groups) < maxFragGroups {
		return 0 // a scan per fragment would cost O(groups) each
	}
	r.lastExpire = now
	n := 0
	for k, g := range r.groups {
		if now.Sub(g.first) > fragTimeout {
			n += len(g.frames)
			delete(r.groups, k)
		}
	}
	return n
}

// checkForwarderAddrs validates StartFrameForwarder's addresses.
func checkForwarderAddrs(in, out string, inAddr, outAddr netip.Prefix) error {
	if in == "" || out == "" || in == out {
		return fmt.Errorf("kernel: frame forwarder: in (%q) and out (%q) must be two different interfaces", in, out)
	}
	if !inAddr.Addr().Is4() || !outAddr.Addr().Is4() || inAddr.Bits() < 8 || outAddr.Bits() < 8 || inAddr.Bits() > 30 || outAddr.Bits() > 30 {
		return fmt.Errorf("kernel: frame forwarder: %s and %s must be IPv4 addresses with prefixes /8../30", inAddr, outAddr)
	}
	if inAddr.Masked().Overlaps(outAddr.Masked()) {
		return fmt.Errorf("kernel: frame forwarder: the networks %s and %s overlap: the guest could not route between them", inAddr.Masked(), outAddr.Masked())
	}
	return nil
}
