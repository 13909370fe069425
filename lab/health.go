package lab

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/wfplab/wfplab/lab/contract"
)

// Command lines of `wfplab check --live` (COMMANDS.md #30-#32).
const (
	cmdNetioVersion = `wmic datafile where name="C:\\Windows\\System32\\drivers\\netio.sys" get Version /value`
	cmdFreeDisk     = `wmic logicaldisk where "DeviceID='C:'" get FreeSpace /value`
	cmdBootConfig   = `bcdedit /enum {current}`
)

// MinFreeDisk is the free space on C: a run needs: the tools and a hotfix package (a few
// MB) with room to spare.
const MinFreeDisk = 64 << 20

// Finding is one answer of a live check: what was asked, what the guest said, and when
// something would stop a run, the problem and the next step.
type Finding struct {
	Check   string // "WinRM", "credentials", "OS", "netio.sys", "test signing", "driver", "free disk"
	Value   string
	Problem string // "" when nothing stops a run
	Next    string
}

// Health asks the guest, without changing it, what a run depends on: WinRM reachable,
// the credentials accepted, OS build and architecture as the target claims, netio.sys's
// version and so KB979223's state (a problem when wantUnpatched and it is fixed), test
// signing, the driver, and free disk space. Once WinRM or the credentials fail, the rest
// is not asked. Every call is bounded by ctx and the session's timeouts.
func (g *Session) Health(ctx context.Context, wantUnpatched bool) []Finding {
	ep := g.target.Endpoint
	addr := net.JoinHostPort(ep.Host, strconv.Itoa(ep.Port))
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return []Finding{{Check: "WinRM", Value: addr, Problem: "no answer: " + err.Error(),
			Next: "start the guest; on it run vagrant\\prepare-guest.cmd (winrm quickconfig, firewall) or fix host/port"}}
	}
	c.Close()
	out := []Finding{{Check: "WinRM", Value: ep.String() + " answers"}}

	p, err := g.Preflight(ctx)
	switch {
	case err != nil && strings.Contains(err.Error(), "HTTP 401"):
		return append(out, Finding{Check: "credentials", Value: "user " + g.target.Creds.User, Problem: "refused (HTTP 401)",
			Next: "check the user and password variables or file, and that WinRM allows " + g.authHint()})
	case err != nil && (strings.Contains(err.Error(), "HTTPS certificate") || strings.Contains(err.Error(), "answers plain HTTP")):
		return append(out, Finding{Check: "HTTPS", Value: ep.String(), Problem: tlsReason(err.Error()),
			Next: "give the PEM file of the CA that signed the guest's certificate as ca_file, or set insecure: true (or https: false for a plain-HTTP listener)"})
	case err != nil && p.Version == "":
		return append(out, Finding{Check: "credentials", Value: "user " + g.target.Creds.User, Problem: err.Error(),
			Next: "check the guest's WinRM service: `ver` must run in its cmd shell"})
	}
	out = append(out, Finding{Check: "credentials", Value: "user " + g.target.Creds.User + " accepted"})
	osf := Finding{Check: "OS", Value: fmt.Sprintf("Windows %s build %s %s", p.Version, p.Build, p.Arch)}
	if err != nil {
		osf.Problem = fmt.Sprintf("the target claims %s (%s)", g.target.OS.Name, g.target.OS.Product)
		osf.Next = "fix the target's os: in the scenario, or point it at the right guest"
	}
	out = append(out, osf)

	out = append(out, g.netioFinding(ctx, wantUnpatched))
	out = append(out, g.testSigningFinding(ctx))
	drv := Finding{Check: "driver"}
	if st, err := g.DriverState(ctx); err != nil {
		drv.Problem, drv.Next = err.Error(), "check the guest's service control manager (sc query "+DriverService+")"
	} else if st == "ABSENT" {
		drv.Value = "not installed (prepare installs it)"
	} else {
		drv.Value = DriverService + " " + strings.ToLower(st)
	}
	out = append(out, drv)
	return append(out, g.diskFinding(ctx))
}

var (
	wmicVersionRE = regexp.MustCompile(`(?m)^Version=(\S+)`)
	wmicFreeRE    = regexp.MustCompile(`(?m)^FreeSpace=(\d+)`)
	testSigningRE = regexp.MustCompile(`(?mi)^testsigning\s+(yes|no)\s*$`)
)

func (g *Session) netioFinding(ctx context.Context, wantUnpatched bool) Finding {
	f := Finding{Check: "netio.sys"}
	res, err := g.Run(ctx, cmdNetioVersion)
	m := wmicVersionRE.FindStringSubmatch(res.Stdout)
	if err != nil || m == nil {
		f.Problem = "version not read: " + errText(err, res)
		f.Next = "check that wmic runs on the guest (the WMI service) and that C:\\Windows\\System32\\drivers\\netio.sys exists"
		return f
	}
	st := contract.NetioState(m[1])
	f.Value = fmt.Sprintf("%s, KB979223 %s", m[1], st)
	switch {
	case st == contract.Unknown:
		f.Problem, f.Next = "a netio.sys build KB979223 does not list", "use a guest of a release in the catalog (docs/windows.md)"
	case st == contract.Patched && wantUnpatched:
		f.Problem = "already patched: phase before would stop with ALREADY_PATCHED"
		f.Next = "revert the guest to an unpatched snapshot or image, or leave phase before out"
	}
	return f
}

func (g *Session) testSigningFinding(ctx context.Context) Finding {
	f := Finding{Check: "test signing"}
	res, err := g.Run(ctx, cmdBootConfig)
	if err != nil || res.Exit != 0 {
		f.Problem = "boot configuration not read: " + errText(err, res)
		f.Next = "the account must be an administrator (elevated over WinRM: LocalAccountTokenFilterPolicy=1)"
		return f
	}
	on := false
	if m := testSigningRE.FindStringSubmatch(res.Stdout); m != nil {
		on = strings.EqualFold(m[1], "yes")
	}
	switch {
	case on:
		f.Value = "on"
	case g.target.OS.Arch == "x64":
		f.Value = "off (prepare turns it on and reboots once)"
	default:
		f.Value = "off (x86 loads the test-signed driver without it)"
	}
	return f
}

func (g *Session) diskFinding(ctx context.Context) Finding {
	f := Finding{Check: "free disk"}
	res, err := g.Run(ctx, cmdFreeDisk)
	m := wmicFreeRE.FindStringSubmatch(res.Stdout)
	if err != nil || m == nil {
		f.Problem, f.Next = "free space not read: "+errText(err, res), "check that wmic runs on the guest (the WMI service)"
		return f
	}
	free, _ := strconv.ParseInt(m[1], 10, 64)
	f.Value = fmt.Sprintf("%d MiB on C:", free>>20)
	if free < MinFreeDisk {
		f.Problem = fmt.Sprintf("below the %d MiB a run needs", MinFreeDisk>>20)
		f.Next = "free space on the guest's C: drive"
	}
	return f
}

func errText(err error, res Result) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("exit %d: %s", res.Exit, summary(res))
}

// tlsReason is the part of a session error that says what is wrong with the TLS handshake.
func tlsReason(msg string) string {
	for _, key := range []string{"the guest's HTTPS certificate", "the guest answers plain HTTP"} {
		if i := strings.Index(msg, key); i >= 0 {
			return msg[i:]
		}
	}
	return msg
}
