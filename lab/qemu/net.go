package qemu

import (
	"github.com/wfplab/wfplab/internal/freeport"

	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/wfplab/wfplab/lab/contract"
)

// HostPorts are the host ends of NIC 1's forwards, all on 127.0.0.1.
type HostPorts struct {
	WinRM   int // TCP -> guest WinRM
	Stream  int // TCP -> guest stream port
	Control int // UDP -> guest control port
}

// ForwardLinks are NIC 2 (link A: frames in) and NIC 3 (link B: forwarded frames out), each
// a guest NIC whose backend is a QEMU dgram netdev on loopback: wfplab binds HostSock,
// receives there every frame the NIC sends, and sends frames to GuestSock (QEMU's end).
// The forward path's destination network is link B's prefix, behind the guest as seen
// from link A.
type ForwardLinks struct {
	A, B contract.FrameLink
}

// Link subnets: documentation ranges (RFC 5737), never routed anywhere.
var (
	linkAPrefix = netip.MustParsePrefix("198.51.100.0/24")
	linkBPrefix = netip.MustParsePrefix("203.0.113.0/24")
)

// MAC plan, per target index i (0..255): NIC 1 52:54:00:76:i:01; guest NIC 2/3
// 52:54:00:77:i:02/03; the neighbours wfplab plays on link A/B 52:54:00:78:i:02/03.
func mac(kind, index, nic byte) net.HardwareAddr {
	return net.HardwareAddr{0x52, 0x54, 0x00, kind, index, nic}
}

func nic1MAC(index int) net.HardwareAddr { return mac(0x76, byte(index), 0x01) }

// newForwardLinks lays out both links of target index with the given UDP ports.
func newForwardLinks(index int, q1, w1, q2, w2 int) ForwardLinks {
	lo := netip.MustParseAddr("127.0.0.1")
	link := func(pfx netip.Prefix, q, w int, nic byte) contract.FrameLink {
		guest := pfx.Addr().Next()
		return contract.FrameLink{
			GuestSock: netip.AddrPortFrom(lo, uint16(q)),
			HostSock:  netip.AddrPortFrom(lo, uint16(w)),
			GuestMAC:  mac(0x77, byte(index), nic),
			HostMAC:   mac(0x78, byte(index), nic),
			GuestIP:   netip.PrefixFrom(guest, pfx.Bits()),
			HostIP:    guest.Next(),
		}
	}
	return ForwardLinks{A: link(linkAPrefix, q1, w1, 2), B: link(linkBPrefix, q2, w2, 3)}
}

// portPool hands out free loopback ports and never the same one twice in a provider's
// life, so two targets booting side by side cannot be given one port. A port is free when
// the kernel let us bind it a moment ago; QEMU may still lose a race for it, which the
// caller handles by retrying with new ports.
type portPool struct {
	mu    sync.Mutex
	given map[string]bool
}

func newPortPool() *portPool { return &portPool{given: map[string]bool{}} }

// take returns a free port on 127.0.0.1 for network "tcp" or "udp".
func (pp *portPool) take(network string) (int, error) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	for range 64 { // bounded: the kernel picks a fresh ephemeral port each time
		p, err := freeport.Get(network)
		if err != nil {
			return 0, err
		}
		port := int(p)
		key := fmt.Sprintf("%s/%d", network, port)
		if !pp.given[key] {
			pp.given[key] = true
			return port, nil
		}
	}
	return 0, fmt.Errorf("no fresh %s port on 127.0.0.1 after 64 tries; the ephemeral range may be exhausted", network)
}

// vmPorts are all host ports one VM uses.
type vmPorts struct {
	Host  HostPorts
	Links *ForwardLinks // nil without forward links
}

func (pp *portPool) allocate(index int, links bool) (vmPorts, error) {
	var v vmPorts
	var err error
	take := func(network string) int {
		if err != nil {
			return 0
		}
		var p int
		p, err = pp.take(network)
		return p
	}
	v.Host = HostPorts{WinRM: take("tcp"), Stream: take("tcp"), Control: take("udp")}
	if links {
		q1, w1, q2, w2 := take("udp"), take("udp"), take("udp"), take("udp")
		fl := newForwardLinks(index, q1, w1, q2, w2)
		v.Links = &fl
	}
	return v, err
}
