//go:build linux

package kernel

import (
	"encoding/binary"
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	// recvBufferForced is the receive buffer asked for with SO_RCVBUFFORCE (root only; it
	// ignores net.core.rmem_max; the kernel doubles it for overhead). It rides out the reader
	// losing its core for a few scheduler slices: with 8 busy loops on 2 cores, 200k
	// datagrams/s of 4000 bytes lost 7% of them with 4 MiB here, none with 8 or 32 MiB.
	recvBufferForced = 16 << 20
	// recvBufferPlain is SO_RCVBUF's request otherwise; the kernel caps it at rmem_max.
	recvBufferPlain = 4 << 20
	// scratchBytes is all of a datagram that is copied out: the model needs only sizes, and
	// MSG_TRUNC makes the kernel report the whole length while copying no more than this.
	scratchBytes = 64
	// oobPerMessage holds the UDP_GRO control message with room to spare.
	oobPerMessage = 64
)

// tuneReceiveSocket enlarges the receive buffer and turns on UDP_GRO, with which the kernel
// hands over a UDP_SEGMENT sender's super-packet whole (one read for up to 64 datagrams)
// instead of splitting it into one buffer per datagram. It reports whether GRO is on; a
// kernel without it (before 5.0) keeps one datagram per buffer.
func tuneReceiveSocket(c *net.UDPConn) (gro bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		_ = c.SetReadBuffer(recvBufferPlain)
		return false
	}
	_ = rc.Control(func(fd uintptr) {
		s := int(fd)
		if unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, recvBufferForced) != nil {
			_ = unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_RCVBUF, recvBufferPlain)
		}
		gro = unix.SetsockoptInt(s, unix.SOL_UDP, unix.UDP_GRO, 1) == nil
	})
	return gro
}

// mmsgReader reads with recvmmsg and MSG_TRUNC into buffers allocated once: the kernel
// reports each datagram's (or GRO group's) full length but copies at most scratchBytes of it,
// and nothing is allocated per datagram (golang.org/x/net's ReadBatch copies every payload
// and allocates each sender's address, neither of which the model needs).
type mmsgReader struct {
	rc    syscall.RawConn
	hs    []unix.Mmsghdr
	oob   []byte // oobPerMessage bytes per message, 8-aligned for Cmsghdr
	runs  []sizeRun
	stats *recvStats

	got   int
	errno syscall.Errno
	recv  func(fd uintptr) bool // r.recvmmsg bound once, so Read allocates no closure
}

func newDatagramReader(c *net.UDPConn, batch int, stats *recvStats) (datagramReader, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	r := &mmsgReader{rc: rc, hs: make([]unix.Mmsghdr, batch), stats: stats,
		oob:  make([]byte, batch*oobPerMessage),
		runs: make([]sizeRun, 0, 2*batch)}
	// Every message shares one scratch buffer: its bytes are never looked at.
	iov := &unix.Iovec{Base: &make([]byte, scratchBytes)[0]}
	iov.SetLen(scratchBytes)
	for i := range r.hs {
		r.hs[i].Hdr.Iov = iov
		r.hs[i].Hdr.SetIovlen(1)
		r.hs[i].Hdr.Control = &r.oob[i*oobPerMessage]
	}
	r.recv = r.recvmmsg
	return r, nil
}

// recvmmsg is the RawConn.Read callback: false asks the poller to wait for readability.
func (r *mmsgReader) recvmmsg(fd uintptr) bool {
	for i := range r.hs {
		r.hs[i].Hdr.SetControllen(oobPerMessage)
		r.hs[i].Hdr.Flags = 0
		r.hs[i].Len = 0
	}
	for {
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hs[0])), uintptr(len(r.hs)), unix.MSG_TRUNC, 0, 0)
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		r.got, r.errno = int(n), e
		return true
	}
}

func (r *mmsgReader) read() ([]sizeRun, error) {
	r.got, r.errno = 0, 0
	if err := r.rc.Read(r.recv); err != nil {
		return nil, err // the socket is closed
	}
	if r.errno != 0 {
		return nil, os.NewSyscallError("recvmmsg", r.errno)
	}
	r.runs = r.runs[:0]
	var coalesced, datagrams uint64
	for i := 0; i < r.got; i++ {
		h := &r.hs[i]
		oob := r.oob[i*oobPerMessage:][:min(int(h.Hdr.Controllen), oobPerMessage)]
		n, gso := int(h.Len), groSegmentSize(oob)
		r.runs = appendSegments(r.runs, n, gso)
		if gso > 0 && n > gso {
			coalesced++
			datagrams += uint64((n + gso - 1) / gso)
		} else {
			datagrams++
		}
	}
	if r.stats != nil && r.got > 0 {
		r.stats.buffers.Add(uint64(r.got))
		r.stats.coalesced.Add(coalesced)
		r.stats.datagrams.Add(datagrams)
	}
	return r.runs, nil
}

// groSegmentSize finds the UDP_GRO control message (the segment size of a coalesced buffer,
// a C int) in oob; 0 when there is none.
func groSegmentSize(oob []byte) int {
	hdr := unix.CmsgLen(0)
	for len(oob) >= hdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < hdr || l > len(oob) {
			return 0
		}
		if h.Level == unix.SOL_UDP && h.Type == unix.UDP_GRO && l >= unix.CmsgLen(4) {
			return int(int32(binary.NativeEndian.Uint32(oob[hdr:])))
		}
		next := unix.CmsgSpace(l - hdr)
		if next > len(oob) {
			return 0
		}
		oob = oob[next:]
	}
	return 0
}
