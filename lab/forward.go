package lab

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"net"
	"regexp"
	"strings"

	"github.com/wfplab/wfplab/lab/contract"
)

// Adapter is one line of `getmac /fo csv /nh /v`.
type Adapter struct {
	Connection string // "Local Area Connection 2"
	Adapter    string // the driver's description
	MAC        net.HardwareAddr
	Transport  string // `\Device\Tcpip_{GUID}`, "Media disconnected", "Disabled", ...
}

// parseGetmac reads getmac's CSV (no header, verbose): four quoted fields a line. Lines
// that are not four fields (a header, blank lines) are skipped; an adapter without a MAC
// (getmac prints N/A for some virtual ones) is kept with a nil MAC.
func parseGetmac(out string) ([]Adapter, error) {
	r := csv.NewReader(strings.NewReader(out))
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	recs, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("getmac printed CSV that does not parse: %v", err)
	}
	var ads []Adapter
	for _, rec := range recs {
		if len(rec) != 4 || strings.EqualFold(rec[0], "Connection Name") {
			continue
		}
		a := Adapter{Connection: strings.TrimSpace(rec[0]), Adapter: strings.TrimSpace(rec[1]), Transport: strings.TrimSpace(rec[3])}
		if mac, err := net.ParseMAC(strings.TrimSpace(rec[2])); err == nil && len(mac) == 6 {
			a.MAC = mac
		}
		ads = append(ads, a)
	}
	if len(ads) == 0 {
		return nil, fmt.Errorf("getmac listed no network adapter (output %q)", truncate(out, 200))
	}
	return ads, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// connNameRE is what the lab puts between double quotes on a cmd line: Windows' default
// connection names and ordinary renamed ones. A quote, %, ^ or & could break out of it.
var connNameRE = regexp.MustCompile(`^[A-Za-z0-9 _.,()#+\-]{1,128}$`)

// mask turns a prefix length into a dotted IPv4 mask.
func mask(bits int) string {
	m := net.CIDRMask(bits, 32)
	return net.IP(m).String()
}

// EnableFragmentGrouping turns on fragment grouping on the guest's forward path (#33). Off,
// Windows' default, WFP indicates each forwarded fragment alone, so the fragment-forward
// profile would never hand the callout the multi-NBL chain the bug needs. In force at once
// and kept across reboots; every target gets it, whatever its provider.
func (g *Session) EnableFragmentGrouping(ctx context.Context) error {
	return g.withShell(ctx, func(sh *shell) error {
		if _, err := sh.must(ctx, cmdGroupFragments); err != nil {
			return g.errorf("turning on fragment grouping, which the fragment-forward profile needs: %w", err)
		}
		return nil
	})
}

// ConfigureForwarding, for a target whose provider gave it routed links (TrafficAddrs.
// ForwardIn and ForwardOut), finds each link's NIC by its MAC with getmac, gives it its
// static address, turns forwarding on for both, and sets IPEnableRouter (in force from the
// next boot; per-interface forwarding is in force at once). Stock commands only, Vista
// through 2008 R2. A target without links is left alone.
func (g *Session) ConfigureForwarding(ctx context.Context) error {
	tr := g.target.Traffic
	if tr.ForwardIn == nil && tr.ForwardOut == nil {
		return nil
	}
	if tr.ForwardIn == nil || tr.ForwardOut == nil {
		return g.errorf("forward path: the target has only one of ForwardIn (%v) and ForwardOut (%v); the provider must give both links or neither",
			tr.ForwardIn != nil, tr.ForwardOut != nil)
	}
	links := []struct {
		name string
		l    *contract.FrameLink
	}{{"in", tr.ForwardIn}, {"out", tr.ForwardOut}}
	for _, k := range links {
		if len(k.l.GuestMAC) != 6 || !k.l.GuestIP.Addr().Is4() || k.l.GuestIP.Bits() < 1 || k.l.GuestIP.Bits() > 30 {
			return g.errorf("forward path: link %s has MAC %v and address %v; the provider must set the guest NIC's MAC and an IPv4 address with a /1../30 prefix",
				k.name, k.l.GuestMAC, k.l.GuestIP)
		}
	}
	if tr.ForwardIn.GuestIP.Masked().Overlaps(tr.ForwardOut.GuestIP.Masked()) {
		return g.errorf("forward path: the links' networks %s and %s overlap; the guest could not route between them", tr.ForwardIn.GuestIP.Masked(), tr.ForwardOut.GuestIP.Masked())
	}
	return g.withShell(ctx, func(sh *shell) error {
		res, err := sh.must(ctx, cmdGetmac)
		if err != nil {
			return err
		}
		ads, err := parseGetmac(res.Stdout)
		if err != nil {
			return g.errorf("forward path: %v", err)
		}
		names := make([]string, len(links))
		for i, k := range links {
			for _, a := range ads {
				if bytes.Equal(a.MAC, k.l.GuestMAC) {
					names[i] = a.Connection
				}
			}
			if names[i] == "" {
				return g.errorf("forward path: no network adapter with MAC %s (link %s) in getmac's list (%s); does the VM have the provider's NICs 2 and 3, and are their drivers installed?",
					k.l.GuestMAC, k.name, adapterList(ads))
			}
			if !connNameRE.MatchString(names[i]) {
				return g.errorf("forward path: the connection name %q of the adapter with MAC %s has characters the lab will not put on a cmd line; rename the connection (e.g. netsh interface set interface name=... newname=wfplab-%s)",
					names[i], k.l.GuestMAC, k.name)
			}
		}
		for i, k := range links {
			line := fmt.Sprintf(fmtNetshAddress, names[i], k.l.GuestIP.Addr(), mask(k.l.GuestIP.Bits()))
			if _, err := sh.must(ctx, line); err != nil {
				return err
			}
			if _, err := sh.must(ctx, fmt.Sprintf(fmtNetshForwarding, names[i])); err != nil {
				return err
			}
		}
		if _, err := sh.must(ctx, cmdIPEnableRouter); err != nil {
			return err
		}
		g.logf("forward path: %q %s and %q %s, forwarding on", names[0], tr.ForwardIn.GuestIP, names[1], tr.ForwardOut.GuestIP)
		return nil
	})
}

func adapterList(ads []Adapter) string {
	var parts []string
	for _, a := range ads {
		mac := "no MAC"
		if a.MAC != nil {
			mac = a.MAC.String()
		}
		parts = append(parts, fmt.Sprintf("%q %s", a.Connection, mac))
	}
	return strings.Join(parts, ", ")
}
