package vagrant

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/wfplab/wfplab/lab/contract"
)

// Machine is one target: a machine of the Vagrantfile (same name) and its catalog OS.
type Machine struct {
	Name string
	OS   contract.OS
	// WinRM is how to speak to the guest (HTTPS, Insecure, CACert, Auth): winrm-config
	// prints host, port and account only, not config.winrm.transport. Host and Port are ignored.
	WinRM contract.Endpoint
}

// Timeouts bound each kind of CLI call; zero fields take the defaults.
type Timeouts struct {
	Query    time.Duration // status, snapshot list, winrm-config (default 2m)
	Up       time.Duration // up: import, boot and WinRM (default 30m: old systems boot slowly)
	Snapshot time.Duration // snapshot save and restore (default 15m)
	Halt     time.Duration // halt (default 10m: wusa can hold a shutdown for minutes)
}

func (t Timeouts) withDefaults() Timeouts {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.Query, 2*time.Minute)
	def(&t.Up, 30*time.Minute)
	def(&t.Snapshot, 15*time.Minute)
	def(&t.Halt, 10*time.Minute)
	return t
}

// Config configures the provider.
type Config struct {
	CLI      string // the vagrant executable, a path or a name on PATH; default "vagrant"
	Dir      string // the folder holding the Vagrantfile
	Provider string // passed to `vagrant up --provider`; "": Vagrant's default
	Snapshot string // the snapshot every run starts from; default "clean"
	Layout   Layout
	Timeouts Timeouts
	// Route looks up the host's route for the forward networks; nil: HostRouter.
	Route Router
	// Env is the CLI's environment; nil: wfplab's own.
	Env  []string
	Logf func(format string, args ...any)
}

// DefaultSnapshot is the snapshot a run starts from when the scenario names none.
const DefaultSnapshot = "clean"

// Provider brings the Vagrantfile's machines up from their clean snapshot.
type Provider struct {
	cfg      Config
	cli      cli
	machines []Machine
	index    map[string]int

	mu sync.Mutex
	up []string // machines Up touched, for Down
}

var _ contract.Provider = (*Provider)(nil)

// New checks the Vagrantfile names every machine and returns the provider; nothing runs yet.
func New(cfg Config, machines ...Machine) (*Provider, error) {
	if cfg.CLI == "" {
		cfg.CLI = "vagrant"
	}
	if cfg.Snapshot == "" {
		cfg.Snapshot = DefaultSnapshot
	}
	if cfg.Layout == (Layout{}) {
		cfg.Layout = DefaultLayout()
	}
	if cfg.Route == nil {
		cfg.Route = HostRouter
	}
	cfg.Timeouts = cfg.Timeouts.withDefaults()
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	vf := filepath.Join(cfg.Dir, "Vagrantfile")
	text, err := os.ReadFile(vf)
	if err != nil {
		return nil, fmt.Errorf("vagrant: %w; provider.dir must be the folder holding the Vagrantfile (this project's is vagrant/)", err)
	}
	idx := MachineIndexes(text)
	var errs *multierror.Error
	for _, m := range machines {
		if _, ok := idx[m.Name]; !ok {
			errs = multierror.Append(errs, fmt.Errorf("vagrant: target %s: %s defines no machine of that name in its TARGETS table (it has %v); name the target as the machine",
				m.Name, vf, sortedKeys(idx)))
		}
	}
	if err := errs.ErrorOrNil(); err != nil {
		return nil, err
	}
	return &Provider{cfg: cfg, cli: cli{path: cfg.CLI, dir: cfg.Dir, env: cfg.Env}, machines: machines, index: idx}, nil
}

func sortedKeys(m map[string]int) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// Name implements contract.Provider.
func (p *Provider) Name() string { return "vagrant" }

// Up brings every machine up side by side, each from the clean snapshot, and returns those
// that came up with one error per machine that did not.
func (p *Provider) Up(ctx context.Context) ([]contract.Target, error) {
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		errs    *multierror.Error
		targets = make([]*contract.Target, len(p.machines))
	)
	for i, m := range p.machines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t, err := p.upOne(ctx, m)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = multierror.Append(errs, fmt.Errorf("vagrant: target %s: %w", m.Name, err))
				return
			}
			targets[i] = &t
		}()
	}
	wg.Wait()
	var out []contract.Target
	for _, t := range targets {
		if t != nil {
			out = append(out, *t)
		}
	}
	return out, errs.ErrorOrNil()
}

// upOne starts one machine from the snapshot: a new machine is brought up and the snapshot
// taken before anything changes it; a known one is restored to it (which starts it).
func (p *Provider) upOne(ctx context.Context, m Machine) (contract.Target, error) {
	traffic, err := p.cfg.Layout.Addrs(p.index[m.Name])
	if err != nil {
		return contract.Target{}, err
	}
	p.mu.Lock()
	p.up = append(p.up, m.Name)
	p.mu.Unlock()
	st, err := p.status(ctx, m.Name)
	if err != nil {
		return contract.Target{}, err
	}
	snap := p.cfg.Snapshot
	var snaps []string
	if st.State != StateNotCreated {
		out, err := p.cli.run(ctx, p.cfg.Timeouts.Query, "snapshot", "list", m.Name, "--machine-readable")
		if err != nil {
			return contract.Target{}, err
		}
		snaps = ParseSnapshots(out)
	}
	switch {
	case slices.Contains(snaps, snap):
		p.cfg.Logf("%s: restoring snapshot %s", m.Name, snap)
		if _, err := p.cli.run(ctx, p.cfg.Timeouts.Snapshot, "snapshot", "restore", m.Name, snap); err != nil {
			return contract.Target{}, err
		}
		if st, err = p.status(ctx, m.Name); err != nil {
			return contract.Target{}, err
		}
		if st.State != StateRunning {
			if err := p.upCmd(ctx, m.Name); err != nil {
				return contract.Target{}, err
			}
		}
	default:
		if st.State == StateNotCreated {
			p.cfg.Logf("%s: creating the machine (vagrant up)", m.Name)
		} else {
			p.cfg.Logf("%s: no snapshot %s yet: taking it from the machine as it is now", m.Name, snap)
		}
		if st.State != StateRunning {
			if err := p.upCmd(ctx, m.Name); err != nil {
				return contract.Target{}, err
			}
		}
		p.cfg.Logf("%s: saving snapshot %s", m.Name, snap)
		if _, err := p.cli.run(ctx, p.cfg.Timeouts.Snapshot, "snapshot", "save", m.Name, snap); err != nil {
			return contract.Target{}, err
		}
	}
	// Checked once the machine is up: a host-only interface exists only from then.
	if err := CheckRoute(ctx, p.cfg.Route, traffic.ForwardPrefix, traffic.Stream.Addr()); err != nil {
		return contract.Target{}, err
	}
	out, err := p.cli.run(ctx, p.cfg.Timeouts.Query, "winrm-config", m.Name)
	if err != nil {
		return contract.Target{}, err
	}
	cfgs, err := ParseWinRMConfig(out)
	if err != nil {
		return contract.Target{}, fmt.Errorf("vagrant winrm-config %s: %w", m.Name, err)
	}
	w := cfgs[0]
	return contract.Target{
		Name: m.Name,
		OS:   m.OS,
		Endpoint: contract.Endpoint{Host: w.HostName, Port: w.Port, HTTPS: m.WinRM.HTTPS, Insecure: m.WinRM.Insecure,
			CACert: m.WinRM.CACert, Auth: m.WinRM.Auth},
		Creds:   contract.Credentials{User: w.User, Password: w.Password},
		Traffic: traffic,
	}, nil
}

func (p *Provider) upCmd(ctx context.Context, name string) error {
	args := []string{"up", name, "--no-provision"}
	if p.cfg.Provider != "" {
		args = append(args, "--provider", p.cfg.Provider)
	}
	_, err := p.cli.run(ctx, p.cfg.Timeouts.Up, args...)
	return err
}

func (p *Provider) status(ctx context.Context, name string) (MachineStatus, error) {
	out, err := p.cli.run(ctx, p.cfg.Timeouts.Query, "status", name, "--machine-readable")
	if err != nil {
		return MachineStatus{}, err
	}
	st, ok := ParseStatus(out)[name]
	if !ok || st.State == "" {
		return MachineStatus{}, fmt.Errorf("`vagrant status %s --machine-readable` reported no state for it%s", name, tail(out, ""))
	}
	return st, nil
}

// Down halts the machines Up touched, side by side, and collects every failure. The next
// run restores the snapshot, so nothing a run changed survives it.
func (p *Provider) Down(ctx context.Context) error {
	p.mu.Lock()
	names := p.up
	p.up = nil
	p.mu.Unlock()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs *multierror.Error
	)
	for _, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := p.cli.run(ctx, p.cfg.Timeouts.Halt, "halt", name); err != nil {
				mu.Lock()
				errs = multierror.Append(errs, fmt.Errorf("vagrant: target %s: %w", name, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errs.ErrorOrNil()
}

// errNoVagrant is returned by Check when the CLI is not there.
var errNoVagrant = errors.New("vagrant is not installed")

// Check finds offline what would stop a run: the CLI missing, the Vagrantfile missing or
// without a machine a target names.
func Check(cfg Config, machines ...Machine) error {
	var errs *multierror.Error
	name := cfg.CLI
	if name == "" {
		name = "vagrant"
	}
	if _, err := lookPath(name); err != nil {
		errs = multierror.Append(errs, fmt.Errorf("vagrant: %w (%s: %v); install Vagrant 2.2 or later, or set provider.vagrant to its path", errNoVagrant, name, err))
	}
	if _, err := New(cfg, machines...); err != nil {
		errs = multierror.Append(errs, err)
	}
	return errs.ErrorOrNil()
}
