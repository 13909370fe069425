//go:build !linux

package traffic

import "net"

func forceReadBuffer(*net.UDPConn, int) {}

func gsoAvailable() bool { return false }
