package lab

import (
	"bytes"
	"net"
	"testing"
)

func TestParseGetmac(t *testing.T) {
	// As Windows prints it with /fo csv /nh /v, with the kinds of adapters a VM may have.
	out := "\r\n" +
		`"Local Area Connection","Intel(R) PRO/1000 MT Network Connection","52-54-00-12-34-56","\Device\Tcpip_{6C1D9A0B-1111-2222-3333-444455556666}"` + "\r\n" +
		`"Local Area Connection 2","Intel(R) PRO/1000 MT Network Connection #2","52-54-00-77-00-02","Media disconnected"` + "\r\n" +
		`"Bluetooth Network Connection","Bluetooth Device (Personal Area Network)","N/A","Hardware not present"` + "\r\n"
	ads, err := parseGetmac(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(ads) != 3 {
		t.Fatalf("%d adapters: %+v", len(ads), ads)
	}
	if ads[1].Connection != "Local Area Connection 2" || !bytes.Equal(ads[1].MAC, net.HardwareAddr{0x52, 0x54, 0, 0x77, 0, 2}) ||
		ads[1].Transport != "Media disconnected" || ads[1].Adapter != "Intel(R) PRO/1000 MT Network Connection #2" {
		t.Errorf("adapter 2: %+v", ads[1])
	}
	if ads[2].MAC != nil {
		t.Errorf("N/A parsed as MAC %v", ads[2].MAC)
	}
	// A header line is skipped.
	ads, err = parseGetmac(`"Connection Name","Network Adapter","Physical Address","Transport Name"` + "\r\n" +
		`"LAN","x","52-54-00-12-34-56","y"` + "\r\n")
	if err != nil || len(ads) != 1 || ads[0].Connection != "LAN" {
		t.Errorf("with header: %+v %v", ads, err)
	}
	for _, bad := range []string{"", "\r\n", "No network adapters found.\r\n"} {
		if _, err := parseGetmac(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestConnectionNameRule(t *testing.T) {
	for _, ok := range []string{"Local Area Connection", "Local Area Connection 12", "wfplab-in", "LAN (2)", "Ethernet #3"} {
		if !connNameRE.MatchString(ok) {
			t.Errorf("%q refused", ok)
		}
	}
	for _, bad := range []string{"", `a"b`, "a%PATH%", "a&b", "a^b", "a|b", "a<b", "a>b"} {
		if connNameRE.MatchString(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
	if mask(24) != "255.255.255.0" || mask(30) != "255.255.255.252" || mask(8) != "255.0.0.0" {
		t.Errorf("masks %s %s %s", mask(24), mask(30), mask(8))
	}
}
