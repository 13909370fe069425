package kernel

import "sync/atomic"

// sizeRun is count datagrams of one payload size, in the order they arrived.
type sizeRun struct{ size, count int }

// datagramReader reads the datagrams waiting on a UDP socket, many per system call where the
// platform allows (recvmmsg, UDP_GRO on Linux).
type datagramReader interface {
	// read blocks until datagrams arrive and returns their sizes as runs, in arrival order.
	// The slice is reused by the next call.
	read() ([]sizeRun, error)
}

// recvStats count how datagrams arrived, for tests and benchmarks: coalesced reads prove
// that UDP_GRO is in use.
type recvStats struct {
	buffers   atomic.Uint64 // buffers read (one per datagram, or per coalesced group)
	coalesced atomic.Uint64 // buffers that held more than one datagram
	datagrams atomic.Uint64
}

// appendSegments splits a received buffer of n bytes into datagrams. gso is the segment size
// UDP_GRO reported (0: the buffer is one datagram): every segment is gso bytes except a
// shorter last one, which is a datagram of its own, as the sender's UDP_SEGMENT made them.
func appendSegments(runs []sizeRun, n, gso int) []sizeRun {
	if gso <= 0 || n <= gso {
		return appendRun(runs, n, 1)
	}
	runs = appendRun(runs, gso, n/gso)
	if rest := n % gso; rest > 0 {
		runs = appendRun(runs, rest, 1)
	}
	return runs
}

// appendRun adds count datagrams of size, merging with the last run when it has that size.
func appendRun(runs []sizeRun, size, count int) []sizeRun {
	if last := len(runs) - 1; last >= 0 && runs[last].size == size {
		runs[last].count += count
		return runs
	}
	return append(runs, sizeRun{size: size, count: count})
}
