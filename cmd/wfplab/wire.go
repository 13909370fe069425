package main

import (
	"context"
	"fmt"
	"io/fs"
	"runtime"
	"runtime/debug"

	"github.com/hashicorp/go-multierror"

	"github.com/wfplab/wfplab/bench"
	"github.com/wfplab/wfplab/guest"
	"github.com/wfplab/wfplab/lab"
	"github.com/wfplab/wfplab/lab/contract"
	"github.com/wfplab/wfplab/scenarios"
	"github.com/wfplab/wfplab/traffic"
)

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
