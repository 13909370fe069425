package traffic

import (
	"fmt"
	"net/netip"
	"strings"
)

// Allow lists the networks traffic may go to: the scenario's lab.allow. Loopback
// (127.0.0.0/8, ::1/128) is always allowed; nothing else is unless a prefix here contains it.
type Allow []netip.Prefix

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// Permits reports whether traffic may go to addr. Unspecified (0.0.0.0, ::) and multicast
// addresses are never destinations, whatever the prefixes say.
func (a Allow) Permits(addr netip.Addr) bool {
	addr = addr.Unmap() // ::ffff:10.0.0.1 is 10.0.0.1
	if !addr.IsValid() || addr.IsUnspecified() || addr.IsMulticast() || addr == netip.IPv4Unspecified() {
		return false
	}
	if addr.Is4() && addr == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return false
	}
	for _, p := range loopback {
		if p.Contains(addr) {
			return true
		}
	}
	for _, p := range a {
		if p.IsValid() && p.Contains(addr) {
			return true
		}
	}
	return false
}

// Check returns nil if dest may receive traffic, or an error naming the address, what it is
// for, and the setting to change.
func (a Allow) Check(dest netip.AddrPort, what string) error {
	if !dest.IsValid() {
		return fmt.Errorf("traffic: %s has no destination address: set it before running", what)
	}
	if a.Permits(dest.Addr()) {
		return nil
	}
	addr := dest.Addr().Unmap()
	if addr.IsUnspecified() || addr.IsMulticast() || addr == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return fmt.Errorf("traffic: %s destination %s is refused: an unspecified, broadcast or multicast address is never a lab target, whatever lab.allow says; give the guest's own address", what, dest)
	}
	return fmt.Errorf("traffic: %s destination %s is refused: it is neither loopback nor inside the scenario's lab.allow (%s); add a prefix containing %s to lab.allow only if that host belongs to your lab",
		what, dest, a.String(), addr)
}

func (a Allow) String() string {
	if len(a) == 0 {
		return "empty"
	}
	parts := make([]string, len(a))
	for i, p := range a {
		parts[i] = p.String()
	}
	return strings.Join(parts, ", ")
}
