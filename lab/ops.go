package lab

import (
	"context"
	"fmt"
	"strings"

	"github.com/wfplab/wfplab/lab/agentfmt"
	"github.com/wfplab/wfplab/lab/contract"
)

// Preflight is what the guest says it is: `ver` and %PROCESSOR_ARCHITECTURE%.
type Preflight struct{ Version, Build, Arch string } // "6.1", "7600", "x64"

// Preflight reads `ver` and %PROCESSOR_ARCHITECTURE% and checks them against Target.OS.
func (g *Session) Preflight(ctx context.Context) (Preflight, error) {
	var p Preflight
	err := g.withShell(ctx, func(sh *shell) error {
		res, err := sh.must(ctx, cmdVer)
		if err != nil {
			return err
		}
		if p.Version, p.Build, err = parseVer(res.Stdout); err != nil {
			return g.errorf("preflight: %v; the target must be a Windows guest whose WinRM shell is cmd", err)
		}
		res, err = sh.must(ctx, cmdArch)
		if err != nil {
			return err
		}
		if p.Arch, err = parseArch(res.Stdout); err != nil {
			return g.errorf("preflight: %v", err) // parseArch says what to do
		}
		return nil
	})
	if err != nil {
		return p, err
	}
	decl := g.target.OS
	wantBuild, _, _ := strings.Cut(decl.Build, ".")
	var diffs []string
	if p.Version != decl.Version {
		diffs = append(diffs, fmt.Sprintf("version %s, not %s", p.Version, decl.Version))
	}
	if p.Build != wantBuild {
		diffs = append(diffs, fmt.Sprintf("build %s, not %s", p.Build, wantBuild))
	}
	if p.Arch != decl.Arch {
		diffs = append(diffs, fmt.Sprintf("architecture %s, not %s", p.Arch, decl.Arch))
	}
	if len(diffs) > 0 {
		return p, g.errorf("preflight: the guest is Windows %s build %s %s, but the target claims %s (%s): %s; fix the target's OS or point it at the right guest",
			p.Version, p.Build, p.Arch, decl.Name, decl.Product, strings.Join(diffs, ", "))
	}
	g.logf("preflight ok: Windows %s build %s %s", p.Version, p.Build, p.Arch)
	return p, nil
}

// BootTime returns the guest's LastBootUpTime as the CIM datetime string.
func (g *Session) BootTime(ctx context.Context) (string, error) {
	res, err := g.Run(ctx, cmdBootTime)
	if err != nil {
		return "", err
	}
	if res.Exit != 0 {
		return "", g.errorf("%q failed with exit code %d: %s; the lab needs wmic on the guest (is the WMI service running?)", cmdBootTime, res.Exit, summary(res))
	}
	bt, err := parseBootTime(res.Stdout)
	if err != nil {
		return "", g.errorf("%v; the lab needs wmic on the guest (is the WMI service running?)", err)
	}
	return bt, nil
}

// InstallTools makes C:\wfplab and uploads the agent, the driver and (when present) the cert.
func (g *Session) InstallTools(ctx context.Context, tools Tools) error {
	if len(tools.Agent) == 0 || len(tools.Driver) == 0 {
		return g.errorf("install tools: the agent (%d bytes) and the driver (%d bytes) are both needed; build them with make -C guest",
			len(tools.Agent), len(tools.Driver))
	}
	if _, err := g.runMust(ctx, fmt.Sprintf(fmtMkdir, GuestDir, GuestDir)); err != nil {
		return err
	}
	if err := g.Upload(ctx, tools.Agent, AgentPath); err != nil {
		return err
	}
	if err := g.Upload(ctx, tools.Driver, DriverPath); err != nil {
		return err
	}
	if len(tools.Cert) > 0 {
		if err := g.Upload(ctx, tools.Cert, CertPath); err != nil {
			return err
		}
		g.mu.Lock()
		g.certUploaded = true
		g.mu.Unlock()
	}
	return nil
}

// runMust runs one command in a shell of its own and fails unless it exits with one of ok.
func (g *Session) runMust(ctx context.Context, line string, ok ...int) (Result, error) {
	var res Result
	err := g.withShell(ctx, func(sh *shell) error {
		var err error
		res, err = sh.must(ctx, line, ok...)
		return err
	})
	return res, err
}

// EnsureTestSigning, on x64 only: if the agent's inventory says test signing is off, run
// bcdedit /set testsigning on, add the cert to Root and TrustedPublisher when uploaded, and
// reboot. It checks that test signing is in force after the reboot.
func (g *Session) EnsureTestSigning(ctx context.Context) (rebooted bool, err error) {
	if g.target.OS.Arch != "x64" {
		return false, nil // only x64 enforces kernel-mode signing
	}
	inv, err := g.Inventory(ctx)
	if err != nil {
		return false, err
	}
	if inv.TestSigning {
		return false, nil
	}
	g.mu.Lock()
	withCert := g.certUploaded
	g.mu.Unlock()
	g.logf("test signing is off: turning it on (reboot follows)")
	err = g.withShell(ctx, func(sh *shell) error {
		if _, err := sh.must(ctx, cmdTestSigningOn); err != nil {
			return g.errorf("could not turn test signing on: %w; on a real guest check that the account is an administrator", err)
		}
		if !withCert {
			return nil
		}
		for _, store := range certStores {
			if _, err := sh.must(ctx, fmt.Sprintf(fmtAddStore, store, CertPath)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	if err := g.Reboot(ctx); err != nil {
		return false, err
	}
	inv, err = g.Inventory(ctx)
	if err != nil {
		return true, err
	}
	if !inv.TestSigning {
		return true, g.errorf("test signing is still off after bcdedit and a reboot; check the guest's boot configuration (bcdedit /enum) and that nothing (BitLocker, policy) blocks it")
	}
	return true, nil
}

// InstallDriver creates the service (1073 = exists is fine), writes StreamPort, ControlPort
// (the guest's own, TrafficAddrs.DriverPorts) and ForwardPrefix from Target.Traffic under
// DriverParamsKey, and starts it (1056 = running
// is fine). 577 becomes an error that says to enable test signing and reboot.
func (g *Session) InstallDriver(ctx context.Context) error {
	tr := g.target.Traffic
	if !tr.Stream.IsValid() || !tr.Control.IsValid() || !tr.ForwardPrefix.IsValid() {
		return g.errorf("install driver: the target's traffic addresses are incomplete (stream %v, control %v, forward prefix %v); the provider must set all three",
			tr.Stream, tr.Control, tr.ForwardPrefix)
	}
	stream, control := tr.DriverPorts()
	return g.withShell(ctx, func(sh *shell) error {
		if _, err := sh.must(ctx, cmdCreateService, 0, exitServiceExists); err != nil {
			return err
		}
		for _, line := range []string{
			fmt.Sprintf(fmtRegDword, regStreamPort, stream),
			fmt.Sprintf(fmtRegDword, regControlPort, control),
			fmt.Sprintf(fmtRegSz, regForwardPrefix, tr.ForwardPrefix.Masked()),
		} {
			if _, err := sh.must(ctx, line); err != nil {
				return err
			}
		}
		if err := g.startDriver(ctx, sh); err != nil {
			return err
		}
		g.logf("driver %s running", DriverService)
		return nil
	})
}

// startDriver runs sc start and checks with sc query that the driver runs.
func (g *Session) startDriver(ctx context.Context, sh *shell) error {
	res, err := sh.run(ctx, cmdStartDriver)
	if err != nil {
		return err
	}
	switch res.Exit {
	case 0, exitServiceRunning:
	case exitInvalidImageHash:
		return g.errorf("the driver did not load: Windows rejected its signature (sc start: 577); on x64 test signing must be in force: run EnsureTestSigning (bcdedit /set testsigning on, then reboot), or Prepare, and make sure the driver is test-signed")
	case exitBadExeFormat:
		return g.errorf("the driver did not load: it is not a %s image (sc start: 193); upload the driver built for %s (make -C guest)",
			g.target.OS.Arch, g.target.OS.Arch)
	case exitNoService:
		return g.errorf("the driver service %s does not exist (sc start: 1060); run InstallDriver", DriverService)
	default:
		_, msg, _ := scFailure(res.Stdout + res.Stderr)
		return g.errorf("%q failed with exit code %d (%s); look at the guest's System event log", cmdStartDriver, res.Exit, msg)
	}
	res, err = sh.must(ctx, cmdQueryDriver)
	if err != nil {
		return err
	}
	state, name, err := parseSCState(res.Stdout)
	if err != nil {
		return g.errorf("%v; the lab reads sc's English output: use an English (en-US) guest", err)
	}
	if state != scRunning {
		return g.errorf("the driver was started but sc query says %d %s; look at the guest's System event log", state, name)
	}
	return nil
}

// StopDriver stops the driver service (not started is fine).
func (g *Session) StopDriver(ctx context.Context) error {
	_, err := g.runMust(ctx, cmdStopDriver, 0, exitServiceNotStarted)
	return err
}

// RemoveDriver stops the driver and deletes its service (no service is fine).
func (g *Session) RemoveDriver(ctx context.Context) error {
	return g.withShell(ctx, func(sh *shell) error {
		if _, err := sh.must(ctx, cmdStopDriver, 0, exitServiceNotStarted, exitNoService); err != nil {
			return err
		}
		_, err := sh.must(ctx, cmdDeleteDriver, 0, exitNoService)
		return err
	})
}

// DriverState returns the driver service's STATE as sc query prints it ("RUNNING",
// "STOPPED", ...), or "ABSENT" when the service does not exist.
func (g *Session) DriverState(ctx context.Context) (string, error) {
	res, err := g.runMust(ctx, cmdQueryDriver, 0, exitNoService)
	if err != nil {
		return "", err
	}
	if res.Exit == exitNoService {
		return "ABSENT", nil
	}
	_, name, err := parseSCState(res.Stdout)
	if err != nil {
		return "", g.errorf("%v; the lab reads sc's English output: use an English (en-US) guest", err)
	}
	return name, nil
}

// Inventory runs `wfplab-agent.exe versions`.
func (g *Session) Inventory(ctx context.Context) (contract.Inventory, error) {
	res, err := g.Run(ctx, cmdInventory)
	if err != nil {
		return contract.Inventory{}, err
	}
	var inv *contract.Inventory
	var problems []string
	for _, line := range strings.Split(res.Stdout, "\n") {
		v, err := agentfmt.ParseLine(line)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		switch r := v.(type) {
		case *contract.Inventory:
			if inv == nil {
				inv = r
			}
		case *agentfmt.AgentError:
			problems = append(problems, r.Error())
		}
	}
	if res.Exit != 0 || inv == nil {
		detail := strings.Join(problems, "; ")
		if detail == "" {
			detail = summary(res)
		}
		return contract.Inventory{}, g.errorf("%q (exit code %d) gave no inventory: %s; is the agent uploaded (InstallTools) and built for this OS?",
			cmdInventory, res.Exit, detail)
	}
	return *inv, nil
}

// Counters reads the driver's counters (`counters`); with reset, it reads them and sets
// them to zero (`reset`).
func (g *Session) Counters(ctx context.Context, reset bool) (agentfmt.Counters, error) {
	line := cmdCounters
	if reset {
		line = cmdCountersReset
	}
	res, err := g.runMust(ctx, line)
	if err != nil {
		return agentfmt.Counters{}, err
	}
	return g.countersLine(line, res)
}

// countersLine finds the C1 line of an agent's answer.
func (g *Session) countersLine(line string, res Result) (agentfmt.Counters, error) {
	for _, l := range strings.Split(res.Stdout, "\n") {
		v, err := agentfmt.ParseLine(l)
		if err != nil {
			return agentfmt.Counters{}, g.errorf("%q: %v; the agent does not follow FORMAT.md as this lab reads it: rebuild and upload the agent", line, err)
		}
		if c, ok := v.(*agentfmt.Counters); ok {
			return *c, nil
		}
	}
	return agentfmt.Counters{}, g.errorf("%q printed no C1 line: %s; is the agent uploaded (InstallTools)?", line, summary(res))
}

// SetDriverMode switches the running driver to agentfmt.ModeBlock or ModePermit
// (permit-and-count, for throughput) and returns its counters at the switch. The driver
// starts in block mode at every load, so a reboot ends permit mode.
func (g *Session) SetDriverMode(ctx context.Context, mode string) (agentfmt.Counters, error) {
	if mode != agentfmt.ModeBlock && mode != agentfmt.ModePermit {
		return agentfmt.Counters{}, g.errorf("driver mode %q: use %s or %s", mode, agentfmt.ModeBlock, agentfmt.ModePermit)
	}
	line := fmt.Sprintf(fmtDriverMode, mode)
	res, err := g.runMust(ctx, line, 0, exitModeNotSet)
	if err != nil {
		return agentfmt.Counters{}, err
	}
	c, err := g.countersLine(line, res)
	if err != nil {
		return c, err
	}
	switch {
	case c.Driver.State == "absent":
		return c, g.errorf("%q: the driver is not running (drv=absent); install and start it (Prepare) first", line)
	case res.Exit != 0 || c.Driver.State != "running":
		return c, g.errorf("%q (exit %d): drv=%s; a driver older than IOCTL_WFPLAB_SET_MODE answers error:1: upload the driver from guest/dist and restart it",
			line, res.Exit, c.Driver.State)
	case c.Mode != mode:
		return c, g.errorf("%q: the agent reported mode %q, want %q; rebuild and upload the agent", line, c.Mode, mode)
	}
	return c, nil
}

// Prepare = Preflight, ConfigureForwarding (targets with routed links only),
// EnableFragmentGrouping, InstallTools,
// EnsureTestSigning, InstallDriver, Inventory. Forwarding comes before the test-signing
// reboot, which then puts IPEnableRouter in force too.
func (g *Session) Prepare(ctx context.Context, tools Tools) (contract.Inventory, error) {
	if _, err := g.Preflight(ctx); err != nil {
		return contract.Inventory{}, err
	}
	if err := g.ConfigureForwarding(ctx); err != nil {
		return contract.Inventory{}, err
	}
	if err := g.EnableFragmentGrouping(ctx); err != nil {
		return contract.Inventory{}, err
	}
	if err := g.InstallTools(ctx, tools); err != nil {
		return contract.Inventory{}, err
	}
	if _, err := g.EnsureTestSigning(ctx); err != nil {
		return contract.Inventory{}, err
	}
	if err := g.InstallDriver(ctx); err != nil {
		return contract.Inventory{}, err
	}
	inv, err := g.Inventory(ctx)
	if err != nil {
		return contract.Inventory{}, err
	}
	g.logf("prepared: netio %s (%s), test signing %v, driver %s", inv.Netio, contract.NetioState(inv.Netio), inv.TestSigning, inv.DrvService)
	return inv, nil
}
