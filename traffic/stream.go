package traffic

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-multierror"
)

// netDeps opens sockets. Tests swap it to prove that a refused destination opens none.
type netDeps struct {
	dialTCP func(ctx context.Context, addr netip.AddrPort, timeout time.Duration) (net.Conn, error)
	dialUDP func(addr netip.AddrPort) (*net.UDPConn, error)
}

var defaultDeps = netDeps{dialTCP: dialTCP, dialUDP: dialUDP}

func dialTCP(ctx context.Context, addr netip.AddrPort, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, network("tcp", addr), addr.String())
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		// Nagle would merge or delay segments; the burst must leave as written.
		if err := tc.SetNoDelay(true); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

func network(proto string, addr netip.AddrPort) string {
	if addr.Addr().Is4() {
		return proto + "4"
	}
	return proto + "6"
}

// runStream keeps pt.conns connections writing bursts; they share one pacer and budget.
// A connection slot that fails maxFailures times in a row gives up; the others go on.
func (g *gen) runStream(ctx, paceCtx context.Context, pt part, dest netip.AddrPort, b *budget) error {
	pacer := NewPacer(g.clock, pt.rate, pt.burst)
	var seq atomic.Uint64
	errs := make([]error, pt.conns)
	var wg sync.WaitGroup
	for i := range pt.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = g.streamConn(ctx, paceCtx, i, pt, dest, pacer, b, &seq)
		}()
	}
	wg.Wait()
	var result *multierror.Error
	for _, err := range errs {
		if err != nil {
			result = multierror.Append(result, err)
		}
	}
	return result.ErrorOrNil()
}

// streamConn is one connection slot: connect, write paced bursts, and on a reset or close by
// the peer count it and connect again — at once if the connection carried a burst, else
// after an exponential backoff with jitter.
func (g *gen) streamConn(ctx, paceCtx context.Context, id int, pt part, dest netip.AddrPort, pacer *Pacer, b *budget, seq *atomic.Uint64) error {
	buf := make([]byte, pt.burst*pt.payload)
	fillPayload(buf)
	var conn net.Conn
	var unhookClose func() bool
	closeConn := func() {
		if conn != nil {
			unhookClose()
			conn.Close()
			conn = nil
		}
	}
	defer closeConn()

	failures := 0    // connection attempts in a row that failed, or died before carrying a burst
	carried := false // the current connection has written a whole burst
	// resetting: this slot's last connection was reset after carrying a burst, so the guest
	// blocks what it is sent and resets the connection. Each burst then waits for that
	// verdict before the next goes out: written into a connection the reset is already on its
	// way to, a burst would be lost (through QEMU's user-mode network, about one in two).
	resetting := false
	var lastErr error
	// Bounded: each pass sends a burst, sleeps a backoff, or returns (deadline, budget,
	// ctx, or maxFailures).
	for {
		if paceCtx.Err() != nil {
			return nil
		}
		if conn == nil {
			if failures >= g.tune.maxFailures {
				return fmt.Errorf("traffic: stream-burst connection %d to %s gave up after %d connections in a row failed or were reset before carrying a burst (last: %s: %v): check that the guest listens on its stream port",
					id+1, dest, failures, ErrorKind(lastErr), lastErr)
			}
			if failures > 0 {
				if err := sleepCtx(paceCtx, g.clock, g.backoff(failures)); err != nil {
					return nil
				}
			}
			if g.pastDeadline(g.clock.Now()) {
				return nil
			}
			c, err := g.deps.dialTCP(ctx, dest, g.tune.dialTimeout)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				g.rec.add(g.clock.Now(), event{errKind: ErrorKind(err)})
				failures++
				lastErr = err
				continue
			}
			conn, carried = c, false
			unhookClose = context.AfterFunc(ctx, func() { c.Close() }) // unblocks a Write when the run ends
			g.rec.add(g.clock.Now(), event{conns: 1})
		}

		if err := pacer.Wait(paceCtx, pt.burst); err != nil {
			return nil
		}
		now := g.clock.Now()
		if g.pastDeadline(now) {
			return nil
		}
		n := b.take(pt.burst)
		if n == 0 {
			return nil
		}
		first := seq.Add(uint64(n)) - uint64(n)
		for i := range n {
			PutHeader(buf[i*pt.payload:], StreamBurst, first+uint64(i))
		}
		_ = conn.SetWriteDeadline(time.Now().Add(g.tune.writeTimeout)) // socket deadlines are wall-clock
		w, err := conn.Write(buf[:n*pt.payload])
		segments := (w + pt.payload - 1) / pt.payload
		e := event{packets: uint64(segments), bytes: uint64(w), syscalls: 1}
		if err == nil {
			e.bursts = 1
			g.rec.add(now, e)
			carried, failures = true, 0
			if resetting {
				if kind := g.verdict(paceCtx, conn); kind != "" {
					g.rec.add(g.clock.Now(), event{errKind: kind, resets: 1})
					closeConn() // the next burst goes on a new connection at once
					continue
				}
				resetting = false // the guest let this burst through: no more waiting
			}
			continue
		}
		if ctx.Err() != nil { // the run ended and closed the connection under the write
			g.rec.add(now, e)
			return nil
		}
		e.errKind = ErrorKind(err)
		if peerGone(e.errKind) {
			e.resets = 1
			resetting = resetting || carried
		}
		g.rec.add(now, e) // the burst's segments stay spent: MaxPackets bounds attempts
		// What never left goes back to the pacer: the reconnect sends it, so a guest that
		// resets each connection after a blocked burst still gets the rate asked.
		pacer.Refund(pt.burst - segments)
		closeConn()
		if !carried {
			failures++
			lastErr = err
		}
	}
}

// verdict waits, at most verdictWait, for the guest to reset or close conn after a burst.
// It returns the error kind of a reset or close, or "" when the connection is still open
// (or the run ends).
func (g *gen) verdict(ctx context.Context, conn net.Conn) string {
	wait := g.tune.verdictWait
	if d, ok := ctx.Deadline(); ok && time.Until(d) < wait {
		wait = max(time.Until(d), 0)
	}
	_ = conn.SetReadDeadline(time.Now().Add(wait)) // socket deadlines are wall-clock
	defer conn.SetReadDeadline(time.Time{})
	var b [512]byte
	for {
		_, err := conn.Read(b[:]) // a guest sends nothing on the stream path; drain if it does
		if err == nil {
			continue
		}
		if kind := ErrorKind(err); peerGone(kind) {
			return kind
		}
		return ""
	}
}

// backoff is the wait before connection attempt number failures+1: base × 2^(failures-1),
// at most backoffMax, with jitter between half and all of it so connections do not retry
// in lockstep.
func (g *gen) backoff(failures int) time.Duration {
	d := g.tune.backoffBase << min(failures-1, 16)
	if d <= 0 || d > g.tune.backoffMax {
		d = g.tune.backoffMax
	}
	half := d / 2
	return half + rand.N(half+1)
}
