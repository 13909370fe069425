package traffic

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// datagramWriter hands datagrams to the kernel: one by one, in sendmmsg batches, or as
// UDP_SEGMENT super-packets.
type datagramWriter interface {
	// send writes n datagrams numbered from seq. It stops at the first error and returns how
	// many went out before it and how many send calls it made.
	send(n int, seq uint64) (sent, calls int, err error)
}

// gsoRefusedError is the kernel refusing UDP_SEGMENT on this socket or route.
type gsoRefusedError struct{ err error }

func (e *gsoRefusedError) Error() string { return "UDP_SEGMENT refused: " + e.err.Error() }
func (e *gsoRefusedError) Unwrap() error { return e.err }

func dialUDP(addr netip.AddrPort) (*net.UDPConn, error) {
	return net.DialUDP(network("udp", addr), nil, net.UDPAddrFromAddrPort(addr))
}

// runUDP sends pt's datagrams from one goroutine on one connected socket.
func (g *gen) runUDP(paceCtx context.Context, pt part, dest netip.AddrPort, b *budget) error {
	conn, err := g.deps.dialUDP(dest)
	if err != nil {
		return fmt.Errorf("traffic: %s: opening a UDP socket to %s: %w", pt.profile, dest, err)
	}
	defer conn.Close()
	is4 := dest.Addr().Is4()
	if pt.profile == FragmentForward {
		// The host must fragment the datagram rather than refuse it: clear DF.
		if err := clearDontFragment(conn, is4); err != nil {
			return fmt.Errorf("traffic: fragment-forward: clearing the don't-fragment bit on the socket to %s: %w", dest, err)
		}
	}
	w, err := newDatagramWriter(conn, g.send, pt.profile, pt.payload, g.batch, is4)
	if err != nil {
		return fmt.Errorf("traffic: %s to %s: %w", pt.profile, dest, err)
	}

	return g.sendLoop(paceCtx, pt, dest, w, b, g.batch, 0)
}

// sendLoop paces w's sends, at most batch datagrams per send, until the deadline, the budget
// or paceCtx ends them. perDatagram is the frames each datagram is (frame links), 0 for UDP.
func (g *gen) sendLoop(paceCtx context.Context, pt part, dest netip.AddrPort, w datagramWriter, b *budget, batch, perDatagram int) error {
	pacer := NewPacer(g.clock, pt.rate, 1)
	var seq uint64
	// Bounded: each pass sends, or returns on the deadline, the budget or ctx.
	for {
		n, err := pacer.Take(paceCtx, batch)
		if err != nil {
			return nil
		}
		now := g.clock.Now()
		if g.pastDeadline(now) {
			return nil
		}
		if n = b.take(n); n == 0 {
			return nil
		}
		sent, calls, err := w.send(n, seq)
		seq += uint64(sent)
		e := event{packets: uint64(sent), bytes: uint64(sent * pt.payload), syscalls: uint64(calls),
			frames: uint64(sent * perDatagram)}
		if err != nil {
			var refused *gsoRefusedError
			if errors.As(err, &refused) {
				return fmt.Errorf("traffic: %s to %s: %w; use Send %q or %q", pt.profile, dest, err, SendAuto, SendBatch)
			}
			seq++ // the failed datagram's number is used up, so a receiver sees the gap
			e.errKind = ErrorKind(err)
			b.refund(n - sent - 1)
		}
		g.rec.add(now, e)
	}
}

// newDatagramWriter picks the send path for mode.
func newDatagramWriter(conn *net.UDPConn, mode SendMode, p Profile, size, batch int, is4 bool) (datagramWriter, error) {
	if mode == SendSingle || batch == 1 {
		return newSingleWriter(conn, p, size), nil
	}
	return newPlatformWriter(conn, mode, p, size, batch, is4)
}

// singleWriter makes one write per datagram.
type singleWriter struct {
	conn    *net.UDPConn
	buf     []byte
	profile Profile
}

func newSingleWriter(conn *net.UDPConn, p Profile, size int) *singleWriter {
	buf := make([]byte, size)
	fillPayload(buf)
	return &singleWriter{conn: conn, buf: buf, profile: p}
}

func (w *singleWriter) send(n int, seq uint64) (int, int, error) {
	for i := range n {
		PutHeader(w.buf, w.profile, seq+uint64(i))
		if _, err := w.conn.Write(w.buf); err != nil {
			return i, i + 1, err
		}
	}
	return n, n, nil
}

// autoWriter sends with UDP_SEGMENT until the kernel refuses it, then with the fallback.
type autoWriter struct {
	gso      datagramWriter
	fallback datagramWriter
	gsoOff   bool
}

func (w *autoWriter) send(n int, seq uint64) (int, int, error) {
	if w.gsoOff {
		return w.fallback.send(n, seq)
	}
	sent, calls, err := w.gso.send(n, seq)
	var refused *gsoRefusedError
	if !errors.As(err, &refused) {
		return sent, calls, err
	}
	w.gsoOff = true
	more, moreCalls, err := w.fallback.send(n-sent, seq+uint64(sent))
	return sent + more, calls + moreCalls, err
}
