package main

import (
	"context"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/wfplab/wfplab/bench"
	"github.com/wfplab/wfplab/guest"
	"github.com/wfplab/wfplab/lab"
	"github.com/wfplab/wfplab/lab/contract"
	"github.com/wfplab/wfplab/lab/sim"
	"github.com/wfplab/wfplab/scenarios"
	"github.com/wfplab/wfplab/traffic"
)

// providerKind is what the CLI knows of one kind of provider: how to open it from a
// scenario, where its KB979223 packages come from when the scenario names no folder, and
// how often a rebooting guest is probed. This table is the one place that knows the kinds;
// lab and bench never ask.
type providerKind struct {
	open func(sc *scenarios.Scenario, seed int64) (contract.Provider, error)
	// hotfix is the packages' source when lab.hotfix_dir is not set; nil: none.
	hotfix func() fs.FS
	// rebootPoll is the wait between probes of a rebooting guest; 0: lab's default.
	rebootPoll time.Duration
	// check finds, offline, what would stop a run of this kind (preflight); nil: nothing.
	check func(sc *scenarios.Scenario) error
}

var providerKinds = map[string]providerKind{
	// Simulated guests reboot in well under a second: probe them often.
	scenarios.ProviderSim:    {open: openSim, hotfix: sim.HotfixPackages, rebootPoll: 250 * time.Millisecond},
	scenarios.ProviderStatic: {open: openStatic, check: checkStatic},
}

// providerFor opens the provider the scenario names.
func providerFor(sc *scenarios.Scenario, seed int64) (contract.Provider, providerKind, error) {
	kind, ok := providerKinds[sc.Provider.Kind]
	if !ok {
		return nil, providerKind{}, fmt.Errorf("%s: provider %q is not available yet (use %s)", sc.Source, sc.Provider.Kind, availableProviders())
	}
	p, err := kind.open(sc, seed)
	return p, kind, err
}

func availableProviders() string {
	names := slices.Sorted(maps.Keys(providerKinds))
	return strings.Join(names, " or ")
}

func openSim(sc *scenarios.Scenario, seed int64) (contract.Provider, error) {
	specs := make([]sim.MachineSpec, 0, len(sc.Targets))
	for _, t := range sc.Targets {
		entry, err := contract.LookupOS(t.OS)
		if err != nil {
			return nil, fmt.Errorf("%s: target %s: %w", sc.Source, t.Name, err)
		}
		specs = append(specs, sim.MachineSpec{Name: t.Name, OS: entry})
	}
	cfg := sim.DefaultConfig()
	cfg.Seed = seed
	cfg.Noise = sc.Provider.SimNoise
	if sc.Provider.SimRebootDown > 0 {
		cfg.RebootDown = sc.Provider.SimRebootDown
	}
	if pw := os.Getenv(sim.PasswordEnv); pw != "" {
		cfg.Password = pw
	}
	return sim.NewProvider(specs, cfg), nil
}

func openStatic(sc *scenarios.Scenario, _ int64) (contract.Provider, error) {
	var sts []lab.StaticTarget
	for _, t := range sc.Targets {
		st, err := staticTarget(t)
		if err != nil {
			return nil, fmt.Errorf("%s: target %s: %w", sc.Source, t.Name, err)
		}
		sts = append(sts, st)
	}
	return lab.NewStatic(sts...), nil
}

// hotfixPackages is where the KB979223 MSU files come from: the scenario's hotfix folder,
// or the provider's own packages (the simulator's) when it has some.
func hotfixPackages(sc *scenarios.Scenario, kind providerKind) fs.FS {
	if sc.Lab.HotfixDir != "" {
		return os.DirFS(sc.Lab.HotfixDir)
	}
	if kind.hotfix != nil {
		return kind.hotfix()
	}
	return nil
}

// hotfixFor reads the KB979223 package a target needs, when a phase installs it.
func hotfixFor(sc *scenarios.Scenario, src fs.FS, os contract.OS) ([]byte, error) {
	needed := false
	for _, p := range sc.Phases {
		needed = needed || p.InstallHotfix
	}
	if !needed {
		return nil, nil
	}
	if src == nil {
		return nil, fmt.Errorf("no hotfix folder: set lab.hotfix_dir in the scenario to a folder holding %s", os.HotfixPackage)
	}
	msu, err := fs.ReadFile(src, os.HotfixPackage)
	if err != nil {
		return nil, fmt.Errorf("hotfix package %s: %w (download it from KB979223 into lab.hotfix_dir)", os.HotfixPackage, err)
	}
	return msu, nil
}

// wireTargets dials every target that came up and pairs it with its tools.
func wireTargets(sc *scenarios.Scenario, kind providerKind, provider contract.Provider, targets []contract.Target, logf func(string, ...any)) ([]bench.RunTarget, []*lab.Session, error) {
	var errs *multierror.Error
	var out []bench.RunTarget
	var guests []*lab.Session
	hotfix := hotfixPackages(sc, kind)
	for _, t := range targets {
		tools, err := guestTools(t.OS.Arch)
		if err != nil {
			errs = multierror.Append(errs, fmt.Errorf("%s: %w", t.Name, err))
			continue
		}
		msu, err := hotfixFor(sc, hotfix, t.OS)
		if err != nil {
			errs = multierror.Append(errs, fmt.Errorf("%s: %w", t.Name, err))
			continue
		}
		g, err := lab.Dial(t, lab.Options{RebootTimeout: sc.Lab.RebootTimeout, RebootPoll: kind.rebootPoll, Logf: logf})
		if err != nil {
			errs = multierror.Append(errs, err)
			continue
		}
		guests = append(guests, g)
		rt := bench.RunTarget{
			Info:    bench.TargetInfo{Name: t.Name, OS: t.OS.Name, Product: t.OS.Product, Arch: t.OS.Arch},
			Guest:   LabGuest{G: g, Tools: tools, Hotfix: msu},
			Traffic: trafficTarget(t.Traffic),
		}
		if r, ok := provider.(contract.Recoverer); ok {
			name := t.Name
			rt.Recover = func(ctx context.Context) (contract.Evidence, error) { return r.Recover(ctx, name) }
		}
		out = append(out, rt)
	}
	return out, guests, errs.ErrorOrNil()
}

// guestTools returns the signed guest binaries for an architecture.
func guestTools(arch string) (lab.Tools, error) {
	a, d, c, err := guest.Tools(arch)
	if err != nil {
		return lab.Tools{}, err
	}
	return lab.Tools{Agent: a, Driver: d, Cert: c}, nil
}

func toolVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		v := bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += "+" + s.Value[:12]
			}
		}
		if v != "" {
			return v
		}
	}
	return "(devel)"
}

func goVersion() string { return runtime.Version() }

// staticTarget turns a scenario's static target into the lab's form. The user name comes
// from UserEnv (default WFPLAB_USER, then "vagrant"); the password never leaves its source.
func staticTarget(t scenarios.TargetSpec) (lab.StaticTarget, error) {
	userEnv := t.UserEnv
	if userEnv == "" {
		userEnv = scenarios.DefaultUserEnv
	}
	user := os.Getenv(userEnv)
	if user == "" {
		user = "vagrant"
	}
	passEnv := t.PasswordEnv
	if passEnv == "" && t.PasswordFile == "" {
		passEnv = scenarios.DefaultPasswordEnv
	}
	host, err := netipAddr(t.Host)
	if err != nil {
		return lab.StaticTarget{}, err
	}
	return lab.StaticTarget{
		Name:         t.Name,
		OS:           t.OS,
		Endpoint:     contract.Endpoint{Host: t.Host, Port: t.Port, HTTPS: t.HTTPS, Insecure: t.Insecure},
		User:         user,
		PasswordEnv:  passEnv,
		PasswordFile: t.PasswordFile,
		Traffic: contract.TrafficAddrs{
			Stream:        netip.AddrPortFrom(host, uint16(t.StreamPort)),
			Forward:       t.ForwardDest,
			ForwardPrefix: t.ForwardPrefix,
			Control:       netip.AddrPortFrom(host, uint16(t.ControlPort)),
		},
	}, nil
}

// netipAddr resolves a static target's host to the address traffic is sent to.
func netipAddr(host string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return a, nil
	}
	addrs, err := net.LookupHost(host)
	if err != nil || len(addrs) == 0 {
		return netip.Addr{}, fmt.Errorf("host %q does not resolve: %v", host, err)
	}
	return netip.ParseAddr(addrs[0])
}

// trafficTarget is where a target's traffic goes, its routed links (if the provider gave
// any) included.
func trafficTarget(a contract.TrafficAddrs) traffic.Addrs {
	return traffic.Addrs{
		Stream:     a.Stream,
		Forward:    a.Forward,
		Control:    a.Control,
		ForwardIn:  frameLink(a.ForwardIn),
		ForwardOut: frameLink(a.ForwardOut),
	}
}

func frameLink(l *contract.FrameLink) *traffic.Link {
	if l == nil {
		return nil
	}
	return &traffic.Link{GuestSock: l.GuestSock, HostSock: l.HostSock, GuestMAC: l.GuestMAC, HostMAC: l.HostMAC,
		GuestIP: l.GuestIP, HostIP: l.HostIP}
}
