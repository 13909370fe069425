package traffic

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
)

// Link is one virtual Ethernet link between wfplab and a guest NIC, carried as UDP datagrams
// on loopback (one whole Ethernet frame, no FCS, per datagram), as QEMU's dgram netdev does
// (measured with QEMU 7.2: `-netdev dgram,local.…port=Q,remote.…port=W` delivered an e1000's
// 442-byte DHCP discover to W as one datagram from Q). The addresses inside the frames
// exist only in that encapsulation.
type Link struct {
	// GuestSock is the hypervisor's end: a frame sent here enters the guest's NIC.
	GuestSock netip.AddrPort
	// HostSock is wfplab's end, bound by wfplab: what the guest's NIC sends arrives here.
	HostSock netip.AddrPort
	// GuestMAC is the guest NIC's address; HostMAC the neighbour wfplab plays on the link.
	GuestMAC, HostMAC net.HardwareAddr
	// GuestIP is the guest's address with the link's prefix, e.g. 198.51.100.1/24.
	GuestIP netip.Prefix
	// HostIP is the neighbour's address, e.g. 198.51.100.2.
	HostIP netip.Addr
}

func (l Link) check(name string) error {
	var errs []error
	if !l.GuestSock.IsValid() || !l.HostSock.IsValid() {
		errs = append(errs, fmt.Errorf("GuestSock (%v) and HostSock (%v) must both be set", l.GuestSock, l.HostSock))
	}
	if len(l.GuestMAC) != 6 || len(l.HostMAC) != 6 {
		errs = append(errs, fmt.Errorf("GuestMAC (%v) and HostMAC (%v) must both be Ethernet addresses", l.GuestMAC, l.HostMAC))
	}
	if !l.GuestIP.IsValid() || !l.GuestIP.Addr().Is4() || !l.HostIP.Is4() {
		errs = append(errs, fmt.Errorf("GuestIP (%v) and HostIP (%v) must both be IPv4", l.GuestIP, l.HostIP))
	} else if !l.GuestIP.Masked().Contains(l.HostIP) || l.GuestIP.Addr() == l.HostIP {
		errs = append(errs, fmt.Errorf("HostIP %s must be another address inside the guest's network %s", l.HostIP, l.GuestIP.Masked()))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("traffic: frame link %s: %w; the provider sets these from the NIC it gave the guest", name, err)
	}
	return nil
}

// FrameStats are what a FrameLink saw arrive from the guest.
type FrameStats struct {
	// Frames are IPv4 frames of the forward path's datagrams the guest sent out of the "out"
	// link; Datagrams are those datagrams complete (every fragment there), Bytes their UDP
	// payload bytes.
	Frames, Datagrams, Bytes uint64
	// ARPReplies counts the ARP requests of the guest that wfplab answered.
	ARPReplies uint64
	// Other counts any other frame (ICMP errors, IPv6 router solicitations, ...).
	Other uint64
}

// FrameLink plays the neighbours of a guest that routes between two links: it sends the
// forward path's frames into the "in" link, answers the guest's ARP requests on both, and
// counts what the guest forwards out of the "out" link. A blocked forward path shows as
// zero forwarded.
type FrameLink struct {
	in, out *linkEnd
	dest    netip.AddrPort // the datagrams' destination, inside out's network
	src     netip.AddrPort // in.HostIP and a fixed port

	arp, frames, datagrams, bytes, other atomic.Uint64
	lastForward                          atomic.Int64 // unix ns of the last forwarded frame

	onEvent func(event) // set before the readers start; records into a run
	groups  *groupTracker

	wg sync.WaitGroup
}

// linkEnd is wfplab's socket on one link and the addresses it answers ARP for.
type linkEnd struct {
	name    string
	link    Link
	conn    *net.UDPConn
	answers []netip.Addr
}

// frameSrcPort is the UDP source port of the forward path's datagrams (any will do).
const frameSrcPort = 49200

// OpenFrameLink binds wfplab's end of both links and starts answering ARP and counting what
// arrives. dest is where the datagrams go: an address in out's network other than the
// guest's own (out.HostIP when it is left zero, port 9). Both sockets must be loopback.
func OpenFrameLink(in, out Link, dest netip.AddrPort) (*FrameLink, error) {
	return openFrameLink(in, out, dest, nil)
}

func openFrameLink(in, out Link, dest netip.AddrPort, onEvent func(event)) (*FrameLink, error) {
	dest, err := frameDest(in, out, dest)
	if err != nil {
		return nil, err
	}
	for _, ap := range []netip.AddrPort{in.GuestSock, in.HostSock, out.GuestSock, out.HostSock} {
		if !ap.Addr().Unmap().IsLoopback() {
			return nil, fmt.Errorf("traffic: frame link socket %s is not on loopback: the forward path's frames travel only between wfplab and a local hypervisor", ap)
		}
	}
	f := &FrameLink{dest: dest, src: netip.AddrPortFrom(in.HostIP, frameSrcPort), onEvent: onEvent, groups: newGroupTracker()}
	f.in = &linkEnd{name: "in", link: in, answers: []netip.Addr{in.HostIP}}
	f.out = &linkEnd{name: "out", link: out, answers: []netip.Addr{out.HostIP}}
	if dest.Addr() != out.HostIP {
		f.out.answers = append(f.out.answers, dest.Addr())
	}
	for _, e := range []*linkEnd{f.in, f.out} {
		e.conn, err = net.DialUDP("udp", net.UDPAddrFromAddrPort(e.link.HostSock), net.UDPAddrFromAddrPort(e.link.GuestSock))
		if err != nil {
			f.closeConns()
			return nil, fmt.Errorf("traffic: frame link %s: binding %s (towards the hypervisor at %s): %w; is another wfplab using the port?",
				e.name, e.link.HostSock, e.link.GuestSock, err)
		}
		_ = e.conn.SetReadBuffer(4 << 20)
	}
	f.wg.Add(2)
	go f.read(f.in)
	go f.read(f.out)
	return f, nil
}

// frameDest checks both links and where the datagrams go.
func frameDest(in, out Link, dest netip.AddrPort) (netip.AddrPort, error) {
	if err := errors.Join(in.check("in"), out.check("out")); err != nil {
		return dest, err
	}
	if !dest.IsValid() {
		dest = netip.AddrPortFrom(out.HostIP, 9) // discard
	}
	a := dest.Addr().Unmap()
	outNet := out.GuestIP.Masked()
	if !a.Is4() || !outNet.Contains(a) || a == out.GuestIP.Addr() || a == lastAddr(outNet) || a == outNet.Addr() {
		return dest, fmt.Errorf("traffic: fragment-forward destination %s must be a host address in the out link's network %s other than the guest's %s: the guest routes it there",
			dest, outNet, out.GuestIP.Addr())
	}
	if in.GuestIP.Masked().Overlaps(outNet) {
		return dest, fmt.Errorf("traffic: the in link's network %s and the out link's %s overlap: the guest could not route between them", in.GuestIP.Masked(), outNet)
	}
	return netip.AddrPortFrom(a, dest.Port()), nil
}

// lastAddr is a network's broadcast address.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	v := binary.BigEndian.Uint32(b[:]) | (1<<(32-p.Bits()) - 1)
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// Dest is where the datagrams go.
func (f *FrameLink) Dest() netip.AddrPort { return f.dest }

// Stats returns what arrived so far.
func (f *FrameLink) Stats() FrameStats {
	return FrameStats{Frames: f.frames.Load(), Datagrams: f.datagrams.Load(), Bytes: f.bytes.Load(),
		ARPReplies: f.arp.Load(), Other: f.other.Load()}
}

// Close closes both sockets and waits for the readers.
func (f *FrameLink) Close() error {
	err := f.closeConns()
	f.wg.Wait() // the readers end as soon as their socket is closed
	return err
}

func (f *FrameLink) closeConns() error {
	var errs []error
	for _, e := range []*linkEnd{f.in, f.out} {
		if e != nil && e.conn != nil {
			if err := e.conn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func (f *FrameLink) record(e event) {
	if f.onEvent != nil {
		f.onEvent(e)
	}
}

// read handles every frame the guest sends on one link until the socket closes.
func (f *FrameLink) read(e *linkEnd) {
	defer f.wg.Done()
	buf := make([]byte, 65536)
	// Bounded by the socket: Close ends it. ECONNREFUSED (ICMP port unreachable, reported on a
	// connected socket while the hypervisor's end is not there yet) is waited out; any other
	// error that keeps coming gives up after 10000 in a row.
	for fails := 0; fails < 10000; {
		n, err := e.conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if !errors.Is(err, syscall.ECONNREFUSED) {
				fails++
			}
			time.Sleep(time.Millisecond)
			continue
		}
		fails = 0
		f.handle(e, buf[:n])
	}
}

// Ethernet types and ARP fields the links use.
const (
	etherIPv4 = 0x0800
	etherARP  = 0x0806
	arpLen    = 28
)

func (f *FrameLink) handle(e *linkEnd, fr []byte) {
	if len(fr) < ethHeader {
		f.other.Add(1)
		return
	}
	switch binary.BigEndian.Uint16(fr[12:]) {
	case etherARP:
		if f.answerARP(e, fr[ethHeader:]) {
			return
		}
	case etherIPv4:
		if e == f.out && f.countForwarded(fr[ethHeader:]) {
			return
		}
	}
	f.other.Add(1)
}

// answerARP replies to an ARP request for one of e's addresses; false for any other frame.
func (f *FrameLink) answerARP(e *linkEnd, a []byte) bool {
	if len(a) < arpLen || binary.BigEndian.Uint16(a[0:]) != 1 || binary.BigEndian.Uint16(a[2:]) != etherIPv4 ||
		a[4] != 6 || a[5] != 4 {
		return false
	}
	switch binary.BigEndian.Uint16(a[6:]) {
	case 2: // a reply (e.g. the guest's gratuitous ARP): nothing to answer
		return true
	case 1:
	default:
		return false
	}
	target := netip.AddrFrom4([4]byte(a[24:28]))
	for _, ip := range e.answers {
		if ip != target {
			continue
		}
		reply, err := arpReply(e.link.HostMAC, ip, net.HardwareAddr(a[8:14]), netip.AddrFrom4([4]byte(a[14:18])))
		if err == nil {
			if _, err = e.conn.Write(reply); err == nil {
				f.arp.Add(1)
			}
		}
		return true
	}
	return true // a request for someone else: not ours to answer
}

// countForwarded counts an IPv4 packet of the forward path's datagrams; false for others.
func (f *FrameLink) countForwarded(p []byte) bool {
	if len(p) < ipv4Header || p[0]>>4 != 4 {
		return false
	}
	ihl := int(p[0]&0x0f) * 4
	tot := int(binary.BigEndian.Uint16(p[2:]))
	if ihl < ipv4Header || tot < ihl || tot > len(p) || p[9] != 17 {
		return false
	}
	dst := netip.AddrFrom4([4]byte(p[16:20]))
	if dst != f.dest.Addr() {
		return false
	}
	ff := binary.BigEndian.Uint16(p[6:])
	key := fragKey{src: [4]byte(p[12:16]), id: binary.BigEndian.Uint16(p[4:])}
	now := time.Now()
	done, size := f.groups.add(key, int(ff&0x1fff)*8, tot-ihl, ff&0x2000 != 0, now)
	f.frames.Add(1)
	f.lastForward.Store(now.UnixNano())
	ev := event{fwdFrames: 1}
	if done {
		f.datagrams.Add(1)
		f.bytes.Add(uint64(size - udpHeader))
		ev.fwdDatagrams, ev.fwdBytes = 1, uint64(size-udpHeader)
	}
	f.record(ev)
	return true
}

// fragKey names a fragment group among the datagrams to one destination.
type fragKey struct {
	src [4]byte
	id  uint16
}

type fragState struct {
	got, total int // bytes of IP payload seen; the whole datagram's (0 until the last fragment)
	first      time.Time
}

// groupTracker tells when every byte of a forwarded datagram has arrived, whatever way the
// guest fragmented it. Incomplete groups expire (a fragment the guest dropped), so it stays
// bounded.
type groupTracker struct {
	mu     sync.Mutex
	groups map[fragKey]*fragState
}

const (
	maxOpenGroups = 4096
	groupExpiry   = 2 * time.Second
)

func newGroupTracker() *groupTracker { return &groupTracker{groups: map[fragKey]*fragState{}} }

// add records a fragment of n bytes at byte offset off; it reports whether its datagram is
// now complete, and its size (UDP header included).
func (t *groupTracker) add(k fragKey, off, n int, more bool, now time.Time) (bool, int) {
	if off == 0 && !more {
		return true, n // not fragmented
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.groups[k]
	if s == nil {
		if len(t.groups) >= maxOpenGroups {
			t.expire(now)
		}
		s = &fragState{first: now}
		t.groups[k] = s
	}
	s.got += n
	if !more {
		s.total = off + n
	}
	if s.total > 0 && s.got >= s.total {
		delete(t.groups, k)
		return true, s.total
	}
	return false, 0
}

// expire drops groups older than groupExpiry, or all of them if none is that old.
func (t *groupTracker) expire(now time.Time) {
	for k, s := range t.groups {
		if now.Sub(s.first) > groupExpiry {
			delete(t.groups, k)
		}
	}
	if len(t.groups) >= maxOpenGroups {
		clear(t.groups)
	}
}

// frameWriter sends fragment groups into the in link: a group per datagram, the frames of up
// to batch groups per sendmmsg (golang.org/x/net's WriteBatch; one by one outside Linux).
type frameWriter struct {
	pc       *ipv4.PacketConn
	slots    []*groupTemplate
	msgs     []ipv4.Message
	perGroup int
	sent     uint64 // groups sent whole, for the drain
}

func (f *FrameLink) newWriter(payload, mtu, batch int) (*frameWriter, error) {
	if mtu == 0 {
		mtu = DefaultMTU
	}
	t, err := newGroupTemplate(f.in.link.HostMAC, f.in.link.GuestMAC, f.src, f.dest, payload, mtu)
	if err != nil {
		return nil, err
	}
	w := &frameWriter{pc: ipv4.NewPacketConn(f.in.conn), perGroup: len(t.frames)}
	for range batch {
		s := t.clone()
		w.slots = append(w.slots, s)
		for _, fr := range s.frames {
			w.msgs = append(w.msgs, ipv4.Message{Buffers: [][]byte{fr}})
		}
	}
	return w, nil
}

// send writes n groups numbered from seq (the group's IP ID is seq's low 16 bits). A group
// counts as sent only when all its frames went out.
func (w *frameWriter) send(n int, seq uint64) (int, int, error) {
	for i := range n {
		w.slots[i].stamp(uint16(seq+uint64(i)), seq+uint64(i))
	}
	total := n * w.perGroup
	frames, calls := 0, 0
	for frames < total {
		k, err := w.pc.WriteBatch(w.msgs[frames:total], 0)
		calls++
		if k > 0 {
			frames += k
		}
		if err != nil || k <= 0 {
			w.sent += uint64(frames / w.perGroup)
			if err == nil {
				err = errors.New("sendmmsg sent nothing and reported no error")
			}
			return frames / w.perGroup, calls, err
		}
	}
	w.sent += uint64(n)
	return n, calls, nil
}

// frameTarget checks a frame-link target before anything is opened: every socket on
// loopback and allowed, and the datagrams' destination inside the out link's network.
func frameTarget(to Addrs, allow Allow) (netip.AddrPort, error) {
	dest, err := frameDest(*to.ForwardIn, *to.ForwardOut, to.Forward)
	if err != nil {
		return dest, err
	}
	var errs []error
	for _, s := range []struct {
		ap    netip.AddrPort
		field string
	}{
		{to.ForwardIn.GuestSock, "Target.ForwardIn.GuestSock (fragment-forward frames)"},
		{to.ForwardIn.HostSock, "Target.ForwardIn.HostSock"},
		{to.ForwardOut.GuestSock, "Target.ForwardOut.GuestSock"},
		{to.ForwardOut.HostSock, "Target.ForwardOut.HostSock"},
	} {
		if err := allow.Check(s.ap, s.field); err != nil {
			errs = append(errs, err)
		} else if !s.ap.Addr().Unmap().IsLoopback() {
			errs = append(errs, fmt.Errorf("traffic: %s = %s is not on loopback: frame links run only between wfplab and a hypervisor on this host", s.field, s.ap))
		}
	}
	return dest, errors.Join(errs...)
}

const (
	// frameDrainIdle: after the last send, a run keeps counting what the guest forwards until
	// nothing has come for this long (a guest under TCG forwards within milliseconds)...
	frameDrainIdle = 250 * time.Millisecond
	// frameDrainMax: ...or this long has passed.
	frameDrainMax = 2 * time.Second
)

// runFrames sends pt's datagrams as fragment groups into the target's in link and counts
// what the guest forwards out of its out link.
func (g *gen) runFrames(paceCtx context.Context, pt part, dest netip.AddrPort, b *budget) error {
	if g.send == SendGSO {
		return fmt.Errorf("traffic: fragment-forward through frame links sends frames with sendmmsg; Send %q does not apply: use %q or %q", SendGSO, SendAuto, SendBatch)
	}
	f, err := openFrameLink(*g.to.ForwardIn, *g.to.ForwardOut, dest, func(e event) { g.rec.add(g.clock.Now(), e) })
	if err != nil {
		return err
	}
	defer f.Close()
	batch := g.batch
	if g.send == SendSingle {
		batch = 1
	}
	w, err := f.newWriter(pt.payload, DefaultMTU, batch)
	if err != nil {
		return fmt.Errorf("traffic: fragment-forward to %s: %w", dest, err)
	}
	if err := g.sendLoop(paceCtx, pt, dest, w, b, batch, w.perGroup); err != nil {
		return err
	}
	g.drain(f, w.sent)
	return nil
}

// drain waits, on the real clock, for what the guest is still forwarding: until every sent
// datagram came out, nothing came for frameDrainIdle, frameDrainMax passed, or the caller's
// context ended.
func (g *gen) drain(f *FrameLink, sent uint64) {
	start := time.Now()
	for time.Since(start) < frameDrainMax && g.parent.Err() == nil {
		if f.datagrams.Load() >= sent {
			return
		}
		last := time.Unix(0, f.lastForward.Load())
		if last.Before(start) {
			last = start
		}
		if time.Since(last) >= frameDrainIdle {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}
