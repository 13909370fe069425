//go:build linux

package kernel

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// StartFrameForwarder makes the guest a router between two Ethernet interfaces (in: the
// forward path's incoming NIC, eth1 in the appliance; out: eth2), whose addresses it owns
// in the model only: inAddr and outAddr (e.g. 198.51.100.1/24, 203.0.113.1/24) must not be
// configured on the interfaces, so Linux's own stack neither answers nor routes for them.
// It reads every frame with AF_PACKET sockets, answers ARP for those addresses, indicates each
// IPv4 fragment group to outAddr's network at the forward layer of k (one NBL per fragment),
// and writes what the driver permits out of out to the next hop, found by ARP. It brings
// both interfaces up if they are down. Needs CAP_NET_RAW. stop closes the sockets and waits
// (at most 5 s) for the readers.
func StartFrameForwarder(k *Kernel, in, out string, inAddr, outAddr netip.Prefix) (stop func(), err error) {
	_, stop, err = startFrameForwarder(k, in, out, inAddr, outAddr)
	return stop, err
}

func startFrameForwarder(k *Kernel, in, out string, inAddr, outAddr netip.Prefix) (*frameForwarder, func(), error) {
	if err := checkForwarderAddrs(in, out, inAddr, outAddr); err != nil {
		return nil, nil, err
	}
	var socks []*packetSocket
	closeAll := func() {
		for _, s := range socks {
			s.file.Close()
		}
	}
	var macs []net.HardwareAddr
	for _, name := range []string{in, out} {
		ifc, err := net.InterfaceByName(name)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("kernel: frame forwarder: interface %s: %w; the appliance's NICs 2 and 3 are eth1 and eth2", name, err)
		}
		if len(ifc.HardwareAddr) != 6 {
			closeAll()
			return nil, nil, fmt.Errorf("kernel: frame forwarder: interface %s has no Ethernet address (%v)", name, ifc.HardwareAddr)
		}
		if err := ensureUp(name); err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("kernel: frame forwarder: bringing %s up: %w", name, err)
		}
		s, err := openPacketSocket(ifc.Index)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("kernel: frame forwarder: AF_PACKET socket on %s: %w; it needs CAP_NET_RAW (run as root)", name, err)
		}
		socks = append(socks, s)
		macs = append(macs, ifc.HardwareAddr)
	}
	f := newFrameForwarder(k, macs[0], macs[1], inAddr, outAddr, socks[0], socks[1])
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); socks[0].readLoop(f.fromIn) }()
	go func() { defer wg.Done(); socks[1].readLoop(f.fromOut) }()
	stop := sync.OnceFunc(func() {
		closeAll()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
	})
	return f, stop, nil
}

// packetSocket is an AF_PACKET socket bound to one interface, on Go's poller so that
// closing it ends a blocked read.
type packetSocket struct {
	file *os.File
	rc   syscall.RawConn
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func openPacketSocket(ifindex int) (*packetSocket, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("bind", err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	file := os.NewFile(uintptr(fd), "af_packet")
	rc, err := file.SyscallConn()
	if err != nil {
		file.Close()
		return nil, err
	}
	return &packetSocket{file: file, rc: rc}, nil
}

// readLoop hands every frame the interface received (not the ones it sent) to handle, until
// the socket is closed.
func (s *packetSocket) readLoop(handle func([]byte)) {
	buf := make([]byte, 65536)
	var (
		n    int
		from unix.Sockaddr
		rerr error
	)
	recv := func(fd uintptr) bool {
		n, from, rerr = unix.Recvfrom(int(fd), buf, 0)
		return rerr != unix.EAGAIN
	}
	// Bounded by the socket: Close ends it; a socket that keeps failing is given up.
	for fails := 0; fails < 1000; {
		if err := s.rc.Read(recv); err != nil {
			return // closed
		}
		if rerr != nil {
			if errors.Is(rerr, unix.EINTR) {
				continue
			}
			fails++
			time.Sleep(time.Millisecond)
			continue
		}
		fails = 0
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		handle(buf[:n])
	}
}

func (s *packetSocket) writeFrame(frame []byte) error {
	var werr error
	err := s.rc.Write(func(fd uintptr) bool {
		_, werr = unix.Write(int(fd), frame)
		return werr != unix.EAGAIN
	})
	if err != nil {
		return err
	}
	return os.NewSyscallError("write", werr)
}

// ensureUp sets IFF_UP on an interface that is down.
func ensureUp(name string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return os.NewSyscallError("SIOCGIFFLAGS", err)
	}
	flags := ifr.Uint16()
	if flags&unix.IFF_UP != 0 {
		return nil
	}
	ifr.SetUint16(flags | unix.IFF_UP)
	return os.NewSyscallError("SIOCSIFFLAGS", unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr))
}
