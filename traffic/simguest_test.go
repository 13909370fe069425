package traffic_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/wfplab/wfplab/lab/sim/kernel"
	"github.com/wfplab/wfplab/traffic"
)

// Each profile, sent to the simulated guest's kernel model over its real loopback sockets,
// must produce the NBL chains it exists for: multi-NBL chains on the stream and forward
// layers, single-NBL chains at the transport layer.
func TestProfilesMakeTheirChainsOnTheSimulatedGuest(t *testing.T) {
	k := kernel.New(kernel.Config{Arch: "x64", OSVersion: "6.1", Seed: 1, GroupFragments: true}) // grouping on, as the lab sets it
	defer k.Close()
	ns, err := kernel.Listen(k, netip.MustParseAddr("127.0.0.1"), kernel.Ports{})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	stream, forward, control := ns.Addrs()
	if err := k.StartDriver(kernel.DriverConfig{StreamPort: stream.Port(), ControlPort: control.Port(),
		ForwardPrefix: netip.PrefixFrom(forward.Addr(), 32)}); err != nil {
		t.Fatal(err)
	}
	to := traffic.Addrs{Stream: stream, Forward: forward, Control: control}

	for _, tc := range []struct {
		spec  traffic.Spec
		layer kernel.Layer
		check func(c traffic.Counters, lc kernel.LayerCounters) string
	}{
		{traffic.Spec{Profile: traffic.StreamBurst, Rate: 8000, MaxPackets: 8 * 100, Conns: 2}, kernel.LayerStream,
			func(c traffic.Counters, lc kernel.LayerCounters) string {
				// The guest blocks (and resets) each stream at its first read, which spans several
				// segments since each write is 8 of them. Whether the generator sees the reset
				// before MaxPackets is reached depends on scheduling (reconnection is tested
				// against a resetting server in stream_test.go).
				if lc.Blocked == 0 || lc.MultiChain == 0 || lc.NBLs < 2*lc.Classify || c.Conns < 2 {
					return "want blocked multi-NBL stream chains"
				}
				return ""
			}},
		{traffic.Spec{Profile: traffic.FragmentForward, Rate: 2000, MaxPackets: 200}, kernel.LayerForward,
			func(c traffic.Counters, lc kernel.LayerCounters) string {
				// 4000 bytes + UDP header over a 1500-byte MTU: 3 fragments, one NBL each,
				// indicated alone and then (grouping on) as a group, the chain the driver blocks.
				groups := lc.Hist[kernel.HistBucket(3)]
				if groups != lc.MultiChain || lc.Hist[0] != 3*groups || lc.NBLs != 6*groups || lc.MultiBlocked != groups || groups < 50 {
					return "want every datagram 3 lone fragments and a blocked chain of 3 NBLs"
				}
				return ""
			}},
		{traffic.Spec{Profile: traffic.SingleNBL, Rate: 2000, MaxPackets: 200}, kernel.LayerTransport,
			func(c traffic.Counters, lc kernel.LayerCounters) string {
				if lc.MultiChain != 0 || lc.NBLs != lc.Classify || lc.Classify < 50 {
					return "want only single-NBL chains"
				}
				return ""
			}},
	} {
		if _, ok := k.ResetCounters(); !ok {
			t.Fatal("driver not running")
		}
		c, err := traffic.Run(context.Background(), tc.spec, to, nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.spec.Profile, err)
		}
		// Let the guest's readers drain their sockets. A loaded machine may drop some datagrams
		// at the guest's socket, so the checks are on chain shapes, with a loose count.
		time.Sleep(200 * time.Millisecond)
		counters, _ := k.Counters()
		if why := tc.check(c, counters[tc.layer]); why != "" {
			t.Errorf("%s: %s; generator %+v, guest %s layer %+v", tc.spec.Profile, why, c, tc.layer, counters[tc.layer])
		}
		for _, other := range kernel.Layers {
			if other != tc.layer && counters[other].Classify != 0 {
				t.Errorf("%s: traffic reached the %s layer too: %+v", tc.spec.Profile, other, counters[other])
			}
		}
	}
}
