//go:build linux

package traffic

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// gsoMaxSegments is UDP_MAX_SEGMENTS of Linux before 6.x raised it; 64 works everywhere.
const gsoMaxSegments = 64

// clearDontFragment lets the host fragment datagrams larger than the path MTU:
// IP_MTU_DISCOVER = IP_PMTUDISC_DONT on IPv4, IPV6_DONTFRAG = 0 on IPv6.
func clearDontFragment(conn *net.UDPConn, is4 bool) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		if is4 {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DONT)
		} else {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_DONTFRAG, 0)
		}
	})
	if err != nil {
		return err
	}
	return os.NewSyscallError("setsockopt", serr)
}

// newPlatformWriter: UDP_SEGMENT for SendGSO, sendmmsg for SendBatch, and for SendAuto
// UDP_SEGMENT when the kernel has it, falling back to sendmmsg.
func newPlatformWriter(conn *net.UDPConn, mode SendMode, p Profile, size, batch int, is4 bool) (datagramWriter, error) {
	bw := newBatchWriter(conn, p, size, batch, is4)
	if mode == SendBatch {
		return bw, nil
	}
	gw, err := newGSOWriter(conn, p, size, batch, is4)
	if err != nil {
		if mode == SendGSO {
			return nil, fmt.Errorf("%w; use Send %q or %q", err, SendAuto, SendBatch)
		}
		return bw, nil
	}
	if mode == SendGSO {
		return gw, nil
	}
	return &autoWriter{gso: gw, fallback: bw}, nil
}

// batchWriter sends up to batch datagrams per sendmmsg (golang.org/x/net WriteBatch).
type batchWriter struct {
	conn interface {
		WriteBatch([]ipv4.Message, int) (int, error)
	}
	msgs    []ipv4.Message
	profile Profile
}

func newBatchWriter(conn *net.UDPConn, p Profile, size, batch int, is4 bool) *batchWriter {
	w := &batchWriter{msgs: make([]ipv4.Message, batch), profile: p}
	if is4 {
		w.conn = ipv4.NewPacketConn(conn)
	} else {
		w.conn = ipv6.NewPacketConn(conn) // ipv6.Message is the same type
	}
	block := make([]byte, batch*size)
	fillPayload(block)
	for i := range w.msgs {
		w.msgs[i].Buffers = [][]byte{block[i*size : (i+1)*size : (i+1)*size]}
	}
	return w
}

func (w *batchWriter) send(n int, seq uint64) (int, int, error) {
	for i := range n {
		PutHeader(w.msgs[i].Buffers[0], w.profile, seq+uint64(i))
	}
	sent, calls := 0, 0
	// Bounded: each pass sends at least one datagram or returns.
	for sent < n {
		k, err := w.conn.WriteBatch(w.msgs[sent:n], 0)
		calls++
		if k > 0 {
			sent += k
		}
		if err != nil {
			return sent, calls, err
		}
		if k <= 0 {
			return sent, calls, errors.New("sendmmsg sent nothing and reported no error")
		}
	}
	return sent, calls, nil
}

// gsoWriter sends up to 64 datagrams per sendmsg as one UDP_SEGMENT super-packet, which the
// kernel splits into datagrams of `size` bytes: one trip through the stack for all of them.
type gsoWriter struct {
	rc       syscall.RawConn
	buf      []byte
	oob      []byte // the UDP_SEGMENT control message
	size     int
	segments int // datagrams per super-packet
	profile  Profile

	// The message write is sending, and its outcome: fields, with sendFn bound once, so a
	// send allocates no closure.
	msg, msgOOB []byte
	msgErr      error
	sendFn      func(fd uintptr) bool
}

func newGSOWriter(conn *net.UDPConn, p Profile, size, batch int, is4 bool) (*gsoWriter, error) {
	limit := maxUDPPayload6
	if is4 {
		limit = maxUDPPayload4
	}
	segments := min(gsoMaxSegments, batch, limit/size)
	if segments < 2 {
		return nil, fmt.Errorf("UDP_SEGMENT cannot help with %d-byte datagrams (a super-packet holds at most %d bytes)", size, limit)
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	// A kernel without UDP GSO (before 4.18) ignores the control message and would send one
	// huge datagram: ask for the option first.
	var serr error
	if err := rc.Control(func(fd uintptr) {
		_, serr = unix.GetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_SEGMENT)
	}); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, &gsoRefusedError{os.NewSyscallError("getsockopt UDP_SEGMENT", serr)}
	}
	oob := make([]byte, unix.CmsgSpace(2))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level, h.Type = unix.SOL_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(oob[unix.CmsgLen(0):], uint16(size))
	buf := make([]byte, segments*size)
	fillPayload(buf)
	w := &gsoWriter{rc: rc, buf: buf, oob: oob, size: size, segments: segments, profile: p}
	w.sendFn = w.sendmsg
	return w, nil
}

func (w *gsoWriter) send(n int, seq uint64) (int, int, error) {
	sent, calls := 0, 0
	for sent < n {
		k := min(n-sent, w.segments)
		for i := range k {
			PutHeader(w.buf[i*w.size:], w.profile, seq+uint64(sent+i))
		}
		var oob []byte
		if k > 1 {
			oob = w.oob
		}
		err := w.write(w.buf[:k*w.size], oob)
		calls++
		if err != nil {
			if k > 1 && gsoRefusal(err) {
				err = &gsoRefusedError{err}
			}
			return sent, calls, err
		}
		sent += k
	}
	return sent, calls, nil
}

func (w *gsoWriter) write(p, oob []byte) error {
	w.msg, w.msgOOB, w.msgErr = p, oob, nil
	err := w.rc.Write(w.sendFn)
	w.msg, w.msgOOB = nil, nil
	if err != nil {
		return err
	}
	return os.NewSyscallError("sendmsg", w.msgErr)
}

// sendmsg is the RawConn.Write callback; false (EAGAIN) waits until the socket is writable.
func (w *gsoWriter) sendmsg(fd uintptr) bool {
	_, w.msgErr = unix.SendmsgN(int(fd), w.msg, w.msgOOB, nil, 0)
	return w.msgErr != unix.EAGAIN
}

// gsoRefusal: the errors Linux gives when UDP_SEGMENT cannot be used on this socket or route
// (no checksum offload: EIO; segment larger than the route's MTU, or too many: EINVAL).
func gsoRefusal(err error) bool {
	return errors.Is(err, unix.EIO) || errors.Is(err, unix.EINVAL) ||
		errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOPROTOOPT)
}
