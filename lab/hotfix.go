package lab

import (
	"context"
	"fmt"

	"github.com/wfplab/wfplab/lab/contract"
)

// HotfixOutcome says what InstallHotfix found and did.
type HotfixOutcome string

const (
	HotfixInstalled        HotfixOutcome = "installed"
	HotfixAlreadyInstalled HotfixOutcome = "already-installed"
)

// InstallHotfix uploads the MSU as C:\wfplab\<Target.OS.HotfixPackage>, runs wusa, reboots
// when wusa says 3010 (or whenever the fixed netio.sys is not yet in force), restarts the
// driver, and returns the inventory after. Already installed is not an error (the outcome
// says so); not applicable is. Whether netio.sys carries the fix is judged by contract.NetioState,
// within its servicing branch.
func (g *Session) InstallHotfix(ctx context.Context, msu []byte) (HotfixOutcome, contract.Inventory, error) {
	pkg := g.target.OS.HotfixPackage
	if pkg == "" {
		return "", contract.Inventory{}, g.errorf("hotfix: the catalog has no KB979223 package name for %s; set HotfixPackage for it in lab/contract/catalog.go", g.target.OS.Name)
	}
	path := GuestDir + `\` + pkg
	if err := g.Upload(ctx, msu, path); err != nil {
		return "", contract.Inventory{}, err
	}
	line := fmt.Sprintf(fmtWusa, path)
	g.logf("installing %s", pkg)
	res, err := g.Run(ctx, line)
	if err != nil {
		return "", contract.Inventory{}, err
	}
	if wusaRefused(res.Exit) {
		g.logf("wusa refused the remote logon (exit %d): running it as SYSTEM from a scheduled task", res.Exit)
		code, err := g.wusaAsTask(ctx, path)
		if err != nil {
			return "", contract.Inventory{}, err
		}
		if wusaRefused(code) {
			return "", contract.Inventory{}, g.errorf("hotfix: wusa refused %s over WinRM and as SYSTEM from a scheduled task (exit %d); install it on the guest by hand", pkg, code)
		}
		res = Result{Exit: code}
		line = "wusa (scheduled task " + hotfixTask + ")"
	}

	var outcome HotfixOutcome
	reboot := false
	switch res.Exit {
	case 0:
		outcome = HotfixInstalled
	case exitWusaRebootNeeded:
		outcome, reboot = HotfixInstalled, true
	case exitWusaAlready:
		outcome = HotfixAlreadyInstalled
	case exitWusaNotApplicable:
		return "", contract.Inventory{}, g.notApplicable(pkg, res.Exit)
	case exitWusaAmbiguous60:
		if g.target.OS.Version != "6.0" {
			return "", contract.Inventory{}, g.errorf("hotfix: %q failed with exit code 1: %s; look at the guest's setup event log", line, summary(res))
		}
		// Vista/2008 before KB949545 say 1 for both "already installed" and "not
		// applicable": the running netio.sys tells them apart.
		inv, err := g.Inventory(ctx)
		if err != nil {
			return "", contract.Inventory{}, err
		}
		if contract.NetioState(inv.Netio) != contract.Patched {
			return "", contract.Inventory{}, g.errorf("hotfix: wusa answered 1 (on Windows 6.0: already installed or not applicable) and netio.sys is %s (%s), so %s does not apply here; check the package matches the guest's OS and architecture",
				inv.Netio, contract.NetioState(inv.Netio), pkg)
		}
		outcome = HotfixAlreadyInstalled
	case exitWusaMissingFile:
		return "", contract.Inventory{}, g.errorf("hotfix: wusa cannot find %s (exit code 2) although the upload succeeded; check the guest's disk", path)
	default:
		return "", contract.Inventory{}, g.errorf("hotfix: %q failed with exit code %d: %s; look at the guest's setup event log", line, res.Exit, summary(res))
	}

	if !reboot {
		inv, err := g.Inventory(ctx)
		if err != nil {
			return "", contract.Inventory{}, err
		}
		// Installed but not yet in force (an earlier /norestart install, or wusa's 0).
		reboot = contract.NetioState(inv.Netio) != contract.Patched
	}
	if reboot {
		if err := g.Reboot(ctx); err != nil {
			return "", contract.Inventory{}, err
		}
	}
	inv, err := g.Inventory(ctx)
	if err != nil {
		return "", contract.Inventory{}, err
	}
	// The phase after the hotfix measures through the driver: a driver that is gone would
	// make every window there a CLEAN that tested nothing.
	if inv.DrvService == "absent" {
		return "", contract.Inventory{}, g.errorf("hotfix: after the reboot the driver service %s is absent, so nothing would be blocked or measured; install the driver again (Prepare) and rerun", DriverService)
	}
	if inv.DrvService != "running" {
		if err := g.withShell(ctx, func(sh *shell) error { return g.startDriver(ctx, sh) }); err != nil {
			return "", contract.Inventory{}, err
		}
		if inv, err = g.Inventory(ctx); err != nil {
			return "", contract.Inventory{}, err
		}
		if inv.DrvService != "running" {
			return "", contract.Inventory{}, g.errorf("hotfix: after the reboot the driver %s is %s, not running; look at the guest's system event log", DriverService, inv.DrvService)
		}
	}
	if st := contract.NetioState(inv.Netio); st != contract.Patched {
		return "", contract.Inventory{}, g.errorf("hotfix: wusa reported %s, but after a reboot netio.sys is %s (%s), not the fixed %s; check the package is KB979223 for this OS",
			outcome, inv.Netio, st, g.target.OS.NetioFixed)
	}
	g.logf("hotfix %s: netio.sys %s", outcome, inv.Netio)
	return outcome, inv, nil
}

func (g *Session) notApplicable(pkg string, exit int) error {
	return g.errorf("hotfix: %s does not apply to this guest (wusa exit code %d, 0x%08X: not applicable); the target is %s (Windows %s %s): check the package matches the OS version and architecture",
		pkg, exit, uint32(exit), g.target.OS.Name, g.target.OS.Version, g.target.OS.Arch)
}
