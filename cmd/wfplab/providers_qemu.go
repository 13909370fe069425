package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/wfplab/wfplab/bench"
	"github.com/wfplab/wfplab/lab"
	"github.com/wfplab/wfplab/lab/contract"
	"github.com/wfplab/wfplab/lab/qemu"
	"github.com/wfplab/wfplab/lab/sim"
	"github.com/wfplab/wfplab/lab/sim/appliance"
	"github.com/wfplab/wfplab/scenarios"
)

// applianceStateDiskMB is the blank disk an appliance keeps what Windows keeps across a
// reboot on (files, registry, services, boot settings, updates): a few hundred kB.
const applianceStateDiskMB = 16

// openQEMU boots the scenario's targets as QEMU VMs: prepared Windows images over
// overlays, or appliances (simulated guests as micro-VMs) built here and cached. Only
// QEMU's boot options tell the two apart; the lab drives both the same way.
func openQEMU(ctx context.Context, a openArgs) (contract.Provider, error) {
	sc := a.sc
	var machines []qemu.Machine
	var errs *multierror.Error
	for _, t := range sc.Targets {
		m := qemu.Machine{
			Name: t.Name, OS: t.OS, Image: t.Image, Kernel: t.Kernel, Initrd: t.Initrd, Append: t.Append,
			MemoryMB: t.MemoryMB, CPUs: t.CPUs, Accel: t.Accel,
			GuestPorts:   qemu.GuestPorts{WinRM: t.WinRMPort},
			ForwardLinks: true,
		}
		if t.Appliance {
			boot, err := buildAppliance(ctx, applianceRequest{target: t.OS, kernelDir: sc.Provider.ApplianceKernel,
				seed: a.seed, hangPoolMB: t.HangPoolMB, logf: a.logf})
			if err != nil {
				errs = multierror.Append(errs, fmt.Errorf("%s: target %s: building its appliance: %w", sc.Source, t.Name, err))
				continue
			}
			m.Kernel, m.Initrd, m.Append = boot.kernel, boot.initrd, boot.append
			m.StateDiskMB = applianceStateDiskMB
			m.Creds = applianceCreds()
		} else {
			creds, err := targetCreds(t)
			if err != nil {
				errs = multierror.Append(errs, fmt.Errorf("%s: target %s: %w", sc.Source, t.Name, err))
				continue
			}
			m.Creds = creds
			// Vista and 7 drive an e1000 and an IDE disk out of the box; virtio needs drivers.
			m.NICModel, m.DiskInterface = "e1000", "ide"
		}
		machines = append(machines, m)
	}
	if err := errs.ErrorOrNil(); err != nil {
		return nil, err
	}
	return qemu.New(qemu.Config{
		RunDir:         a.runDir,
		MemoryBudgetMB: sc.Provider.QEMUMemoryBudgetMB,
		BootTimeout:    sc.Provider.QEMUBootTimeout,
		KeepVMs:        a.keepVMs,
		Logf:           a.logf,
	}, machines...)
}

// targetCreds resolves a real guest's account: the user from UserEnv (vagrant when unset),
// the password from its variable or file.
func targetCreds(t scenarios.TargetSpec) (contract.Credentials, error) {
	user := os.Getenv(t.UserEnv)
	if user == "" {
		user = "vagrant"
	}
	pw, err := lab.ReadPassword(t.PasswordEnv, t.PasswordFile, os.Getenv)
	if err != nil {
		return contract.Credentials{}, err
	}
	return contract.Credentials{User: user, Password: pw}, nil
}

// checkQEMU finds offline what would stop a qemu run: QEMU missing, an image or kernel
// that is not there, a password that cannot be read.
func checkQEMU(sc *scenarios.Scenario) error {
	var errs *multierror.Error
	for _, tool := range []struct{ name, pkg string }{{"qemu-system-x86_64", "qemu-system-x86"}, {"qemu-img", "qemu-utils"}} {
		if err := checkTool(sc, tool.name, tool.pkg); err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	var real []scenarios.TargetSpec
	for _, t := range sc.Targets {
		for _, f := range []struct{ what, path string }{{"image", t.Image}, {"kernel", t.Kernel}, {"initrd", t.Initrd}} {
			if f.path == "" {
				continue
			}
			if _, err := os.Stat(f.path); err != nil {
				errs = multierror.Append(errs, fmt.Errorf("%s: target %s: %s %s: %w", sc.Source, t.Name, f.what, f.path, err))
			}
		}
		if !t.Appliance {
			real = append(real, t)
		}
	}
	if k := sc.Provider.ApplianceKernel; k != "" {
		if _, err := os.Stat(k); err != nil {
			errs = multierror.Append(errs, fmt.Errorf("%s: provider.appliance_kernel %s: %w", sc.Source, k, err))
		}
	}
	if err := checkPasswords(sc, real); err != nil {
		errs = multierror.Append(errs, err)
	}
	return errs.ErrorOrNil()
}

// recordVMFiles records, for the report, where each VM's console log is kept.
func recordVMFiles(store *bench.Store, provider contract.Provider, targets []contract.Target) {
	p, ok := provider.(*qemu.Provider)
	if !ok {
		return
	}
	for _, t := range targets {
		if vm, err := p.VM(t.Name); err == nil && vm.ConsoleLog != "" {
			store.RecordEvent(bench.Event{Target: t.Name, At: time.Now(), Kind: bench.EventFile,
				Message: bench.FileMessage(store, "console log", vm.ConsoleLog)})
		}
	}
}

// reapStaleVMs stops the VMs of earlier runs under resultsRoot whose wfplab is gone (killed
// with -9, say): no qemu-system of a dead run outlives the next run's start.
func reapStaleVMs(resultsRoot string, logf func(string, ...any)) {
	killed, err := qemu.ReapStale(resultsRoot)
	for _, k := range killed {
		logf("stopped a VM left by an earlier run: %s", k)
	}
	if err != nil {
		logf("looking for VMs left by earlier runs: %v", err)
	}
}

// applianceRequest is one appliance a qemu scenario needs.
type applianceRequest struct {
	target     string // catalog OS
	kernelDir  string // provider.appliance_kernel; "": Debian's package, fetched and cached
	seed       int64
	hangPoolMB int
	logf       func(string, ...any)
}

type applianceBoot struct{ kernel, initrd, append string }

// buildAppliance builds (or takes from the cache) the kernel and initramfs of a simulated
// guest whose /init is this very wfplab binary.
func buildAppliance(ctx context.Context, r applianceRequest) (applianceBoot, error) {
	b, err := appliance.Build(ctx, appliance.Options{
		Target: r.target, KernelPath: r.kernelDir, Seed: r.seed, HangPoolMB: uint64(r.hangPoolMB),
		Log: logWriter{r.logf},
	})
	if err != nil {
		return applianceBoot{}, err
	}
	return applianceBoot{kernel: b.Kernel, initrd: b.Initrd, append: b.Append}, nil
}

// applianceCreds is the simulated guest's own account: the simulator's default, a test
// account like Vagrant's, since nothing secret may go on QEMU's command line to set another.
func applianceCreds() contract.Credentials {
	cfg := sim.DefaultConfig()
	return contract.Credentials{User: cfg.User, Password: cfg.Password}
}

// logWriter turns a builder's lines into progress lines.
type logWriter struct{ logf func(string, ...any) }

func (w logWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if line != "" {
			w.logf("%s", line)
		}
	}
	return len(p), nil
}
