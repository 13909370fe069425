package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/wfplab/wfplab/lab"
	"github.com/wfplab/wfplab/lab/contract"
	"github.com/wfplab/wfplab/lab/sim"
	"github.com/wfplab/wfplab/scenarios"
)

// providerKind is what the CLI knows of one kind of provider: how to open it from a
// scenario, where its KB979223 packages come from when the scenario names no folder, and
// how often a rebooting guest is probed. This table is the one place that knows the kinds;
// lab and bench never ask.
type providerKind struct {
	open func(ctx context.Context, a openArgs) (contract.Provider, error)
	// hotfix is the packages' source when lab.hotfix_dir is not set; nil or nil FS: none.
	hotfix func(sc *scenarios.Scenario) fs.FS
	// rebootPoll is the wait between probes of a rebooting guest; 0: lab's default.
	rebootPoll time.Duration
	// check finds, offline, what would stop a run of this kind (preflight); nil: nothing.
	check func(sc *scenarios.Scenario) error
}

// openArgs is what opening a provider may need besides the scenario.
type openArgs struct {
	sc      *scenarios.Scenario
	seed    int64
	runDir  string // results/<run-id>
	keepVMs bool
	logf    func(format string, args ...any)
}

var providerKinds = map[string]providerKind{
	// Simulated guests reboot in well under a second: probe them often.
	scenarios.ProviderSim:    {open: openSim, hotfix: simHotfixes, rebootPoll: 250 * time.Millisecond},
	scenarios.ProviderStatic: {open: openStatic, check: checkStatic},
	// Appliances and Windows images alike: the appliance packages are the simulator's.
	scenarios.ProviderQEMU: {open: openQEMU, check: checkQEMU, hotfix: applianceHotfixes, rebootPoll: time.Second},
	// Real guests (or the fake vagrant's simulated ones): packages only from lab.hotfix_dir.
	scenarios.ProviderVagrant: {open: openVagrant, check: checkVagrant, rebootPoll: time.Second},
}

// providerFor opens the provider the scenario names.
func providerFor(ctx context.Context, a openArgs) (contract.Provider, providerKind, error) {
	kind, ok := providerKinds[a.sc.Provider.Kind]
	if !ok {
		return nil, providerKind{}, fmt.Errorf("%s: provider %q is not available yet (use %s)", a.sc.Source, a.sc.Provider.Kind, availableProviders())
	}
	p, err := kind.open(ctx, a)
	return p, kind, err
}

func availableProviders() string {
	names := slices.Sorted(maps.Keys(providerKinds))
	return strings.Join(names, " or ")
}

func openSim(_ context.Context, a openArgs) (contract.Provider, error) {
	sc, seed := a.sc, a.seed
	specs := make([]sim.MachineSpec, 0, len(sc.Targets))
	for _, t := range sc.Targets {
		entry, err := contract.LookupOS(t.OS)
		if err != nil {
			return nil, fmt.Errorf("%s: target %s: %w", sc.Source, t.Name, err)
		}
		specs = append(specs, sim.MachineSpec{Name: t.Name, OS: entry, Faults: t.Faults})
	}
	cfg := sim.DefaultConfig()
	cfg.Seed = seed
	cfg.Noise = sc.Provider.SimNoise
	cfg.Model.PatchedLossShare = sc.Provider.SimHotfixLoss
	if sc.Provider.SimRebootDown > 0 {
		cfg.RebootDown = sc.Provider.SimRebootDown
	}
	if pw := os.Getenv(sim.PasswordEnv); pw != "" {
		cfg.Password = pw
	}
	return sim.NewProvider(specs, cfg), nil
}

func openStatic(_ context.Context, a openArgs) (contract.Provider, error) {
	sc := a.sc
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
		return kind.hotfix(sc)
	}
	return nil
}

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
	ep, err := winrmEndpoint(t)
	if err != nil {
		return lab.StaticTarget{}, err
	}
	ep.Host, ep.Port = t.Host, t.Port
	return lab.StaticTarget{
		Name:         t.Name,
		OS:           t.OS,
		Endpoint:     ep,
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

// winrmEndpoint is how to speak WinRM to a real guest: scheme, certificate check and auth
// (the host and port are the caller's).
func winrmEndpoint(t scenarios.TargetSpec) (contract.Endpoint, error) {
	ep := contract.Endpoint{HTTPS: t.HTTPS, Insecure: t.Insecure, Auth: t.Auth}
	if ep.Auth == "" {
		ep.Auth = contract.AuthBasic
	}
	if t.CAFile != "" {
		ca, err := readCAFile(t.CAFile)
		if err != nil {
			return ep, fmt.Errorf("ca_file: %w", err)
		}
		ep.CACert = ca
	}
	return ep, nil
}

// maxCAFile bounds a CA file: a few certificates are a few KiB.
const maxCAFile = 1 << 20

// readCAFile reads a PEM file of CA certificates, refusing one that holds none.
func readCAFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read it (%w); give the PEM file of the CA that signed the guest's WinRM certificate", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCAFile+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, err)
	}
	if len(data) > maxCAFile {
		return nil, fmt.Errorf("%s is larger than %d bytes; it should hold a few PEM certificates", path, maxCAFile)
	}
	if err := checkCAPEM(data); err != nil {
		return nil, fmt.Errorf("%s %w", path, err)
	}
	return data, nil
}

// checkCAPEM makes sure data holds PEM certificates Go can parse, and nothing else that
// looks like a key (a private key given by mistake is refused rather than ignored).
func checkCAPEM(data []byte) error {
	n := 0
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return fmt.Errorf("holds a PEM %q block; it should hold only CERTIFICATE blocks (the CA's certificate, never a key)", b.Type)
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return fmt.Errorf("certificate %d does not parse: %v", n+1, err)
		}
		n++
	}
	if n == 0 {
		return errors.New("holds no PEM certificate (-----BEGIN CERTIFICATE-----); convert a DER .cer with: openssl x509 -inform der -in ca.cer -out ca.pem")
	}
	return nil
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

// simHotfixes are the simulator's own KB979223 packages, which only its wusa accepts.
func simHotfixes(*scenarios.Scenario) fs.FS { return sim.HotfixPackages() }

// applianceHotfixes are the simulator's packages when every target is an appliance;
// Windows images need the real ones from lab.hotfix_dir.
func applianceHotfixes(sc *scenarios.Scenario) fs.FS {
	for _, t := range sc.Targets {
		if !t.Appliance {
			return nil
		}
	}
	return sim.HotfixPackages()
}
