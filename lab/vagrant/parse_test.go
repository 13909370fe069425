package vagrant

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
)

// Real Vagrant output: status from 2.2.7 (VirtualBox), snapshot lists from 2.2.3 and 2.2.7.
const (
	statusOut = `1583408799,default,metadata,provider,virtualbox
1583408799,default,provider-name,virtualbox
1583408799,default,state,running
1583408799,default,state-human-short,running
1583408799,default,state-human-long,The VM is running. To stop this VM%!(VAGRANT_COMMA) you can run ` + "`vagrant halt`" + ` to\nshut it down forcefully.
1583408799,,ui,info,Current machine states:\n\ndefault                   running (virtualbox)
`
	snapNone = `1583406501,default,metadata,provider,virtualbox
1583406503,default,ui,output,==> default: No snapshots have been taken yet!
1583406503,default,ui,detail,    default: You can take a snapshot using ` + "`vagrant snapshot save`" + `. Note that\n    default: not all providers support this yet. Once a snapshot is taken%!(VAGRANT_COMMA) you
`
	snap227 = `1583406926,default,metadata,provider,virtualbox
1583406926,default,ui,output,==> default:
1583406926,default,ui,detail,reset
1583406926,default,ui,detail,clean
`
	snap223 = `1583439756,default,metadata,provider,virtualbox
1583439756,default,ui,output,clean
`
	snapNotCreated = `1583404006,default,metadata,provider,virtualbox
1583404006,default,ui,info,==> default: VM not created. Moving on...
`
)

func TestParseMachineReadable(t *testing.T) {
	st := ParseStatus(statusOut + "a stray plugin line\n\n")
	if got := st["default"]; got != (MachineStatus{State: "running", Provider: "virtualbox"}) || len(st) != 1 {
		t.Fatalf("status %+v", st)
	}
	recs := ParseMachineReadable(statusOut)
	long := recs[4].Data[0]
	if !strings.Contains(long, "this VM, you can") || !strings.Contains(long, "\nshut it down") {
		t.Errorf("escapes not undone: %q", long)
	}
	for name, c := range map[string]struct {
		out  string
		want []string
	}{
		"none": {snapNone, nil}, "2.2.7": {snap227, []string{"reset", "clean"}},
		"2.2.3": {snap223, []string{"clean"}}, "not created": {snapNotCreated, nil}, "empty": {"", nil},
	} {
		if got := ParseSnapshots(c.out); !slices.Equal(got, c.want) {
			t.Errorf("%s: snapshots %q, want %q", name, got, c.want)
		}
	}
}

func TestParseWinRMConfig(t *testing.T) {
	out := "Host win7-x64\r\n  HostName 127.0.0.1\r\n  User vagrant\r\n  Password s3cret\r\n  Port 55985\r\n  RDPPort 3389\r\n"
	cfgs, err := ParseWinRMConfig(out)
	if err != nil || len(cfgs) != 1 {
		t.Fatalf("%v %+v", err, cfgs)
	}
	want := WinRMConfig{Host: "win7-x64", HostName: "127.0.0.1", User: "vagrant", Password: "s3cret", Port: 55985}
	if cfgs[0] != want {
		t.Errorf("got %+v", cfgs[0])
	}
	if s := cfgs[0].String(); strings.Contains(s, "s3cret") {
		t.Errorf("String shows the password: %s", s)
	}
	for _, bad := range []string{"", "Host a\n  HostName h\n  User u\n  Port 99999\n", "Host a\n  User u\n  Port 5985\n"} {
		if _, err := ParseWinRMConfig(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if r := redact(out); strings.Contains(r, "s3cret") || !strings.Contains(r, "Password <redacted>") {
		t.Errorf("redact: %q", r)
	}
	// Vagrant 2.2/2.3 with an RDP port forwarded: four RDP lines, then a blank line (its unit
	// test, test/unit/plugins/commands/winrm_config/command_test.rb).
	out22 := "Host win7-x64\n  HostName 127.0.0.1\n  User vagrant\n  Password s3cret\n  Port 55986\n" +
		"  RDPHostName 127.0.0.1\n  RDPPort 53389\n  RDPUser vagrant\n  RDPPassword s3cret\n\n"
	cfgs, err = ParseWinRMConfig(out22)
	want.Port = 55986
	if err != nil || len(cfgs) != 1 || cfgs[0] != want {
		t.Errorf("2.2/2.3 format: %v %+v", err, cfgs)
	}
	if r := redact(out22); strings.Contains(r, "s3cret") || !strings.Contains(r, "RDPPassword <redacted>") {
		t.Errorf("redact: %q", r)
	}
}

func TestLayoutAndVagrantfile(t *testing.T) {
	text, err := os.ReadFile("../../vagrant/Vagrantfile")
	if err != nil {
		t.Fatal(err)
	}
	idx := MachineIndexes(text)
	if len(idx) != 6 || idx["vista-sp1-x86"] != 1 || idx["win7-x64"] != 5 || idx["2008r2-x64"] != 6 {
		t.Fatalf("machines %v", idx)
	}
	a, err := DefaultLayout().Addrs(5)
	if err != nil {
		t.Fatal(err)
	}
	if a.Stream.String() != "192.168.56.15:5001" || a.Control.String() != "192.168.56.15:5002" ||
		a.Forward.String() != "10.57.5.10:9000" || a.ForwardPrefix.String() != "10.57.5.0/24" {
		t.Errorf("addresses %+v", a)
	}
	l := LayoutFromEnv(func(k string) string { return map[string]string{EnvHostOnlyPrefix: "10.0.0", EnvForwardNet: "nope"}[k] })
	if _, err := l.Addrs(1); err == nil || !strings.Contains(err.Error(), EnvForwardNet) {
		t.Errorf("bad forward net: %v", err)
	}
	if _, err := DefaultLayout().Addrs(0); err == nil {
		t.Error("index 0 accepted")
	}
}

func TestRouteCheck(t *testing.T) {
	net5 := netip.MustParsePrefix("10.57.5.0/24")
	via := netip.MustParseAddr("192.168.56.15")
	for _, c := range []struct {
		out    string
		gw     string
		errSub string
	}{
		{"10.57.5.1 via 192.168.56.15 dev vboxnet0 src 192.168.56.1 uid 1000 \n    cache \n", "192.168.56.15", ""},
		{"10.57.5.1 via 192.168.1.1 dev eth0 src 192.168.1.20 uid 1000\n", "192.168.1.1", "through 192.168.1.1"},
		{"10.57.5.1 dev eth0 src 10.57.5.3 uid 1000\n", "", "straight out of an interface"},
		{"   route to: 10.57.5.1\ndestination: 10.57.5.0\n    gateway: 192.168.56.15\n  interface: vboxnet0\n", "192.168.56.15", ""},
	} {
		gw, err := ParseRouteGet(c.out)
		if err != nil || (gw.IsValid() && gw.String() != c.gw) || (!gw.IsValid() && c.gw != "") {
			t.Errorf("%q: gateway %v %v, want %s", c.out, gw, err, c.gw)
		}
		err = CheckRoute(context.Background(), func(context.Context, netip.Addr) (netip.Addr, error) { return gw, nil }, net5, via)
		if c.errSub == "" && err != nil || c.errSub != "" && (err == nil || !strings.Contains(err.Error(), c.errSub)) {
			t.Errorf("%q: %v, want %q", c.out, err, c.errSub)
		}
		if err != nil && !strings.Contains(err.Error(), AddRouteCommand("linux", net5, via)) && !strings.Contains(err.Error(), "route") {
			t.Errorf("no fix in %v", err)
		}
	}
	failing := func(context.Context, netip.Addr) (netip.Addr, error) {
		return netip.Addr{}, errors.New("ip: not found")
	}
	if err := CheckRoute(context.Background(), failing, net5, via); err == nil || !strings.Contains(err.Error(), "ip: not found") {
		t.Errorf("lookup failure: %v", err)
	}
	if err := CheckRoute(context.Background(), failing, netip.MustParsePrefix("127.78.5.0/24"), via); err != nil {
		t.Errorf("a loopback network needs no route: %v", err)
	}
	for goos, want := range map[string]string{
		"linux":   "sudo ip route add 10.57.5.0/24 via 192.168.56.15",
		"darwin":  "sudo route -n add -net 10.57.5.0/24 192.168.56.15",
		"windows": "route add 10.57.5.0 mask 255.255.255.0 192.168.56.15",
	} {
		if got := AddRouteCommand(goos, net5, via); got != want {
			t.Errorf("%s: %q, want %q", goos, got, want)
		}
	}
}
