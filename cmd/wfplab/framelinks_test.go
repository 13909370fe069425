package main

import (
	"net"
	"net/netip"
	"reflect"
	"testing"

	"github.com/wfplab/wfplab/lab/contract"
	"github.com/wfplab/wfplab/traffic"
)

// Every field of a provider's routed link reaches the traffic generator.
func TestTrafficTargetCarriesFrameLinks(t *testing.T) {
	in := &contract.FrameLink{GuestSock: netip.MustParseAddrPort("127.0.0.1:40001"), HostSock: netip.MustParseAddrPort("127.0.0.1:40002"),
		GuestMAC: net.HardwareAddr{0x52, 0x54, 0, 0, 0, 2}, HostMAC: net.HardwareAddr{2, 0x77, 0x66, 0, 0, 0x0a},
		GuestIP: netip.MustParsePrefix("198.51.100.1/24"), HostIP: netip.MustParseAddr("198.51.100.2")}
	a := contract.TrafficAddrs{Forward: netip.MustParseAddrPort("203.0.113.2:9"), ForwardIn: in}
	got := trafficTarget(a)
	want := traffic.Link{GuestSock: in.GuestSock, HostSock: in.HostSock, GuestMAC: in.GuestMAC, HostMAC: in.HostMAC, GuestIP: in.GuestIP, HostIP: in.HostIP}
	if got.ForwardIn == nil || !reflect.DeepEqual(*got.ForwardIn, want) || got.ForwardOut != nil || got.Forward != a.Forward {
		t.Fatalf("traffic target %+v", got)
	}
	if n := reflect.TypeOf(contract.FrameLink{}).NumField(); n != reflect.TypeOf(traffic.Link{}).NumField() {
		t.Fatalf("contract.FrameLink has %d fields, traffic.Link %d: copy the new one in frameLink", n, reflect.TypeOf(traffic.Link{}).NumField())
	}
}
