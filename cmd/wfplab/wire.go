package main

import (
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/wfplab/wfplab/bench"
	"github.com/wfplab/wfplab/guest"
	"github.com/wfplab/wfplab/lab"
	"github.com/wfplab/wfplab/lab/sim"
	"github.com/wfplab/wfplab/scenarios"
	"github.com/wfplab/wfplab/traffic"
)

// providerFor picks where the scenario's guests come from. This is the one place that
// knows about simulated guests; lab and bench never ask.
func providerFor(sc *scenarios.Scenario, seed int64) (lab.Provider, error) {
	switch sc.Provider.Kind {
	case "sim":
		specs := make([]sim.GuestSpec, 0, len(sc.Targets))
		for _, t := range sc.Targets {
			entry, err := lab.LookupOS(t.OS)
			if err != nil {
				return nil, fmt.Errorf("%s: target %s: %w", sc.Source, t.Name, err)
			}
			specs = append(specs, sim.GuestSpec{Name: t.Name, OS: entry})
		}
		cfg := sim.DefaultConfig()
		cfg.Seed = seed
		cfg.Noise = sc.Provider.SimNoise
		if sc.Provider.SimRebootDown > 0 {
			cfg.RebootDown = sc.Provider.SimRebootDown
		}
		if pw := os.Getenv("WFPLAB_SIM_PASSWORD"); pw != "" {
			cfg.Password = pw
		}
		return sim.NewProvider(specs, cfg), nil
	case "static":
		var sts []lab.StaticTarget
		for _, t := range sc.Targets {
			st, err := staticTarget(t)
			if err != nil {
				return nil, fmt.Errorf("%s: target %s: %w", sc.Source, t.Name, err)
			}
			sts = append(sts, st)
		}
		return lab.NewStatic(sts...), nil
	default:
		return nil, fmt.Errorf("%s: provider %q is not available yet (use sim or static)", sc.Source, sc.Provider.Kind)
	}
}

// hotfixPackages is where the KB979223 MSU files come from: the scenario's hotfix folder,
// or, for simulated guests without one, the simulator's own packages.
func hotfixPackages(sc *scenarios.Scenario) fs.FS {
	if sc.Lab.HotfixDir != "" {
		return os.DirFS(sc.Lab.HotfixDir)
	}
	if sc.Provider.Kind == "sim" {
		return sim.HotfixPackages()
	}
	return nil
}

// hotfixFor reads the KB979223 package a target needs, when a phase installs it.
func hotfixFor(sc *scenarios.Scenario, src fs.FS, os lab.OS) ([]byte, error) {
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
func wireTargets(sc *scenarios.Scenario, targets []lab.Target, log io.Writer) ([]bench.RunTarget, []*lab.Guest, error) {
	var errs *multierror.Error
	var out []bench.RunTarget
	var guests []*lab.Guest
	hotfix := hotfixPackages(sc)
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
		g, err := lab.Dial(t, lab.Options{RebootTimeout: sc.Lab.RebootTimeout, RebootPoll: rebootPoll(sc)})
		if err != nil {
			errs = multierror.Append(errs, err)
			continue
		}
		guests = append(guests, g)
		out = append(out, bench.RunTarget{
			Info:  bench.TargetInfo{Name: t.Name, OS: t.OS.Name, Product: t.OS.Product, Arch: t.OS.Arch},
			Guest: bench.LabGuest{G: g, Tools: tools, Hotfix: msu},
			Traffic: traffic.Target{
				Stream:  t.Traffic.Stream,
				Forward: t.Traffic.Forward,
				Control: t.Traffic.Control,
			},
		})
	}
	return out, guests, errs.ErrorOrNil()
}

// rebootPoll probes a fast-rebooting simulated guest often; real guests every 2 s.
func rebootPoll(sc *scenarios.Scenario) time.Duration {
	if sc.Provider.Kind == "sim" {
		return 250 * time.Millisecond
	}
	return 0
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
func staticTarget(t scenarios.Target) (lab.StaticTarget, error) {
	userEnv := t.UserEnv
	if userEnv == "" {
		userEnv = "WFPLAB_USER"
	}
	user := os.Getenv(userEnv)
	if user == "" {
		user = "vagrant"
	}
	passEnv := t.PasswordEnv
	if passEnv == "" && t.PasswordFile == "" {
		passEnv = "WFPLAB_PASSWORD"
	}
	host, err := netipAddr(t.Host)
	if err != nil {
		return lab.StaticTarget{}, err
	}
	return lab.StaticTarget{
		Name:         t.Name,
		OS:           t.OS,
		Endpoint:     lab.Endpoint{Host: t.Host, Port: t.Port, HTTPS: t.HTTPS, Insecure: t.Insecure},
		User:         user,
		PasswordEnv:  passEnv,
		PasswordFile: t.PasswordFile,
		Traffic: lab.TrafficAddrs{
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
