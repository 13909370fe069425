package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-multierror"

	"github.com/wfplab/wfplab/lab/contract"
	"github.com/wfplab/wfplab/lab/vagrant"
	"github.com/wfplab/wfplab/scenarios"
	"github.com/wfplab/wfplab/traffic"
)

// openVagrant drives the vagrant CLI over the scenario's Vagrantfile: each target is the
// machine of its name, started from the clean snapshot.
func openVagrant(_ context.Context, a openArgs) (contract.Provider, error) {
	ms, err := vagrantMachines(a.sc)
	if err != nil {
		return nil, err
	}
	p, err := vagrant.New(vagrantConfig(a.sc, a.logf), ms...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a.sc.Source, err)
	}
	return p, nil
}

// vagrantConfig is the provider's configuration from the scenario; the layout comes from
// the variables the Vagrantfile reads too, so both agree.
func vagrantConfig(sc *scenarios.Scenario, logf func(string, ...any)) vagrant.Config {
	return vagrant.Config{
		CLI: sc.Provider.VagrantCLI, Dir: sc.Provider.VagrantDir,
		Provider: sc.Provider.VagrantProvider, Snapshot: sc.Provider.VagrantSnapshot,
		Layout: vagrant.LayoutFromEnv(os.Getenv), Logf: logf,
	}
}

func vagrantMachines(sc *scenarios.Scenario) ([]vagrant.Machine, error) {
	var ms []vagrant.Machine
	var errs *multierror.Error
	for _, t := range sc.Targets {
		o, err := contract.LookupOS(t.OS)
		if err != nil {
			errs = multierror.Append(errs, fmt.Errorf("%s: target %s: %w", sc.Source, t.Name, err))
			continue
		}
		ep, err := winrmEndpoint(t)
		if err != nil {
			errs = multierror.Append(errs, fmt.Errorf("%s: target %s: %w", sc.Source, t.Name, err))
			continue
		}
		ms = append(ms, vagrant.Machine{Name: t.Name, OS: o, WinRM: ep})
	}
	return ms, errs.ErrorOrNil()
}

// checkVagrant finds offline what would stop a vagrant run: no CLI, no Vagrantfile or no
// machine of a target's name, and traffic addresses lab.allow does not cover.
func checkVagrant(sc *scenarios.Scenario) error {
	var errs *multierror.Error
	if err := checkCAFiles(sc); err != nil {
		return err // vagrantMachines would say the same with no line
	}
	ms, err := vagrantMachines(sc)
	if err != nil {
		errs = multierror.Append(errs, err)
	}
	cfg := vagrantConfig(sc, nil)
	if err := vagrant.Check(cfg, ms...); err != nil {
		// One line per problem, each naming the scenario.
		var merr *multierror.Error
		if !errors.As(err, &merr) {
			merr = &multierror.Error{Errors: []error{err}}
		}
		for _, e := range merr.Errors {
			errs = multierror.Append(errs, fmt.Errorf("%s: %w", sc.Source, e))
		}
	}
	vf, _ := os.ReadFile(filepath.Join(cfg.Dir, "Vagrantfile"))
	idx := vagrant.MachineIndexes(vf)
	for _, m := range ms {
		n, ok := idx[m.Name]
		if !ok {
			continue // Check said so
		}
		addrs, err := cfg.Layout.Addrs(n)
		if err != nil {
			errs = multierror.Append(errs, fmt.Errorf("%s: target %s: %w", sc.Source, m.Name, err))
			continue
		}
		allow := traffic.Allow(sc.Lab.Allow)
		for _, c := range []struct {
			dest netip.AddrPort
			what string
		}{{addrs.Stream, "the host-only address"}, {addrs.Forward, "the forward network"}} {
			if err := allow.Check(c.dest, c.what); err != nil {
				errs = multierror.Append(errs, fmt.Errorf("%s: target %s: %w", sc.Source, m.Name, err))
			}
		}
	}
	return errs.ErrorOrNil()
}
