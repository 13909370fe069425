package kernel

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Ports are the traffic ports of a guest; 0 asks for an ephemeral port.
type Ports struct {
	Stream  uint16 // TCP
	Forward uint16 // UDP, the forwarding path
	Control uint16 // UDP, single-NBL traffic
	// ForwardHost is the forward socket's address when the forward path's destination is
	// not the guest's own (the Vagrant layout's network behind the guest); zero: the host.
	ForwardHost netip.Addr
}

// NetStack is the guest's network side: real loopback sockets whose traffic becomes NBL
// chains for the kernel model.
//
//   - Stream (TCP): each Read of n bytes from a connection (64 KiB buffer) is one stream-layer
//     indication of ceil(n/MSS) NBLs. When the driver blocks it, the connection is reset
//     (SO_LINGER 0, then close): the model's stand-in for the TCP stack aborting a connection
//     whose data a stream callout blocked.
//   - Forward (UDP): each datagram is one fragment group on the forwarding path,
//     Params.FragmentChain(size) NBLs, destined to the socket's address.
//   - Control (UDP): each datagram is one NBL at the inbound transport layer.
//
// The UDP sockets read many datagrams per system call (recvmmsg, and UDP_GRO on Linux, which
// hands over a UDP_SEGMENT sender's datagrams as one buffer); each datagram still counts as
// one indication, exactly as if read alone.
type NetStack struct {
	k       *Kernel
	tcp     *net.TCPListener
	fwd     *net.UDPConn
	ctl     *net.UDPConn
	stream  netip.AddrPort
	forward netip.AddrPort
	control netip.AddrPort
	gro     bool // UDP_GRO is on for both UDP sockets
	// fwdStats and ctlStats count the forward and control sockets' reads.
	fwdStats, ctlStats recvStats

	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[*net.TCPConn]struct{}
	closed bool
}

// Listen opens the three sockets on host (which must be a loopback address).
func Listen(k *Kernel, host netip.Addr, ports Ports) (*NetStack, error) {
	if !host.IsLoopback() {
		return nil, fmt.Errorf("traffic sockets: %s is not a loopback address; the simulated guest listens on loopback only", host)
	}
	if ports.ForwardHost.IsValid() && !ports.ForwardHost.IsLoopback() {
		return nil, fmt.Errorf("traffic sockets: forward address %s is not a loopback address; the simulated guest listens on loopback only", ports.ForwardHost)
	}
	return ListenVM(k, host, ports)
}

// ListenVM is Listen on any address: only for a guest alone inside a VM (wfplab sim appliance).
func ListenVM(k *Kernel, host netip.Addr, ports Ports) (*NetStack, error) {
	n := &NetStack{k: k, conns: map[*net.TCPConn]struct{}{}}
	var err error
	n.tcp, err = net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(host, ports.Stream)))
	if err != nil {
		return nil, fmt.Errorf("traffic sockets: stream listener on %s port %d: %w", host, ports.Stream, err)
	}
	fwdHost := host
	if ports.ForwardHost.IsValid() {
		fwdHost = ports.ForwardHost
	}
	n.fwd, err = listenUDP(fwdHost, ports.Forward)
	if err != nil {
		n.tcp.Close()
		return nil, fmt.Errorf("traffic sockets: forward socket on %s port %d: %w", fwdHost, ports.Forward, err)
	}
	n.ctl, err = listenUDP(host, ports.Control)
	if err != nil {
		n.tcp.Close()
		n.fwd.Close()
		return nil, fmt.Errorf("traffic sockets: control socket on %s port %d: %w", host, ports.Control, err)
	}
	n.stream = unmapAP(n.tcp.Addr().(*net.TCPAddr).AddrPort())
	n.forward = unmapAP(n.fwd.LocalAddr().(*net.UDPAddr).AddrPort())
	n.control = unmapAP(n.ctl.LocalAddr().(*net.UDPAddr).AddrPort())
	n.gro = tuneReceiveSocket(n.fwd)
	n.gro = tuneReceiveSocket(n.ctl) && n.gro
	batch := n.k.p.RecvBatch
	fr, err := newDatagramReader(n.fwd, batch, &n.fwdStats)
	if err == nil {
		var cr datagramReader
		if cr, err = newDatagramReader(n.ctl, batch, &n.ctlStats); err == nil {
			n.wg.Add(3)
			go n.accept()
			go n.receive(fr, n.forward, LayerForward)
			go n.receive(cr, n.control, LayerTransport)
			return n, nil
		}
	}
	n.tcp.Close()
	n.fwd.Close()
	n.ctl.Close()
	return nil, fmt.Errorf("traffic sockets: UDP readers on %s: %w", host, err)
}

// indicate is count datagrams of nbls NBLs each arriving on layer l. On the forward path a
// fragmented datagram's fragments are indicated alone first (WFP Layer Requirements and
// Restrictions: "a fragment is indicated to WFP two times"), and in their group only when
// grouping is on.
func (n *NetStack) indicate(l Layer, nbls, count int, local netip.AddrPort) {
	if l != LayerForward || nbls < 2 {
		n.k.IndicateN(l, nbls, count, local)
		return
	}
	n.k.IndicateN(l, 1, nbls*count, local)
	if n.k.FragmentGrouping() {
		n.k.IndicateN(l, nbls, count, local)
	}
}

func listenUDP(host netip.Addr, port uint16) (*net.UDPConn, error) {
	return net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(host, port)))
}

func unmapAP(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// Addrs are the bound addresses of the stream, forward and control sockets.
func (n *NetStack) Addrs() (stream, forward, control netip.AddrPort) {
	return n.stream, n.forward, n.control
}

// Ports are the bound ports, to open the same ones again after a reboot.
func (n *NetStack) Ports() Ports {
	p := Ports{Stream: n.stream.Port(), Forward: n.forward.Port(), Control: n.control.Port()}
	if n.forward.Addr() != n.stream.Addr() {
		p.ForwardHost = n.forward.Addr()
	}
	return p
}

// Close closes every socket and connection and waits (at most 5 s) for the readers to end.
func (n *NetStack) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	for c := range n.conns {
		c.Close()
	}
	n.mu.Unlock()
	errs := errors.Join(n.tcp.Close(), n.fwd.Close(), n.ctl.Close())
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		errs = errors.Join(errs, errors.New("traffic sockets: readers did not stop within 5s"))
	}
	return errs
}

func (n *NetStack) accept() {
	defer n.wg.Done()
	for {
		c, err := n.tcp.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(time.Millisecond) // e.g. EMFILE: do not spin
			continue
		}
		n.mu.Lock()
		if n.closed || len(n.conns) >= n.k.p.MaxConns {
			n.mu.Unlock()
			c.Close()
			continue
		}
		n.conns[c] = struct{}{}
		n.wg.Add(1)
		n.mu.Unlock()
		go n.serveConn(c)
	}
}

// readBufs recycles the stream readers' 64 KiB buffers.
var readBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

func (n *NetStack) serveConn(c *net.TCPConn) {
	defer n.wg.Done()
	defer func() {
		n.mu.Lock()
		delete(n.conns, c)
		n.mu.Unlock()
	}()
	bp := readBufs.Get().(*[]byte)
	defer readBufs.Put(bp)
	buf := *bp
	local := n.stream
	for {
		got, err := c.Read(buf)
		if got > 0 && n.k.Indicate(LayerStream, n.k.p.StreamChain(got), local) {
			_ = c.SetLinger(0)
			c.Close()
			return
		}
		if err != nil {
			c.Close()
			return
		}
	}
}

// receive turns every datagram read from r into indications on layer l: a single NBL at
// the transport layer; on the forward path each IP fragment alone, then (with fragment
// grouping on) the fragment group as one chain. Datagrams of one shape in a batch are
// indicated together (IndicateN), which counts exactly as one by one.
func (n *NetStack) receive(r datagramReader, local netip.AddrPort, l Layer) {
	defer n.wg.Done()
	for errs := 0; ; {
		runs, err := r.read()
		nbls, count := 0, 0
		for _, run := range runs {
			chain := 1
			if l == LayerForward {
				chain = n.k.p.FragmentChain(run.size)
			}
			if chain != nbls && count > 0 {
				n.indicate(l, nbls, count, local)
				count = 0
			}
			nbls = chain
			count += run.count
		}
		if count > 0 {
			n.indicate(l, nbls, count, local)
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Transient errors (ICMP-induced ECONNREFUSED and the like): back off, and give
			// up only if the socket keeps failing.
			if errs++; errs > 10000 {
				return
			}
			time.Sleep(time.Millisecond)
			continue
		}
		errs = 0
	}
}
