//go:build !linux

package kernel

import (
	"fmt"
	"net/netip"
)

// StartFrameForwarder needs AF_PACKET sockets: Linux only (the appliance's kernel).
func StartFrameForwarder(k *Kernel, in, out string, inAddr, outAddr netip.Prefix) (stop func(), err error) {
	if err := checkForwarderAddrs(in, out, inAddr, outAddr); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("kernel: frame forwarder between %s and %s: AF_PACKET sockets are Linux only; run the simulated guest in the appliance (a Linux VM)", in, out)
}
