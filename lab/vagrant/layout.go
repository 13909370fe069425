package vagrant

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"

	"github.com/wfplab/wfplab/lab/contract"
)

// Layout is vagrant/Vagrantfile's network plan, which the provider and the Vagrantfile must
// agree on: both read the same environment variables (vagrant/README.md, "addresses").
type Layout struct {
	// HostOnlyPrefix is the host-only network's first three octets: machine n is at
	// <prefix>.<10+n>, where stream and control traffic go.
	HostOnlyPrefix string
	// ForwardNet is the forward networks' first two octets: machine n routes
	// <net>.<n>.0/24, fragment-forward traffic goes to <net>.<n>.10 through it.
	ForwardNet string
	// The guest ports prepare-guest.cmd opens, and the forward destination's port.
	StreamPort, ControlPort, ForwardPort uint16
}

// Environment variables the Vagrantfile reads too.
const (
	EnvHostOnlyPrefix = "WFPLAB_HOSTONLY_PREFIX"
	EnvForwardNet     = "WFPLAB_FORWARD_NET"
)

// DefaultLayout is the Vagrantfile's layout without its variables set.
func DefaultLayout() Layout {
	return Layout{HostOnlyPrefix: "192.168.56", ForwardNet: "10.57", StreamPort: 5001, ControlPort: 5002, ForwardPort: 9000}
}

// LayoutFromEnv is DefaultLayout with the variables the Vagrantfile reads applied.
func LayoutFromEnv(getenv func(string) string) Layout {
	l := DefaultLayout()
	if v := getenv(EnvHostOnlyPrefix); v != "" {
		l.HostOnlyPrefix = v
	}
	if v := getenv(EnvForwardNet); v != "" {
		l.ForwardNet = v
	}
	return l
}

// Addrs are machine n's traffic addresses under the layout.
func (l Layout) Addrs(n int) (contract.TrafficAddrs, error) {
	if n < 1 || n > 200 {
		return contract.TrafficAddrs{}, fmt.Errorf("machine index %d is out of the layout's range 1-200", n)
	}
	host, err := netip.ParseAddr(fmt.Sprintf("%s.%d", l.HostOnlyPrefix, 10+n))
	if err != nil || !host.Is4() {
		return contract.TrafficAddrs{}, fmt.Errorf("%s=%q is not the first three octets of an IPv4 network such as 192.168.56", EnvHostOnlyPrefix, l.HostOnlyPrefix)
	}
	dest, err := netip.ParseAddr(fmt.Sprintf("%s.%d.10", l.ForwardNet, n))
	if err != nil || !dest.Is4() {
		return contract.TrafficAddrs{}, fmt.Errorf("%s=%q is not the first two octets of an IPv4 network such as 10.57", EnvForwardNet, l.ForwardNet)
	}
	prefix, _ := dest.Prefix(24)
	return contract.TrafficAddrs{
		Stream:        netip.AddrPortFrom(host, l.StreamPort),
		Control:       netip.AddrPortFrom(host, l.ControlPort),
		Forward:       netip.AddrPortFrom(dest, l.ForwardPort),
		ForwardPrefix: prefix,
	}, nil
}

// vagrantfileTarget matches a row of the Vagrantfile's TARGETS table: ["name", "box", n].
var vagrantfileTarget = regexp.MustCompile(`(?m)^\s*\[\s*"([^"]+)"\s*,\s*"[^"]*"\s*,\s*(\d+)\s*\]`)

// MachineIndexes reads the machine names and their layout index n from a Vagrantfile laid
// out as vagrant/Vagrantfile (its TARGETS table).
func MachineIndexes(vagrantfile []byte) map[string]int {
	idx := map[string]int{}
	for _, m := range vagrantfileTarget.FindAllSubmatch(vagrantfile, -1) {
		n, err := strconv.Atoi(string(m[2]))
		if err == nil {
			idx[string(m[1])] = n
		}
	}
	return idx
}

// Router tells which gateway the host sends traffic for dest through; an invalid address
// when it goes straight out of an interface.
type Router func(ctx context.Context, dest netip.Addr) (netip.Addr, error)

// CheckRoute makes sure traffic for the forward network goes through the guest (via), so the
// guest forwards it: without the route, fragment-forward traffic would go elsewhere. A
// loopback network needs no route. The error gives the exact command that adds the route.
func CheckRoute(ctx context.Context, route Router, network netip.Prefix, via netip.Addr) error {
	dest := network.Addr().Next()
	if dest.IsLoopback() {
		return nil
	}
	gw, err := route(ctx, dest)
	if err != nil {
		return fmt.Errorf("looking up the host's route to %s: %w; make sure traffic to %s goes through the guest: %s", dest, err, network, AddRouteCommand(runtime.GOOS, network, via))
	}
	if gw != via {
		got := "straight out of an interface"
		if gw.IsValid() {
			got = "through " + gw.String()
		}
		return fmt.Errorf("the host sends traffic for %s %s, not through the guest at %s, so the guest would never forward it; add the route: %s",
			network, got, via, AddRouteCommand(runtime.GOOS, network, via))
	}
	return nil
}

// AddRouteCommand is the command that routes network through via on a host of that OS.
func AddRouteCommand(goos string, network netip.Prefix, via netip.Addr) string {
	switch goos {
	case "windows":
		mask := netip.MustParseAddr("255.255.255.255")
		if b := network.Bits(); b < 32 {
			m := ^uint32(0) << (32 - b)
			mask = netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)})
		}
		return fmt.Sprintf("route add %s mask %s %s", network.Addr(), mask, via)
	case "darwin", "freebsd":
		return fmt.Sprintf("sudo route -n add -net %s %s", network, via)
	}
	return fmt.Sprintf("sudo ip route add %s via %s", network, via)
}

// HostRouter asks the host's routing table: `ip route get` on Linux, `route -n get` on macOS
// and BSD. Other hosts cannot be asked: the error says so.
func HostRouter(ctx context.Context, dest netip.Addr) (netip.Addr, error) {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "linux":
		cmd = exec.CommandContext(ctx, "ip", "route", "get", dest.String())
	case "darwin", "freebsd":
		cmd = exec.CommandContext(ctx, "route", "-n", "get", dest.String())
	default:
		return netip.Addr{}, fmt.Errorf("wfplab cannot read the routing table on %s", runtime.GOOS)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%s: %v: %s", strings.Join(cmd.Args, " "), err, strings.TrimSpace(string(out)))
	}
	return ParseRouteGet(string(out))
}

// ParseRouteGet reads the gateway from `ip route get` ("... via 192.168.56.15 dev ...") or
// `route -n get` ("gateway: 192.168.56.15"); none: a direct route.
func ParseRouteGet(out string) (netip.Addr, error) {
	f := strings.Fields(out)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "via" || f[i] == "gateway:" {
			a, err := netip.ParseAddr(f[i+1])
			if err != nil {
				return netip.Addr{}, fmt.Errorf("route lookup printed gateway %q, not an address", f[i+1])
			}
			return a, nil
		}
	}
	return netip.Addr{}, nil
}
