package lab_test

// vagrant/prepare-guest.cmd run as a user runs it, against simulated guests through WinRM:
// uploaded with the lab's own upload, started with `cmd /c`, its effects read back with the
// commands a person would use to check them.

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wfplab/wfplab/lab"
	"github.com/wfplab/wfplab/lab/contract"
	"github.com/wfplab/wfplab/lab/sim"
)

const prepareGuestPath = lab.GuestDir + `\prepare-guest.cmd`

// prepared is a simulated guest with vagrant/prepare-guest.cmd uploaded to it.
type prepared struct {
	*simLab
	t *testing.T
}

func startPrepared(t *testing.T, osName string, tweak func(*sim.Config)) prepared {
	t.Helper()
	script, err := os.ReadFile("../vagrant/prepare-guest.cmd")
	if err != nil {
		t.Fatal(err)
	}
	s := startSim(t, osName, tweak)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.guest.Upload(ctx, script, prepareGuestPath); err != nil {
		t.Fatal(err)
	}
	return prepared{s, t}
}

func (p prepared) run(line string) lab.Result {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := p.guest.Run(ctx, line)
	if err != nil {
		p.t.Fatalf("%s: %v", line, err)
	}
	return res
}

// want runs a line and checks its exit code and that its stdout holds each string.
func (p prepared) want(line string, exit int, holds ...string) lab.Result {
	p.t.Helper()
	res := p.run(line)
	if res.Exit != exit {
		p.t.Errorf("%s: exit %d, want %d\nstdout %q\nstderr %q", line, res.Exit, exit, res.Stdout, res.Stderr)
	}
	for _, h := range holds {
		if !strings.Contains(res.Stdout, h) {
			p.t.Errorf("%s: stdout lacks %q:\n%s", line, h, res.Stdout)
		}
	}
	return res
}

// rule checks that exactly one firewall rule has the name, with this protocol and port.
func (p prepared) rule(name, protocol, port string) {
	p.t.Helper()
	res := p.want(`netsh advfirewall firewall show rule name="`+name+`"`, 0,
		"Rule Name:                            "+name+"\r\n",
		"Direction:                            In\r\n",
		"Protocol:                             "+protocol+"\r\n",
		"LocalPort:                            "+port+"\r\n",
		"Action:                               Allow\r\n")
	if n := strings.Count(res.Stdout, "Rule Name:"); n != 1 {
		p.t.Errorf("%d rules named %q, want 1:\n%s", n, name, res.Stdout)
	}
}

const (
	latfpKey  = `HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System`
	routerKey = `HKLM\SYSTEM\CurrentControlSet\Services\Tcpip\Parameters`
)

// checkPrepared reads back everything the script sets.
func (p prepared) checkPrepared(winrmPort, streamPort, controlPort string) {
	p.t.Helper()
	p.rule("wfplab WinRM", "TCP", winrmPort)
	p.rule("wfplab stream", "TCP", streamPort)
	p.rule("wfplab control", "UDP", controlPort)
	p.want(`reg query `+latfpKey+` /v LocalAccountTokenFilterPolicy`, 0, "    LocalAccountTokenFilterPolicy    REG_DWORD    0x1\r\n")
	p.want(`reg query `+routerKey+` /v IPEnableRouter`, 0, "    IPEnableRouter    REG_DWORD    0x1\r\n")
	p.want(`winrm get winrm/config`, 0, "\r\n    MaxTimeoutms = 1800000\r\n", "\r\n        AllowUnencrypted = true\r\n",
		"\r\n            Basic = true\r\n", "\r\n        MaxMemoryPerShellMB = 800\r\n")
	p.want(`sc qc WinRM`, 0, "        START_TYPE         : 2   AUTO_START\r\n")
	p.want(`winrm enumerate winrm/config/Listener`, 0, "    Transport = HTTP\r\n")
	p.want(`netsh interface ipv4 show global`, 0, "Group Forwarded Fragments           : enabled\r\n")
	for _, n := range p.prov.Machine(p.target.Name).NICs() {
		if !n.Forwarding {
			p.t.Errorf("adapter %q: forwarding off after the script", n.Name)
		}
	}
}

// checkUntouched: the state of a fresh Windows 7 guest, before the script.
func (p prepared) checkUntouched() {
	p.t.Helper()
	for _, name := range []string{"wfplab WinRM", "wfplab stream", "wfplab control"} {
		p.want(`netsh advfirewall firewall show rule name="`+name+`"`, 1, "No rules match the specified criteria.")
	}
	if res := p.run(`reg query ` + latfpKey + ` /v LocalAccountTokenFilterPolicy`); res.Exit != 1 {
		p.t.Errorf("LocalAccountTokenFilterPolicy is set: %+v", res)
	}
	p.want(`reg query `+routerKey+` /v IPEnableRouter`, 0, "    IPEnableRouter    REG_DWORD    0x0\r\n")
	p.want(`winrm get winrm/config`, 0, "\r\n    MaxTimeoutms = 60000\r\n", "\r\n        MaxMemoryPerShellMB = 150\r\n")
	p.want(`sc qc WinRM`, 0, "        START_TYPE         : 3   DEMAND_START\r\n")
	p.want(`netsh interface ipv4 show global`, 0, "Group Forwarded Fragments           : disabled\r\n")
	for _, n := range p.prov.Machine(p.target.Name).NICs() {
		if n.Forwarding {
			p.t.Errorf("adapter %q: forwarding on before the script", n.Name)
		}
	}
}

// firstQuickconfig is the script's first section on a fresh Windows 7 guest: quickconfig sets
// the service to start automatically and LocalAccountTokenFilterPolicy.
const firstQuickconfig = "== WinRM service and HTTP listener\r\n" +
	"WinRM has been updated to receive requests.\r\nWinRM service type changed successfully.\r\n\r\n" +
	"WinRM has been updated for remote management.\r\n" +
	"Configured LocalAccountTokenFilterPolicy to grant administrative rights remotely to local users.\r\n"

// sections are the lines the script prints after quickconfig's own output.
func sections(winrmPort, streamPort, controlPort string) string {
	return "== WinRM settings wfplab needs\r\n" +
		"== Firewall: WinRM on TCP " + winrmPort + ", traffic on TCP " + streamPort + " and UDP " + controlPort + "\r\n" +
		"== Remote administration with a local account\r\n" +
		"== IP forwarding, for the fragment-forward path\r\n" +
		"\r\n" +
		"prepare-guest: done. Reboot once so that IPEnableRouter takes effect.\r\n"
}

func TestPrepareGuestScript(t *testing.T) {
	t.Parallel()
	t.Run("win7 twice", func(t *testing.T) {
		t.Parallel()
		p := startPrepared(t, "win7-x64", nil)
		p.checkUntouched()
		line := `cmd /c ` + prepareGuestPath + ` 5985 49152 49153`
		first := p.run(line)
		want := firstQuickconfig + sections("5985", "49152", "49153")
		if first.Exit != 0 || first.Stdout != want || first.Stderr != "" {
			t.Fatalf("first run: exit %d\nstdout %q\nwant   %q\nstderr %q", first.Exit, first.Stdout, want, first.Stderr)
		}
		p.checkPrepared("5985", "49152", "49153")
		// Safe to run again: quickconfig has nothing left to do, each rule is there once.
		second := p.run(line)
		want = "== WinRM service and HTTP listener\r\n" +
			"WinRM already is set up to receive requests on this machine.\r\n" +
			"WinRM already is set up for remote management on this machine.\r\n" +
			sections("5985", "49152", "49153")
		if second.Exit != 0 || second.Stdout != want || second.Stderr != "" {
			t.Fatalf("second run: exit %d\nstdout %q\nwant   %q\nstderr %q", second.Exit, second.Stdout, want, second.Stderr)
		}
		p.checkPrepared("5985", "49152", "49153")
	})
	t.Run("vista other ports then defaults", func(t *testing.T) {
		t.Parallel()
		// WinRM 1.1 on port 80, NTLM only: Basic is off until the script turns it on, and
		// quickconfig does not set LocalAccountTokenFilterPolicy there.
		p := startPrepared(t, "vista-sp2-x64", func(c *sim.Config) { c.WinRMAuth = contract.AuthNTLM })
		p.want(`winrm get winrm/config/service/auth`, 0, "\r\n    Basic = false\r\n")
		res := p.run(`cmd /c ` + prepareGuestPath + ` 80 50000 50001`)
		if res.Exit != 0 || !strings.HasSuffix(res.Stdout, sections("80", "50000", "50001")) || res.Stderr != "" {
			t.Fatalf("exit %d\nstdout %q\nstderr %q", res.Exit, res.Stdout, res.Stderr)
		}
		p.checkPrepared("80", "50000", "50001")
		// Without arguments the defaults come back, each rule replaced, not added.
		res = p.run(`cmd /c ` + prepareGuestPath)
		if res.Exit != 0 || !strings.HasSuffix(res.Stdout, sections("5985", "49152", "49153")) || res.Stderr != "" {
			t.Fatalf("defaults: exit %d\nstdout %q\nstderr %q", res.Exit, res.Stdout, res.Stderr)
		}
		p.checkPrepared("5985", "49152", "49153")
	})
	t.Run("not elevated", func(t *testing.T) {
		t.Parallel()
		p := startPrepared(t, "win7-x86", func(c *sim.Config) { c.Unelevated = true })
		res := p.run(`cmd /c ` + prepareGuestPath + ` 5985 49152 49153`)
		wantErr := "prepare-guest: run this from an elevated command prompt (Run as administrator). \r\n"
		if res.Exit != 1 || res.Stdout != "" || res.Stderr != wantErr {
			t.Fatalf("exit %d\nstdout %q\nstderr %q, want %q", res.Exit, res.Stdout, res.Stderr, wantErr)
		}
		p.checkUntouched()
	})
	t.Run("firewall service stopped", func(t *testing.T) {
		t.Parallel()
		// Each failed step is counted by the :fail subroutine; the script goes on and fails at the end.
		p := startPrepared(t, "win7-x86", func(c *sim.Config) { c.FirewallStopped = true })
		res := p.run(`cmd /c ` + prepareGuestPath + ` 5985 49152 49153`)
		wantOut := firstQuickconfig + strings.TrimSuffix(sections("5985", "49152", "49153"), "prepare-guest: done. Reboot once so that IPEnableRouter takes effect.\r\n")
		wantErr := "prepare-guest: FAILED: firewall rule for WinRM \r\n" +
			"prepare-guest: FAILED: firewall rule for the stream port \r\n" +
			"prepare-guest: FAILED: firewall rule for the control port \r\n" +
			"prepare-guest: 3 step(s) failed, see above. \r\n"
		if res.Exit != 1 || res.Stdout != wantOut || res.Stderr != wantErr {
			t.Fatalf("exit %d\nstdout %q\nwant   %q\nstderr %q\nwant   %q", res.Exit, res.Stdout, wantOut, res.Stderr, wantErr)
		}
		p.want(`reg query `+routerKey+` /v IPEnableRouter`, 0, "    IPEnableRouter    REG_DWORD    0x1\r\n")
		p.want(`winrm get winrm/config`, 0, "\r\n    MaxTimeoutms = 1800000\r\n")
	})
	t.Run("quickconfig refused on a Public network", func(t *testing.T) {
		t.Parallel()
		p := startPrepared(t, "win7-x64", func(c *sim.Config) { c.NetworkPublic = true })
		res := p.run(`cmd /c ` + prepareGuestPath + ` 5985 49152 49153`)
		want := "== WinRM service and HTTP listener\r\n" +
			"WinRM has been updated to receive requests.\r\nWinRM service type changed successfully.\r\n\r\n" +
			"prepare-guest: quickconfig failed, creating the listener directly\r\n" +
			sections("5985", "49152", "49153")
		if res.Exit != 0 || res.Stdout != want || !strings.Contains(res.Stderr, "Error number:  -2144108183 0x80338169") ||
			strings.Contains(res.Stderr, "prepare-guest") {
			t.Fatalf("exit %d\nstdout %q\nwant   %q\nstderr %q", res.Exit, res.Stdout, want, res.Stderr)
		}
		p.checkPrepared("5985", "49152", "49153")
	})
}
