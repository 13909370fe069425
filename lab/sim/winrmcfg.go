package sim

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/wfplab/wfplab/lab/contract"
	"github.com/wfplab/wfplab/lab/sim/cmdexe"
	"github.com/wfplab/wfplab/lab/sim/wsman"
)

// The winrm command: System32\winrm.cmd, whose whole text is `@cscript //nologo "%~dpn0.vbs"
// %*` on Windows 7, runs winrm.vbs under cscript. The model keeps the WinRM configuration
// (the properties below, not every one Windows has), its listeners, and answers
// quickconfig, get, set, create and enumerate in winrm.vbs's layout (docs/windows.md, "What
// vagrant/prepare-guest.cmd runs"). The WinRM server takes its auth schemes from this
// configuration at each boot.

const winrmCmdText = "@cscript //nologo \"%~dpn0.vbs\" %*\r\n"

// winrmNode is one resource of the configuration: properties in winrm's order, then children.
type winrmNode struct {
	name     string
	props    []winrmProp
	children []*winrmNode
}

type winrmProp struct {
	name, value string
	kind        byte // 'n' number, 'b' true/false, 's' text (not settable in the model)
}

// winrmConfig is the guest's WinRM configuration.
type winrmConfig struct {
	root      *winrmNode
	listeners []winrmListener
}

type winrmListener struct {
	address, transport string
	port               int
}

// newWinRMConfig is the configuration of a guest the lab reaches as cfg says: Windows'
// defaults, with a listener on HTTP, unencrypted traffic allowed (the simulated WinRM serves
// plain HTTP) and Basic as the guest accepts it.
func newWinRMConfig(cfg Config, winrm11 bool) winrmConfig {
	httpPort, httpsPort := 5985, 5986
	if winrm11 {
		httpPort, httpsPort = 80, 443
	}
	b := func(v bool) string { return strconv.FormatBool(v) }
	n := func(name, v string) winrmProp { return winrmProp{name, v, 'n'} }
	t := func(name, v string) winrmProp { return winrmProp{name, v, 's'} }
	bo := func(name string, v bool) winrmProp { return winrmProp{name, b(v), 'b'} }
	root := &winrmNode{name: "Config", props: []winrmProp{
		n("MaxEnvelopeSizekb", "150"), n("MaxTimeoutms", "60000"), n("MaxBatchItems", "32000"), n("MaxProviderRequests", "4294967295"),
	}, children: []*winrmNode{
		{name: "Service", props: []winrmProp{
			n("MaxConcurrentOperations", "4294967295"), n("MaxConcurrentOperationsPerUser", "15"),
			n("EnumerationTimeoutms", "60000"), n("MaxConnections", "25"), n("MaxPacketRetrievalTimeSeconds", "120"),
			bo("AllowUnencrypted", true),
		}, children: []*winrmNode{
			{name: "Auth", props: []winrmProp{
				bo("Basic", cfg.WinRMAuth != contract.AuthNTLM), bo("Kerberos", true), bo("Negotiate", cfg.WinRMAuth != contract.AuthBasic),
				bo("Certificate", false), bo("CredSSP", false), t("CbtHardeningLevel", "Relaxed"),
			}},
			{name: "DefaultPorts", props: []winrmProp{n("HTTP", strconv.Itoa(httpPort)), n("HTTPS", strconv.Itoa(httpsPort))}},
		}},
		{name: "Winrs", props: []winrmProp{
			bo("AllowRemoteShellAccess", true), n("IdleTimeout", "180000"), n("MaxConcurrentUsers", "5"),
			n("MaxShellRunTime", "2147483647"), n("MaxProcessesPerShell", "15"), n("MaxMemoryPerShellMB", "150"), n("MaxShellsPerUser", "5"),
		}},
	}}
	proto := "HTTP"
	if cfg.HTTPS {
		proto, httpPort = "HTTPS", httpsPort
	}
	return winrmConfig{root: root, listeners: []winrmListener{{address: "*", transport: proto, port: httpPort}}}
}

// node finds the resource of a URI: winrm/config[/service[/auth]] and the like.
func (c *winrmConfig) node(uri string) *winrmNode {
	parts := strings.Split(strings.Trim(strings.ToLower(uri), "/"), "/")
	if len(parts) < 2 || parts[0] != "winrm" || parts[1] != "config" {
		return nil
	}
	n := c.root
	for _, p := range parts[2:] {
		var next *winrmNode
		for _, ch := range n.children {
			if strings.ToLower(ch.name) == p {
				next = ch
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	return n
}

// prop reads a property by its path from the root ("Service/Auth/Basic").
func (c *winrmConfig) prop(path string) string {
	i := strings.LastIndexByte(path, '/')
	n := c.root
	if i >= 0 {
		n = c.node("winrm/config/" + path[:i])
	}
	if n == nil {
		return ""
	}
	for _, p := range n.props {
		if strings.EqualFold(p.name, path[i+1:]) {
			return p.value
		}
	}
	return ""
}

// authSchemes are the schemes the WinRM server accepts under this configuration.
func (c *winrmConfig) authSchemes() wsman.AuthSchemes {
	var a wsman.AuthSchemes
	if c.prop("Service/Auth/Basic") == "true" {
		a |= wsman.AuthBasic
	}
	if c.prop("Service/Auth/Negotiate") == "true" {
		a |= wsman.AuthNegotiate
	}
	if a == 0 { // winrm refuses to turn every scheme off; keep the server answering 401
		a = wsman.AuthNegotiate
	}
	return a
}

// walk calls fn with each property and its path below the root ("Service/Auth/Basic").
func (n *winrmNode) walk(prefix string, fn func(path string, p *winrmProp)) {
	for i := range n.props {
		fn(prefix+n.props[i].name, &n.props[i])
	}
	for _, ch := range n.children {
		ch.walk(prefix+ch.name+"/", fn)
	}
}

func (n *winrmNode) write(w io.Writer, indent string, deep bool) {
	fmt.Fprintf(w, "%s%s\r\n", indent, n.name)
	for _, p := range n.props {
		fmt.Fprintf(w, "%s    %s = %s\r\n", indent, p.name, p.value)
	}
	if deep {
		for _, ch := range n.children {
			ch.write(w, indent+"    ", true)
		}
	}
}

// cscript runs a script file; the model knows only winrm.vbs.
func (g *Machine) cscript(ctx context.Context, b *boot, p *cmdexe.Process) int {
	args := p.Args
	logo := true
	for len(args) > 0 && strings.HasPrefix(args[0], "//") {
		if strings.EqualFold(args[0], "//nologo") {
			logo = false
		}
		args = args[1:]
	}
	if logo {
		fmt.Fprint(p.Stdout, "Microsoft (R) Windows Script Host Version 5.8\r\nCopyright (C) Microsoft Corporation. All rights reserved.\r\n\r\n")
	}
	if len(args) == 0 {
		fmt.Fprint(p.Stdout, "Usage: CScript scriptname.extension [option...] [arguments...]\r\n")
		return 0
	}
	script, err := cmdexe.Abs(p.Cwd, args[0])
	if err == nil {
		_, err = g.fs.Stat(script)
	}
	if err != nil {
		fmt.Fprintf(p.Stdout, "Input Error: Can not find script file \"%s\".\r\n", args[0])
		return 1
	}
	if !strings.EqualFold(script, sys32+`\winrm.vbs`) {
		fmt.Fprintf(p.Stderr, "wfplab simulated guest: cscript runs only %s\\winrm.vbs in the model, not %s.\r\n", sys32, script)
		return 1
	}
	return g.winrmVBS(b, p, args[1:])
}

// winrmFault prints a WSManFault as winrm.vbs does and fails.
func winrmFault(p *cmdexe.Process, hr uint32, msg string) int {
	fmt.Fprintf(p.Stderr, "WSManFault\r\n    Message = %s\r\n\r\nError number:  %d 0x%X\r\n%s\r\n", msg, int32(hr), hr, msg)
	return 1
}

const hrAccessDenied = 0x80070005

func (g *Machine) winrmVBS(b *boot, p *cmdexe.Process, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(p.Stdout, "Windows Remote Management Command Line Tool\r\n\r\nWinrm.vbs is the command-line tool for Windows Remote Management.\r\n")
		return 0
	}
	op := strings.ToLower(args[0])
	switch op {
	case "quickconfig", "qc":
		return g.winrmQuickconfig(b, p)
	case "get", "g", "set", "s", "create", "c", "enumerate", "e":
	default:
		fmt.Fprintf(p.Stderr, "wfplab simulated guest: winrm %s is not modelled (quickconfig, get, set, create, enumerate are).\r\n", args[0])
		return 1
	}
	if len(args) < 2 {
		fmt.Fprint(p.Stderr, "Error: Invalid use of command line. Type \"winrm -?\" for help.\r\n")
		return 1
	}
	uri, rest := args[1], args[2:]
	g.mu.Lock()
	defer g.mu.Unlock()
	if op[0] != 'g' && op[0] != 'e' && !g.elevatedLocked() {
		return winrmFault(p, hrAccessDenied, "Access is denied.")
	}
	if res, _, _ := strings.Cut(strings.ToLower(uri), "?"); res == "winrm/config/listener" {
		return g.winrmListenerOp(p, op[0], uri)
	}
	n := g.wcfg.node(uri)
	if n == nil {
		fmt.Fprintf(p.Stderr, "wfplab simulated guest: winrm: the resource %s is not modelled (winrm/config, its service, service/auth, winrs and listener are).\r\n", uri)
		return 1
	}
	switch op[0] {
	case 'g', 'e':
		n.write(p.Stdout, "", true)
		return 0
	}
	if op[0] == 'c' {
		return winrmFault(p, 0x80070057, "The parameter is incorrect.")
	}
	if len(rest) != 1 {
		fmt.Fprint(p.Stderr, "Error: Invalid use of command line. Type \"winrm set -?\" for help.\r\n")
		return 1
	}
	vals, ok := parseWinRMHash(rest[0])
	if !ok {
		fmt.Fprintf(p.Stderr, "Error: Invalid use of command line. Type \"winrm set -?\" for help.\r\n")
		return 1
	}
	for _, kv := range vals {
		i := -1
		for j, pr := range n.props {
			if strings.EqualFold(pr.name, kv[0]) {
				i = j
			}
		}
		switch {
		case i < 0:
			fmt.Fprintf(p.Stderr, "wfplab simulated guest: winrm: %s has no property %s in the model.\r\n", uri, kv[0])
			return 1
		case n.props[i].kind == 'n':
			if _, err := strconv.ParseUint(kv[1], 10, 32); err != nil {
				return winrmFault(p, 0x80070057, "The parameter is incorrect.")
			}
		case n.props[i].kind == 'b':
			v := strings.ToLower(kv[1])
			if v != "true" && v != "false" {
				return winrmFault(p, 0x80070057, "The parameter is incorrect.")
			}
			kv[1] = v
		default:
			fmt.Fprintf(p.Stderr, "wfplab simulated guest: winrm: setting %s is not modelled.\r\n", n.props[i].name)
			return 1
		}
	}
	for _, kv := range vals {
		for j := range n.props {
			if strings.EqualFold(n.props[j].name, kv[0]) {
				n.props[j].value = kv[1]
			}
		}
	}
	n.write(p.Stdout, "", false)
	return 0
}

// parseWinRMHash reads @{Name="value";Name2="value2"} (quotes optional: cscript drops them).
func parseWinRMHash(s string) ([][2]string, bool) {
	if !strings.HasPrefix(s, "@{") || !strings.HasSuffix(s, "}") {
		return nil, false
	}
	var out [][2]string
	for _, part := range strings.Split(s[2:len(s)-1], ";") {
		k, v, ok := strings.Cut(part, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, false
		}
		out = append(out, [2]string{k, strings.Trim(strings.TrimSpace(v), `"`)})
	}
	return out, len(out) > 0
}

// winrmListenerOp is enumerate, get or create of winrm/config/Listener[?Address=*+Transport=HTTP];
// g.mu is held.
func (g *Machine) winrmListenerOp(p *cmdexe.Process, op byte, uri string) int {
	sel := map[string]string{}
	if _, q, ok := strings.Cut(uri, "?"); ok {
		for _, kv := range strings.Split(q, "+") {
			k, v, _ := strings.Cut(kv, "=")
			sel[strings.ToLower(k)] = v
		}
	}
	write := func(l winrmListener) {
		fmt.Fprintf(p.Stdout, "Listener\r\n    Address = %s\r\n    Transport = %s\r\n    Port = %d\r\n    Hostname\r\n    Enabled = true\r\n    URLPrefix = wsman\r\n    CertificateThumbprint\r\n    ListeningOn = %s\r\n\r\n",
			l.address, l.transport, l.port, g.host)
	}
	switch op {
	case 'e':
		for _, l := range g.wcfg.listeners {
			write(l)
		}
		return 0
	case 'g', 'c':
		addr, tr := sel["address"], strings.ToUpper(sel["transport"])
		if addr == "" || (tr != "HTTP" && tr != "HTTPS") {
			fmt.Fprintf(p.Stderr, "wfplab simulated guest: winrm: name the listener as %s?Address=*+Transport=HTTP (its selectors are not modelled otherwise).\r\n", uri[:strings.IndexByte(uri+"?", '?')])
			return 1
		}
		for _, l := range g.wcfg.listeners {
			if l.address == addr && l.transport == tr {
				if op == 'g' {
					write(l)
					return 0
				}
				return winrmFault(p, 0x800700B7, "Cannot create a file when that file already exists.")
			}
		}
		if op == 'g' {
			fmt.Fprintf(p.Stderr, "wfplab simulated guest: winrm: there is no listener for Address=%s, Transport=%s (winrm's fault text for this is not modelled).\r\n", addr, tr)
			return 1
		}
		if tr == "HTTPS" {
			fmt.Fprint(p.Stderr, "wfplab simulated guest: winrm: an HTTPS listener needs a certificate; creating one is not modelled.\r\n")
			return 1
		}
		port, _ := strconv.Atoi(g.wcfg.prop("Service/DefaultPorts/HTTP"))
		g.wcfg.listeners = append(g.wcfg.listeners, winrmListener{address: addr, transport: tr, port: port})
		fmt.Fprintf(p.Stdout, "ResourceCreated\r\n    Address = http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous\r\n    ReferenceParameters\r\n        ResourceURI = http://schemas.microsoft.com/wbem/wsman/1/config/listener\r\n        SelectorSet\r\n            Selector: Address = %s, Transport = %s\r\n\r\n", addr, tr)
		return 0
	}
	fmt.Fprint(p.Stderr, "wfplab simulated guest: winrm: only get, create and enumerate of listeners are modelled.\r\n")
	return 1
}

// winrmQuickconfig is `winrm quickconfig -q`: the service started and set to start
// automatically, then a listener on HTTP, the firewall exception and (WinRM 2.0)
// LocalAccountTokenFilterPolicy. The firewall step fails while a network is Public.
func (g *Machine) winrmQuickconfig(b *boot, p *cmdexe.Process) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.elevatedLocked() {
		return winrmFault(p, hrAccessDenied, "Access is denied.")
	}
	svc := g.svcs["winrm"]
	var done []string
	if svc != nil && svc.start != startAuto {
		svc.start = startAuto
		g.writeServiceKey(svc)
		done = append(done, "WinRM service type changed successfully.")
	}
	if !b.started["winrm"] {
		b.started["winrm"] = true
		done = append(done, "WinRM service started.")
	}
	if len(done) > 0 {
		fmt.Fprintf(p.Stdout, "WinRM has been updated to receive requests.\r\n%s\r\n\r\n", strings.Join(done, "\r\n"))
	} else {
		fmt.Fprint(p.Stdout, "WinRM already is set up to receive requests on this machine.\r\n")
	}
	if g.cfg.NetworkPublic {
		msg := "WinRM firewall exception will not work since one of the network connection types on this machine is set to Public. Change the network connection type to either Domain or Private and try again."
		fmt.Fprintf(p.Stderr, "WSManFault\r\n    Message\r\n        ProviderFault\r\n            WSManFault\r\n                Message = %s\r\n\r\nError number:  -2144108183 0x80338169\r\n%s\r\n", msg, msg)
		return 1
	}
	done = nil
	has := false
	for _, l := range g.wcfg.listeners {
		has = has || (l.address == "*" && l.transport == "HTTP")
	}
	if !has {
		port, _ := strconv.Atoi(g.wcfg.prop("Service/DefaultPorts/HTTP"))
		g.wcfg.listeners = append(g.wcfg.listeners, winrmListener{address: "*", transport: "HTTP", port: port})
		done = append(done, "Created a WinRM listener on HTTP://* to accept WS-Man requests to any IP on this machine.")
	}
	if g.enableWinRMRuleLocked() {
		done = append(done, "WinRM firewall exception enabled.")
	}
	latfp := `HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System`
	if v, ok := g.reg.dword(latfp, "LocalAccountTokenFilterPolicy"); !g.winrm11 && (!ok || v != 1) {
		g.reg.set(latfp, "LocalAccountTokenFilterPolicy", regDWORD, uint32(1))
		done = append(done, "Configured LocalAccountTokenFilterPolicy to grant administrative rights remotely to local users.")
	}
	if len(done) > 0 {
		fmt.Fprintf(p.Stdout, "WinRM has been updated for remote management.\r\n%s\r\n", strings.Join(done, "\r\n"))
	} else {
		fmt.Fprint(p.Stdout, "WinRM already is set up for remote management on this machine.\r\n")
	}
	return 0
}
