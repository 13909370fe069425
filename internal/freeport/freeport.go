// Package freeport finds free ports on 127.0.0.1, for sockets that must be given a fixed
// port (QEMU's forwards, a guest served on fixed ports) and for tests that need a port
// nothing listens on.
package freeport

import (
	"fmt"
	"net"
)

// Get returns a port on 127.0.0.1 that was free a moment ago for network ("tcp" or
// "udp"); another process may take it before the caller binds it.
func Get(network string) (uint16, error) {
	switch network {
	case "tcp":
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("finding a free TCP port on 127.0.0.1: %w", err)
		}
		defer l.Close()
		return uint16(l.Addr().(*net.TCPAddr).Port), nil
	case "udp":
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("finding a free UDP port on 127.0.0.1: %w", err)
		}
		defer c.Close()
		return uint16(c.LocalAddr().(*net.UDPAddr).Port), nil
	}
	return 0, fmt.Errorf("freeport: unknown network %q (want tcp or udp)", network)
}
