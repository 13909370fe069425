package sim

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/wfplab/wfplab/lab/sim/cmdexe"
	"github.com/wfplab/wfplab/lab/sim/kernel"
)

// The guest's network adapters, as getmac lists them and netsh configures them. The first
// is the one WinRM and the loopback traffic reach; extra ones come from Config.ExtraNICs
// (the appliance's NICs 2 and 3). Addresses and forwarding persist across reboots, as
// Windows keeps them.

// NIC is an extra network adapter of a simulated guest.
type NIC struct {
	// Name is the connection name; default "Local Area Connection N", N the first free
	// number from 2.
	Name string
	MAC  net.HardwareAddr
	// Interface is the Linux interface that carries this NIC's frames inside the appliance
	// (eth1, eth2), or "" when there is none. When the first two extra NICs both have one,
	// an address and forwarding on, the guest routes from the first to the second through
	// its kernel model (kernel.StartFrameForwarder), from then and at every boot.
	Interface string
}

// NICState is what the guest's model holds for one adapter.
type NICState struct {
	NIC
	Adapter    string       // the driver's description getmac prints
	Addr       netip.Prefix // the static IPv4 address netsh set; invalid while DHCP
	Forwarding bool         // netsh ... set interface forwarding=enabled
	transport  string
}

// firstNICName is Windows' name for the first wired connection.
const firstNICName = "Local Area Connection"

// makeNICs builds the adapter list from the config: the first NIC with a MAC from the seed
// (QEMU's 52:54:00 prefix), then the extra ones.
func makeNICs(seed int64, extra []NIC) ([]*NICState, error) {
	r := rand.New(rand.NewPCG(uint64(seed), 0x6e6963))
	guid := func() string {
		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], r.Uint64())
		binary.BigEndian.PutUint64(b[8:], r.Uint64())
		return fmt.Sprintf(`\Device\Tcpip_{%08X-%04X-%04X-%04X-%012X}`, b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
	}
	first := net.HardwareAddr{0x52, 0x54, 0x00, byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())}
	nics := []*NICState{{NIC: NIC{Name: firstNICName, MAC: first}, Adapter: "Intel(R) PRO/1000 MT Network Connection", transport: guid()}}
	for i, n := range extra {
		if len(n.MAC) != 6 {
			return nil, fmt.Errorf("sim: extra NIC %d (%q) has MAC %v: give a 6-byte Ethernet address", i+1, n.Name, n.MAC)
		}
		if n.Name == "" { // the first free number from 2, as Windows does; ends by len(extra)+2
			for k := 2; n.Name == ""; k++ {
				n.Name = fmt.Sprintf("%s %d", firstNICName, k)
				for _, o := range extra {
					if strings.EqualFold(o.Name, n.Name) {
						n.Name = ""
					}
				}
				for _, o := range nics {
					if strings.EqualFold(o.Name, n.Name) {
						n.Name = ""
					}
				}
			}
		}
		for _, o := range nics {
			if strings.EqualFold(o.Name, n.Name) || string(o.MAC) == string(n.MAC) {
				return nil, fmt.Errorf("sim: extra NIC %q (%s) repeats the name or MAC of %q (%s)", n.Name, n.MAC, o.Name, o.MAC)
			}
		}
		n.MAC = append(net.HardwareAddr(nil), n.MAC...)
		nics = append(nics, &NICState{NIC: n, Adapter: fmt.Sprintf("Intel(R) PRO/1000 MT Network Connection #%d", i+2), transport: guid()})
	}
	return nics, nil
}

// NICs returns the guest's adapters as its model holds them.
func (g *Machine) NICs() []NICState {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]NICState, len(g.nics))
	for i, n := range g.nics {
		out[i] = *n
		out[i].MAC = append(net.HardwareAddr(nil), n.MAC...)
	}
	return out
}

// nicByName finds an adapter by connection name (case-insensitive); g.mu is held.
func (g *Machine) nicByName(name string) *NICState {
	for _, n := range g.nics {
		if strings.EqualFold(n.Name, name) {
			return n
		}
	}
	return nil
}

// getmacMAC is getmac's spelling of a MAC: upper-case hex pairs joined by dashes.
func getmacMAC(m net.HardwareAddr) string {
	return strings.ToUpper(strings.ReplaceAll(m.String(), ":", "-"))
}

// getmac models /fo table|list|csv, /nh and /v for the local machine.
func (g *Machine) getmac(_ context.Context, _ *boot, p *cmdexe.Process) int {
	format, header, verbose := "table", true, false
	for i := 0; i < len(p.Args); i++ {
		a := strings.ToLower(p.Args[i])
		if strings.HasPrefix(a, "-") {
			a = "/" + a[1:]
		}
		switch a {
		case "/fo":
			if i+1 >= len(p.Args) {
				return getmacUsage(p, "Missing argument/sub-option for '/fo'.")
			}
			i++
			format = strings.ToLower(p.Args[i])
			if format != "table" && format != "list" && format != "csv" {
				return getmacUsage(p, fmt.Sprintf("Invalid value '%s' specified for '/fo'.", p.Args[i]))
			}
		case "/nh":
			header = false
		case "/v":
			verbose = true
		default:
			return getmacUsage(p, fmt.Sprintf("Invalid argument/option - '%s'.", p.Args[i]))
		}
	}
	if !header && format == "list" {
		return getmacUsage(p, "'/nh' option is allowed for \"TABLE\" and \"CSV\" format only.")
	}
	nics := g.NICs()
	cols := []string{"Physical Address", "Transport Name"}
	if verbose {
		cols = append([]string{"Connection Name", "Network Adapter"}, cols...)
	}
	row := func(n NICState) []string {
		r := []string{getmacMAC(n.MAC), n.transport}
		if verbose {
			r = append([]string{n.Name, n.Adapter}, r...)
		}
		return r
	}
	switch format {
	case "csv":
		line := func(f []string) { fmt.Fprintf(p.Stdout, "\"%s\"\r\n", strings.Join(f, `","`)) }
		if header {
			line(cols)
		}
		for _, n := range nics {
			line(row(n))
		}
	case "list":
		for _, n := range nics {
			fmt.Fprint(p.Stdout, "\r\n")
			for i, v := range row(n) {
				fmt.Fprintf(p.Stdout, "%-17s %s\r\n", cols[i]+":", v)
			}
		}
	default:
		widths := make([]int, len(cols))
		for i, c := range cols {
			widths[i] = len(c)
		}
		for _, n := range nics {
			for i, v := range row(n) {
				widths[i] = max(widths[i], len(v))
			}
		}
		line := func(f []string) {
			parts := make([]string, len(f))
			for i, v := range f {
				parts[i] = fmt.Sprintf("%-*s", widths[i], v)
			}
			fmt.Fprintf(p.Stdout, "%s\r\n", strings.TrimRight(strings.Join(parts, " "), " "))
		}
		fmt.Fprint(p.Stdout, "\r\n")
		if header {
			line(cols)
			seps := make([]string, len(cols))
			for i := range cols {
				seps[i] = strings.Repeat("=", widths[i])
			}
			line(seps)
		}
		for _, n := range nics {
			line(row(n))
		}
	}
	return 0
}

func getmacUsage(p *cmdexe.Process, msg string) int {
	fmt.Fprintf(p.Stderr, "ERROR: %s\r\nType \"GETMAC /?\" for usage.\r\n", msg)
	return 1
}

// netsh models `interface ipv4 set address`, `interface ipv4 set interface` (also spelled
// `int` and `ip`), the two commands the lab's forward-path preparation sends,
// `interface ipv4 show interfaces`, and `advfirewall firewall add|delete|show rule`.
func (g *Machine) netsh(_ context.Context, b *boot, p *cmdexe.Process) int {
	a := p.Args
	notFound := func() int {
		fmt.Fprintf(p.Stdout, "The following command was not found: %s.\r\n", strings.Join(a, " "))
		return 1
	}
	if len(a) >= 2 && strings.EqualFold(a[0], "advfirewall") && strings.EqualFold(a[1], "firewall") {
		return g.netshFirewall(p, a[2:])
	}
	if len(a) < 4 {
		return notFound()
	}
	ctx, fam, verb, obj := strings.ToLower(a[0]), strings.ToLower(a[1]), strings.ToLower(a[2]), strings.ToLower(a[3])
	if (ctx != "interface" && ctx != "int") || (fam != "ipv4" && fam != "ip") {
		return notFound()
	}
	if verb == "show" && len(a) == 4 && strings.HasPrefix("interfaces", obj) && len(obj) >= 3 {
		return g.netshShowInterfaces(p)
	}
	if verb == "show" && len(a) == 4 && obj == "global" {
		return g.netshShowGlobal(p)
	}
	if verb != "set" || (obj != "address" && obj != "interface" && obj != "global") {
		return notFound()
	}
	if !g.elevated() {
		fmt.Fprint(p.Stdout, "The requested operation requires elevation (Run as administrator).\r\n\r\n")
		return 1
	}
	switch obj {
	case "address":
		return g.netshSetAddress(b, p, a[4:])
	case "global":
		return g.netshSetGlobal(b, p, a[4:])
	}
	return g.netshSetInterface(b, p, a[4:])
}

// netshSetGlobal models `interface ipv4 set global groupforwardedfragments=enabled|disabled`,
// the one global setting the lab changes: in force at once and kept across reboots (netsh's
// default store=persistent). Other global parameters are accepted and ignored.
func (g *Machine) netshSetGlobal(b *boot, p *cmdexe.Process, args []string) int {
	v, ok := netshArgs(args, []string{"defaultcurhoplimit", "neighborcachelimit", "routecachelimit", "reassemblylimit",
		"icmpredirects", "sourceroutingbehavior", "taskoffload", "dhcpmediasense", "mediasenseeventlog", "mldlevel",
		"mldversion", "multicastforwarding", "groupforwardedfragments", "randomizeidentifiers", "addressmaskreply",
		"minmtu", "store"})
	if !ok || len(args) == 0 {
		return netshBadParam(p)
	}
	group, set := v["groupforwardedfragments"], false
	switch strings.ToLower(group) {
	case "":
	case "enabled", "disabled":
		set = true
	default:
		return netshBadParam(p)
	}
	if set {
		on := strings.EqualFold(group, "enabled")
		g.mu.Lock()
		g.groupFrags = on
		g.mu.Unlock()
		if b != nil && b.kern != nil {
			b.kern.SetFragmentGrouping(on)
		}
	}
	fmt.Fprint(p.Stdout, "Ok.\r\n\r\n")
	return 0
}

// netshShowGlobal prints the global IPv4 parameters as Windows 7's netsh lays them out;
// only Group Forwarded Fragments is modelled, the other values are Windows 7's defaults
// (unverified on Vista).
func (g *Machine) netshShowGlobal(p *cmdexe.Process) int {
	g.mu.Lock()
	group := "disabled"
	if g.groupFrags {
		group = "enabled"
	}
	g.mu.Unlock()
	rows := [][2]string{
		{"Default Hop Limit", "128 hops"}, {"Neighbor Cache Limit", "256 entries per interface"},
		{"Route Cache Limit", "128 entries per compartment"}, {"Reassembly Limit", "32893088 bytes"},
		{"ICMP Redirects", "enabled"}, {"Source Routing Behavior", "dontforward"}, {"Task Offload", "enabled"},
		{"Dhcp Media Sense", "enabled"}, {"Media Sense Logging", "disabled"}, {"MLD Level", "all"},
		{"MLD Version", "version3"}, {"Multicast Forwarding", "disabled"}, {"Group Forwarded Fragments", group},
		{"Randomize Identifiers", "enabled"}, {"Address Mask Reply", "disabled"}, {"Minimum Mtu", "576"},
	}
	fmt.Fprint(p.Stdout, "Querying active state...\r\n\r\nGeneral Global Parameters\r\n---------------------------------------------\r\n")
	for _, r := range rows {
		fmt.Fprintf(p.Stdout, "%-36s: %s\r\n", r[0], r[1])
	}
	fmt.Fprint(p.Stdout, "\r\n")
	return 0
}

// Interface indexes the model gives: the loopback pseudo-interface is 1, the adapters 11, 12, ...
const (
	loopbackIndex = 1
	firstNICIndex = 11
)

// netshShowInterfaces prints netsh's interface table (Windows 7's layout): index, metric,
// MTU, state, name; the loopback pseudo-interface first.
func (g *Machine) netshShowInterfaces(p *cmdexe.Process) int {
	fmt.Fprint(p.Stdout, "\r\nIdx     Met         MTU          State                Name\r\n")
	fmt.Fprint(p.Stdout, "---  ----------  ----------  ------------  ---------------------------\r\n")
	row := func(idx, met int, mtu uint32, name string) {
		fmt.Fprintf(p.Stdout, "%3d  %10d  %10d  %-12s  %s\r\n", idx, met, mtu, "connected", name)
	}
	row(loopbackIndex, 50, 4294967295, "Loopback Pseudo-Interface 1")
	for i, n := range g.NICs() {
		row(firstNICIndex+i, 10, 1500, n.Name)
	}
	fmt.Fprint(p.Stdout, "\r\n")
	return 0
}

// netshArgs assigns netsh's tagged (tag=value; a tag may be abbreviated) and positional
// arguments to the parameters named in order. ok is false for an unknown tag.
func netshArgs(args, params []string) (map[string]string, bool) {
	got := map[string]string{}
	next := 0
	for _, arg := range args {
		if tag, val, has := strings.Cut(arg, "="); has {
			tag = strings.ToLower(tag)
			match := ""
			for _, name := range params {
				if name == tag || (len(tag) >= 3 && strings.HasPrefix(name, tag)) {
					match = name
					break
				}
			}
			if match == "" {
				return nil, false
			}
			got[match] = val
			continue
		}
		for next < len(params) && got[params[next]] != "" {
			next++
		}
		if next >= len(params) {
			return nil, false
		}
		got[params[next]] = arg
	}
	return got, true
}

func netshBadParam(p *cmdexe.Process) int {
	fmt.Fprint(p.Stdout, "The parameter is incorrect.\r\n\r\n")
	return 1
}

func (g *Machine) netshSetAddress(b *boot, p *cmdexe.Process, args []string) int {
	v, ok := netshArgs(args, []string{"name", "source", "address", "mask", "gateway", "gwmetric", "type", "subinterface", "store"})
	if !ok || v["name"] == "" {
		return netshBadParam(p)
	}
	var addr netip.Prefix
	switch strings.ToLower(v["source"]) {
	case "dhcp":
	case "static":
		a, err := netip.ParseAddr(v["address"])
		bits := -1
		if pfx, perr := netip.ParsePrefix(v["address"]); perr == nil { // 198.51.100.1/24
			a, err, bits = pfx.Addr(), nil, pfx.Bits()
		} else if m, merr := netip.ParseAddr(v["mask"]); merr == nil && m.Is4() {
			ones, size := net.IPMask(m.AsSlice()).Size()
			if size == 32 {
				bits = ones
			}
		}
		if err != nil || !a.Is4() {
			fmt.Fprintf(p.Stdout, "Invalid address parameter (%s). It should be a valid IPv4 address.\r\n\r\n", v["address"])
			return 1
		}
		if bits < 1 || bits > 32 {
			fmt.Fprintf(p.Stdout, "Invalid mask parameter (%s).\r\n\r\n", v["mask"])
			return 1
		}
		addr = netip.PrefixFrom(a, bits)
	default:
		return netshBadParam(p)
	}
	g.mu.Lock()
	n := g.nicByName(v["name"])
	if n != nil {
		n.Addr = addr
	}
	g.mu.Unlock()
	if n == nil {
		fmt.Fprint(p.Stdout, "The filename, directory name, or volume label syntax is incorrect.\r\n\r\n")
		return 1
	}
	g.syncForwarder(b)
	return 0
}

func (g *Machine) netshSetInterface(b *boot, p *cmdexe.Process, args []string) int {
	v, ok := netshArgs(args, []string{"interface", "forwarding", "advertise", "mtu", "metric", "siteprefixlength",
		"nud", "routerdiscovery", "managedaddress", "otherstateful", "weakhostsend", "weakhostreceive",
		"ignoredefaultroutes", "advertisedefaultroute", "currenthoplimit", "store"})
	if !ok || v["interface"] == "" {
		return netshBadParam(p)
	}
	fwd, set := v["forwarding"], false
	switch strings.ToLower(fwd) {
	case "":
	case "enabled", "disabled":
		set = true
	default:
		return netshBadParam(p)
	}
	g.mu.Lock()
	n := g.nicByName(v["interface"])
	if idx, err := strconv.Atoi(v["interface"]); err == nil && idx >= firstNICIndex && idx-firstNICIndex < len(g.nics) {
		n = g.nics[idx-firstNICIndex]
	}
	loop := v["interface"] == strconv.Itoa(loopbackIndex) || strings.EqualFold(v["interface"], "Loopback Pseudo-Interface 1")
	if n != nil && set {
		n.Forwarding = strings.EqualFold(fwd, "enabled")
	}
	if loop && set {
		g.loopFwd = strings.EqualFold(fwd, "enabled")
	}
	g.mu.Unlock()
	if n == nil && !loop {
		fmt.Fprint(p.Stdout, "Element not found.\r\n\r\n")
		return 1
	}
	fmt.Fprint(p.Stdout, "Ok.\r\n\r\n")
	g.syncForwarder(b)
	return 0
}

// syncForwarder makes boot b's frame forwarder match the first two extra NICs: running
// from the first to the second while both have a Linux interface, an address and
// forwarding on; stopped otherwise.
func (g *Machine) syncForwarder(b *boot) {
	if b == nil {
		return
	}
	g.fwdMu.Lock()
	defer g.fwdMu.Unlock()
	g.mu.Lock()
	var want string
	var in, out NICState
	if len(g.nics) >= 3 {
		in, out = *g.nics[1], *g.nics[2]
		if in.Interface != "" && out.Interface != "" && in.Addr.IsValid() && out.Addr.IsValid() && in.Forwarding && out.Forwarding {
			want = fmt.Sprintf("%s %s %s %s", in.Interface, out.Interface, in.Addr, out.Addr)
		}
	}
	down := g.cur != b
	g.mu.Unlock()
	if down || want == b.fwdKey {
		return
	}
	if b.fwdStop != nil {
		b.fwdStop()
		b.fwdStop, b.fwdKey = nil, ""
	}
	if want == "" {
		return
	}
	stop, err := kernel.StartFrameForwarder(b.kern, in.Interface, out.Interface, in.Addr, out.Addr)
	if err != nil {
		g.logf("forward path %s -> %s not started: %v", in.Interface, out.Interface, err)
		return
	}
	b.fwdStop, b.fwdKey = stop, want
	g.logf("forward path: routing %s (%s) -> %s (%s)", in.Interface, in.Addr, out.Interface, out.Addr)
}

// stopForwarder ends boot b's frame forwarder, if any.
func (g *Machine) stopForwarder(b *boot) {
	g.fwdMu.Lock()
	defer g.fwdMu.Unlock()
	if b.fwdStop != nil {
		b.fwdStop()
		b.fwdStop, b.fwdKey = nil, ""
	}
}
