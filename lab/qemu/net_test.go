package qemu

import (
	"net"
	"strconv"
	"testing"
)

func TestPortPoolGivesDistinctBindablePorts(t *testing.T) {
	pp := newPortPool()
	seen := map[string]bool{}
	for i := range 4 {
		v, err := pp.allocate(i, true)
		if err != nil {
			t.Fatal(err)
		}
		l := v.Links
		tcp := []int{v.Host.WinRM, v.Host.Stream}
		udp := []int{v.Host.Control, int(l.A.GuestSock.Port()), int(l.A.HostSock.Port()), int(l.B.GuestSock.Port()), int(l.B.HostSock.Port())}
		for _, p := range tcp {
			key := "tcp/" + strconv.Itoa(p)
			if seen[key] {
				t.Errorf("%s handed out twice", key)
			}
			seen[key] = true
			ln, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				t.Errorf("TCP port %d is not free: %v", p, err)
				continue
			}
			ln.Close()
		}
		for _, p := range udp {
			key := "udp/" + strconv.Itoa(p)
			if seen[key] {
				t.Errorf("%s handed out twice", key)
			}
			seen[key] = true
			c, err := net.ListenPacket("udp4", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				t.Errorf("UDP port %d is not free: %v", p, err)
				continue
			}
			c.Close()
		}
	}
	if v, err := pp.allocate(9, false); err != nil || v.Links != nil {
		t.Errorf("without links: %+v, %v", v, err)
	}
	if _, err := pp.take("sctp"); err == nil {
		t.Errorf("an unknown network should fail")
	}
}
