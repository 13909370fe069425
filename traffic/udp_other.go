//go:build !linux

package traffic

import (
	"fmt"
	"net"
)

// clearDontFragment: outside Linux the stacks this runs on leave DF clear on UDP by default.
func clearDontFragment(conn *net.UDPConn, is4 bool) error { return nil }

// newPlatformWriter: sendmmsg and UDP_SEGMENT are Linux-only (x/net's WriteBatch writes a
// single message elsewhere), so datagrams go one by one.
func newPlatformWriter(conn *net.UDPConn, mode SendMode, p Profile, size, batch int, is4 bool) (datagramWriter, error) {
	if mode == SendGSO {
		return nil, fmt.Errorf("Send %q (UDP_SEGMENT) needs Linux; use %q", SendGSO, SendAuto)
	}
	return newSingleWriter(conn, p, size), nil
}
