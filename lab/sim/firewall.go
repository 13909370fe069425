package sim

import (
	"fmt"
	"strings"

	"github.com/wfplab/wfplab/lab/sim/cmdexe"
)

// Windows Firewall rules as `netsh advfirewall firewall` adds, deletes and shows them. Add
// does not replace a rule of the same name: it adds another, as Windows does, which is why
// scripts delete before they add. Rules persist; the model does not filter traffic by them.

type fwRule struct {
	name, dir, action, protocol, localPort string
	enabled                                bool
}

// winrmRuleName is the predefined rule quickconfig enables for WinRM over HTTP.
const winrmRuleName = "Windows Remote Management (HTTP-In)"

// enableWinRMRuleLocked enables (or adds) the WinRM HTTP rule; true when it changed.
func (g *Machine) enableWinRMRuleLocked() bool {
	for _, r := range g.fw {
		if r.name == winrmRuleName {
			if r.enabled {
				return false
			}
			r.enabled = true
			return true
		}
	}
	port := "5985"
	if g.winrm11 {
		port = "80"
	}
	g.fw = append(g.fw, &fwRule{name: winrmRuleName, dir: "in", action: "allow", protocol: "TCP", localPort: port, enabled: true})
	return true
}

func fwUsage(p *cmdexe.Process, verb string) int {
	fmt.Fprintf(p.Stdout, "\r\nUsage: %s rule name=<string> ...\r\n\r\n", verb)
	return 1
}

// netshFirewall is `netsh advfirewall firewall add|delete|show rule ...`; args start at the verb.
func (g *Machine) netshFirewall(p *cmdexe.Process, args []string) int {
	if len(args) < 2 || !strings.EqualFold(args[1], "rule") {
		fmt.Fprintf(p.Stdout, "The following command was not found: advfirewall firewall %s.\r\n", strings.Join(args, " "))
		return 1
	}
	verb := strings.ToLower(args[0])
	v := map[string]string{}
	for _, a := range args[2:] {
		k, val, ok := strings.Cut(a, "=")
		if !ok {
			return fwUsage(p, verb)
		}
		v[strings.ToLower(k)] = val
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cfg.FirewallStopped {
		fmt.Fprint(p.Stdout, "An error occurred while attempting to contact the Windows Firewall service. Make sure that the service is running and try your request again.\r\n\r\n")
		return 1
	}
	if verb != "show" && !g.elevatedLocked() {
		fmt.Fprint(p.Stdout, "The requested operation requires elevation (Run as administrator).\r\n\r\n")
		return 1
	}
	switch verb {
	case "add":
		r := &fwRule{name: v["name"], dir: strings.ToLower(v["dir"]), action: strings.ToLower(v["action"]),
			protocol: strings.ToUpper(v["protocol"]), localPort: v["localport"], enabled: !strings.EqualFold(v["enable"], "no")}
		if r.protocol == "" {
			r.protocol = "Any"
		}
		if r.localPort == "" {
			r.localPort = "Any"
		}
		if r.name == "" || strings.EqualFold(r.name, "all") || (r.dir != "in" && r.dir != "out") ||
			(r.action != "allow" && r.action != "block" && r.action != "bypass") ||
			(r.protocol != "TCP" && r.protocol != "UDP" && r.protocol != "Any") {
			return fwUsage(p, verb)
		}
		if r.localPort != "Any" && r.protocol == "Any" {
			fmt.Fprint(p.Stdout, "A specified port value is not valid.\r\n\r\n")
			return 1
		}
		g.fw = append(g.fw, r)
		fmt.Fprint(p.Stdout, "Ok.\r\n\r\n")
		return 0
	case "delete", "show":
		if v["name"] == "" {
			return fwUsage(p, verb)
		}
		var keep, hit []*fwRule
		for _, r := range g.fw {
			if (strings.EqualFold(v["name"], "all") || strings.EqualFold(r.name, v["name"])) &&
				(v["dir"] == "" || strings.EqualFold(v["dir"], r.dir)) &&
				(v["protocol"] == "" || strings.EqualFold(v["protocol"], r.protocol)) &&
				(v["localport"] == "" || v["localport"] == r.localPort) {
				hit = append(hit, r)
			} else {
				keep = append(keep, r)
			}
		}
		if len(hit) == 0 {
			fmt.Fprint(p.Stdout, "No rules match the specified criteria.\r\n\r\n")
			return 1
		}
		if verb == "delete" {
			g.fw = keep
			fmt.Fprintf(p.Stdout, "\r\nDeleted %d rule(s).\r\nOk.\r\n\r\n", len(hit))
			return 0
		}
		title := func(s string) string { return strings.ToUpper(s[:1]) + strings.ToLower(s[1:]) }
		for _, r := range hit {
			en := "Yes"
			if !r.enabled {
				en = "No"
			}
			fmt.Fprintf(p.Stdout, "\r\n%-38s%s\r\n%s\r\n", "Rule Name:", r.name, strings.Repeat("-", 70))
			for _, kv := range [][2]string{{"Enabled:", en}, {"Direction:", title(r.dir)}, {"Profiles:", "Domain,Private,Public"},
				{"Grouping:", ""}, {"LocalIP:", "Any"}, {"RemoteIP:", "Any"}, {"Protocol:", r.protocol},
				{"LocalPort:", r.localPort}, {"RemotePort:", "Any"}, {"Edge traversal:", "No"}, {"Action:", title(r.action)}} {
				fmt.Fprintf(p.Stdout, "%-38s%s\r\n", kv[0], kv[1])
			}
		}
		fmt.Fprint(p.Stdout, "Ok.\r\n\r\n")
		return 0
	}
	fmt.Fprintf(p.Stdout, "The following command was not found: advfirewall firewall %s.\r\n", strings.Join(args, " "))
	return 1
}
