//go:build !linux

package kernel

import "net"

// tuneReceiveSocket enlarges the receive buffer (the kernel may cap it); UDP_GRO is Linux's.
func tuneReceiveSocket(c *net.UDPConn) (gro bool) {
	_ = c.SetReadBuffer(4 << 20)
	return false
}

// plainReader reads one datagram per call: batched reads are Linux's (golang.org/x/net's
// ReadBatch reads one at a time elsewhere too, and not at all on Windows).
type plainReader struct {
	c     *net.UDPConn
	buf   []byte
	runs  []sizeRun
	stats *recvStats
}

func newDatagramReader(c *net.UDPConn, _ int, stats *recvStats) (datagramReader, error) {
	return &plainReader{c: c, buf: make([]byte, 64<<10), runs: make([]sizeRun, 0, 1), stats: stats}, nil
}

func (r *plainReader) read() ([]sizeRun, error) {
	n, err := r.c.Read(r.buf)
	r.runs = r.runs[:0]
	if err != nil {
		return r.runs, err
	}
	r.runs = appendSegments(r.runs, n, 0)
	if r.stats != nil {
		r.stats.buffers.Add(1)
		r.stats.datagrams.Add(1)
	}
	return r.runs, nil
}
