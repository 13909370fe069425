package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"

	"github.com/hashicorp/go-multierror"

	"github.com/wfplab/wfplab/lab"
	"github.com/wfplab/wfplab/lab/contract"
	"github.com/wfplab/wfplab/scenarios"
)

// preflight finds, offline and before anything is started or written, what would stop a
// scenario minutes into a run: a provider that is not available, missing tools or images,
// passwords that cannot be read, hotfix packages that are not there. Every problem is
// reported, each naming the scenario file and the target.
func preflight(sc *scenarios.Scenario) error {
	kind, ok := providerKinds[sc.Provider.Kind]
	if !ok {
		return fmt.Errorf("%s: provider %q is not available yet (use %s)", sc.Source, sc.Provider.Kind, availableProviders())
	}
	var errs *multierror.Error
	if kind.check != nil {
		if err := kind.check(sc); err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	if err := checkHotfixes(sc, kind); err != nil {
		errs = multierror.Append(errs, err)
	}
	return errs.ErrorOrNil()
}

// checkHotfixes makes sure every target's KB979223 package is at hand when a phase
// installs it.
func checkHotfixes(sc *scenarios.Scenario, kind providerKind) error {
	needed := false
	for _, p := range sc.Phases {
		needed = needed || p.InstallHotfix
	}
	if !needed {
		return nil
	}
	src := hotfixPackages(sc, kind)
	if src == nil {
		return fmt.Errorf("%s: a phase installs KB979223 but lab.hotfix_dir is not set: point it at a folder holding the .msu packages", sc.Source)
	}
	var errs *multierror.Error
	for _, t := range sc.Targets {
		o, err := contract.LookupOS(t.OS)
		if err != nil {
			continue // validation already said so
		}
		if _, err := fs.Stat(src, o.HotfixPackage); err != nil {
			errs = multierror.Append(errs, fmt.Errorf("%s: target %s: hotfix package %s is not in %s; download it from KB979223",
				sc.Source, t.Name, o.HotfixPackage, sc.Lab.HotfixDir))
		}
	}
	return errs.ErrorOrNil()
}

// checkPasswords reads each target's password once, to find an unset variable or a file
// others can read before the run, and forgets it.
func checkPasswords(sc *scenarios.Scenario, targets []scenarios.TargetSpec) error {
	var errs *multierror.Error
	for _, t := range targets {
		if _, err := lab.ReadPassword(t.PasswordEnv, t.PasswordFile, os.Getenv); err != nil {
			errs = multierror.Append(errs, fmt.Errorf("%s: target %s: %w", sc.Source, t.Name, err))
		}
	}
	return errs.ErrorOrNil()
}

func checkStatic(sc *scenarios.Scenario) error {
	return errors.Join(checkPasswords(sc, sc.Targets), checkCAFiles(sc))
}

// checkCAFiles reads each target's ca_file: readable, and PEM certificates only.
func checkCAFiles(sc *scenarios.Scenario) error {
	var errs *multierror.Error
	for i, t := range sc.Targets {
		if t.CAFile == "" {
			continue
		}
		if _, err := readCAFile(t.CAFile); err != nil {
			errs = multierror.Append(errs, sc.Problem(fmt.Sprintf("targets[%d].ca_file", i), "target %s: %v", t.Name, err))
		}
	}
	return errs.ErrorOrNil()
}

// checkTool says how to install a program the provider runs when it is not on PATH.
func checkTool(sc *scenarios.Scenario, name, pkg string) error {
	if _, err := exec.LookPath(name); err != nil {
		return fmt.Errorf("%s: provider %s needs %s, which is not on PATH: install it (Debian: apt-get install %s)",
			sc.Source, sc.Provider.Kind, name, pkg)
	}
	return nil
}
