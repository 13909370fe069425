package freeport

import (
	"fmt"
	"net"
	"testing"
)

func TestFreePortCanBeBound(t *testing.T) {
	for _, network := range []string{"tcp", "udp"} {
		p, err := Get(network)
		if err != nil || p == 0 {
			t.Fatalf("%s: %d, %v", network, p, err)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", p)
		if network == "tcp" {
			l, err := net.Listen("tcp", addr)
			if err != nil {
				t.Fatalf("binding the free port %s: %v", addr, err)
			}
			l.Close()
		} else {
			c, err := net.ListenPacket("udp", addr)
			if err != nil {
				t.Fatalf("binding the free port %s: %v", addr, err)
			}
			c.Close()
		}
	}
	if _, err := Get("sctp"); err == nil {
		t.Error("an unknown network gave a port")
	}
}
