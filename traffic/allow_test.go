package traffic

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestAllowPermits(t *testing.T) {
	lab := Allow{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	for _, tc := range []struct {
		allow Allow
		addr  string
		want  bool
	}{
		{nil, "127.0.0.1", true},
		{nil, "127.9.8.7", true},
		{nil, "::1", true},
		{nil, "::ffff:127.0.0.1", true},
		{nil, "10.0.0.1", false},
		{nil, "192.168.1.1", false},
		{nil, "8.8.8.8", false},
		{nil, "::", false},
		{nil, "0.0.0.0", false},
		{nil, "::ffff:10.0.0.1", false},
		{nil, "fe80::1", false},
		{nil, "224.0.0.1", false},
		{nil, "255.255.255.255", false},
		{lab, "10.0.0.1", true},
		{lab, "::ffff:10.1.2.3", true},
		{lab, "fd12::5", true},
		{lab, "11.0.0.1", false},
		{lab, "192.168.1.1", false},
		{Allow{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}, "::", false},
		{Allow{netip.MustParsePrefix("0.0.0.0/0")}, "0.0.0.0", false},
		{Allow{netip.MustParsePrefix("0.0.0.0/0")}, "239.1.1.1", false},
	} {
		if got := tc.allow.Permits(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("Allow%v.Permits(%s) = %v, want %v", tc.allow, tc.addr, got, tc.want)
		}
	}
	if (Allow{}).Permits(netip.Addr{}) {
		t.Error("the zero address is permitted")
	}
}

func TestRunRefusesOutsideDestinationsBeforeAnyPacket(t *testing.T) {
	// These addresses are never sent to: the deps below fail the test if a socket opens.
	for _, addr := range []string{"10.0.0.1", "192.168.1.1", "8.8.8.8", "::"} {
		dest := netip.AddrPortFrom(netip.MustParseAddr(addr), 9)
		for _, profile := range []Profile{StreamBurst, FragmentForward, SingleNBL, Mix} {
			spec := Spec{Profile: profile, Duration: time.Second, Rate: 100}
			if profile == Mix {
				spec.Weights = map[Profile]float64{StreamBurst: 1, FragmentForward: 1, SingleNBL: 1}
			}
			to := Addrs{Stream: dest, Forward: dest, Control: dest}
			ticks := &tickLog{t: t}
			c, err := run(context.Background(), spec, to, Allow{netip.MustParsePrefix("172.16.0.0/12")}, ticks.onTick, noNetwork(t), defaultTuning)
			if err == nil {
				t.Fatalf("%s to %s: no error", profile, dest)
			}
			msg := err.Error()
			if !strings.Contains(msg, dest.String()) || !strings.Contains(msg, "lab.allow") {
				t.Errorf("%s to %s: the error does not name the address and lab.allow: %v", profile, dest, err)
			}
			if c.Packets != 0 || c.Conns != 0 || len(ticks.ticks) != 0 {
				t.Errorf("%s to %s: counters %+v, %d ticks; want nothing", profile, dest, c, len(ticks.ticks))
			}
		}
	}
}

func TestRunRefusesMixWithOneOutsideDestination(t *testing.T) {
	spec := Spec{Profile: Mix, MaxPackets: 10, Weights: map[Profile]float64{SingleNBL: 1, FragmentForward: 1}}
	to := Addrs{Control: loopback4(9), Forward: netip.MustParseAddrPort("192.168.1.1:9")}
	_, err := run(context.Background(), spec, to, nil, nil, noNetwork(t), defaultTuning)
	if err == nil || !strings.Contains(err.Error(), "192.168.1.1:9") || !strings.Contains(err.Error(), "Target.Forward") {
		t.Fatalf("want a refusal naming 192.168.1.1:9 and Target.Forward, got %v", err)
	}
}

func TestRunRefusesMissingDestination(t *testing.T) {
	_, err := run(context.Background(), Spec{Profile: SingleNBL, MaxPackets: 1}, Addrs{Stream: loopback4(9)}, nil, nil, noNetwork(t), defaultTuning)
	if err == nil || !strings.Contains(err.Error(), "Target.Control") {
		t.Fatalf("want an error naming Target.Control, got %v", err)
	}
}

func TestSpecValidationNamesTheField(t *testing.T) {
	ok := Spec{Profile: SingleNBL, MaxPackets: 1}
	for _, tc := range []struct {
		name  string
		spec  func(Spec) Spec
		field string
	}{
		{"no bound", func(s Spec) Spec { s.MaxPackets = 0; return s }, "Spec.MaxPackets"},
		{"negative duration", func(s Spec) Spec { s.Duration = -time.Second; return s }, "Spec.Duration"},
		{"unknown profile", func(s Spec) Spec { s.Profile = "flood"; return s }, "Spec.Profile"},
		{"negative rate", func(s Spec) Spec { s.Rate = -1; return s }, "Spec.Rate"},
		{"both rates", func(s Spec) Spec { s.Rate, s.BitRate = 1, 1; return s }, "Spec.BitRate"},
		{"tiny payload", func(s Spec) Spec { s.PayloadBytes = 8; return s }, "Spec.PayloadBytes"},
		{"huge payload", func(s Spec) Spec { s.PayloadBytes = 70000; return s }, "Spec.PayloadBytes"},
		{"bad burst", func(s Spec) Spec { s.BurstSegments = -1; return s }, "Spec.BurstSegments"},
		{"bad conns", func(s Spec) Spec { s.Conns = 5000; return s }, "Spec.Conns"},
		{"bad batch", func(s Spec) Spec { s.Batch = -3; return s }, "Spec.Batch"},
		{"bad send", func(s Spec) Spec { s.Send = "carrier-pigeon"; return s }, "Spec.Send"},
		{"weights without mix", func(s Spec) Spec { s.Weights = map[Profile]float64{SingleNBL: 1}; return s }, "Spec.Weights"},
		{"mix without weights", func(s Spec) Spec { s.Profile = Mix; return s }, "Spec.Weights"},
		{"mix bad weight", func(s Spec) Spec {
			s.Profile, s.Weights = Mix, map[Profile]float64{SingleNBL: 0}
			return s
		}, "Spec.Weights"},
		{"mix of mix", func(s Spec) Spec {
			s.Profile, s.Weights = Mix, map[Profile]float64{Mix: 1}
			return s
		}, "Spec.Weights"},
		{"mix with payload", func(s Spec) Spec {
			s.Profile, s.Weights, s.PayloadBytes = Mix, map[Profile]float64{SingleNBL: 1}, 100
			return s
		}, "Spec.PayloadBytes"},
	} {
		err := tc.spec(ok).Validate()
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: want an error naming %s, got %v", tc.name, tc.field, err)
		}
		_, runErr := run(context.Background(), tc.spec(ok), Addrs{Control: loopback4(9)}, nil, nil, noNetwork(t), defaultTuning)
		if runErr == nil {
			t.Errorf("%s: Run accepted the spec", tc.name)
		}
	}
	if err := ok.Validate(); err != nil {
		t.Errorf("a good spec fails: %v", err)
	}
	// Over IPv4 a UDP payload above 65507 cannot be sent; over IPv6 65527 can.
	big := Spec{Profile: FragmentForward, MaxPackets: 1, PayloadBytes: 65520}
	_, err := run(context.Background(), big, Addrs{Forward: loopback4(9)}, nil, nil, noNetwork(t), defaultTuning)
	if err == nil || !strings.Contains(err.Error(), "Spec.PayloadBytes") || !strings.Contains(err.Error(), "IPv4") {
		t.Errorf("65520-byte datagrams over IPv4: want a PayloadBytes error, got %v", err)
	}
}
