package qemu

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"
	"github.com/wfplab/wfplab/lab/contract"
)

// Provider boots targets as QEMU VMs; it implements contract.Provider.
type Provider struct {
	cfg      Config
	machines []Machine

	mu     sync.Mutex
	up     bool
	vms    map[string]*vm
	order  []string // names of running VMs, in target order
	usedMB int
	spawn  *spawner
	ports  *portPool
	accel  accelDecision
	cache  accelCache
}

var (
	_ contract.Provider  = (*Provider)(nil)
	_ contract.Recoverer = (*Provider)(nil)
)

// New returns a provider for the given machines. Nothing starts before Up.
func New(cfg Config, machines ...Machine) (*Provider, error) {
	if cfg.RunDir == "" {
		return nil, errors.New("qemu provider: no run folder (RunDir)")
	}
	cfg = cfg.withDefaults()
	return &Provider{
		cfg:      cfg,
		machines: append([]Machine(nil), machines...),
		vms:      map[string]*vm{},
		ports:    newPortPool(),
		cache:    newAccelCache(cfg.AccelCacheDir, cfg.QemuBinary),
	}, nil
}

// Name implements contract.Provider.
func (p *Provider) Name() string { return "qemu" }

// Up boots every machine side by side within the memory budget and waits for each one's
// WinRM. It returns the targets that came up, in the machines' order, and a go-multierror
// with one entry per target that did not, each quoting its console log's last lines.
func (p *Provider) Up(ctx context.Context) ([]contract.Target, error) {
	p.mu.Lock()
	if p.up {
		p.mu.Unlock()
		return nil, errors.New("qemu provider: already up; call Down first")
	}
	p.up = true
	p.spawn = startSpawner()
	p.mu.Unlock()

	if v := p.cache.load(); v != "" && p.accel.get() == "" {
		p.accel.set(v)
		p.cfg.Logf("qemu: accel auto uses %s, decided on this host before (%s; delete it to try again)", v, p.cache.path)
	}

	var errs *multierror.Error
	type job struct {
		m     Machine
		index int
	}
	var jobs []job
	seen := map[string]bool{}
	for i, m := range p.machines {
		m = m.withDefaults()
		label := m.Name
		if label == "" {
			label = fmt.Sprintf("qemu target #%d", i+1)
		}
		var problems []error
		if seen[m.Name] {
			problems = append(problems, errors.New("the name is used by another target; names must be unique"))
		}
		seen[m.Name] = true
		if i > 255 {
			problems = append(problems, errors.New("more than 256 targets; MAC addresses are derived from the index"))
		}
		if err := m.validate(); err != nil {
			problems = append(problems, err)
		}
		if len(problems) > 0 {
			errs = multierror.Append(errs, fmt.Errorf("%s: %w; fix the target in the scenario", label, errors.Join(problems...)))
			continue
		}
		if err := p.reserve(m); err != nil {
			errs = multierror.Append(errs, fmt.Errorf("%s: %w", m.Name, err))
			continue
		}
		jobs = append(jobs, job{m, i})
	}

	results := make([]error, len(jobs))
	vms := make([]*vm, len(jobs))
	var wg sync.WaitGroup
	for j, jb := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			vms[j], results[j] = p.boot(ctx, jb.m, jb.index)
		}()
	}
	wg.Wait()

	var targets []contract.Target
	for j, jb := range jobs {
		if results[j] != nil {
			errs = multierror.Append(errs, fmt.Errorf("%s: %w", jb.m.Name, results[j]))
			p.release(jb.m)
			continue
		}
		p.mu.Lock()
		p.vms[jb.m.Name] = vms[j]
		p.order = append(p.order, jb.m.Name)
		p.mu.Unlock()
		t, err := target(vms[j])
		if err != nil {
			errs = multierror.Append(errs, fmt.Errorf("%s: %w", jb.m.Name, err))
			continue
		}
		targets = append(targets, t)
	}
	return targets, errs.ErrorOrNil()
}

// target is the contract's view of a running VM.
func target(v *vm) (contract.Target, error) {
	osEntry, err := contract.LookupOS(v.m.OS)
	if err != nil {
		return contract.Target{}, err
	}
	lo := netip.MustParseAddr("127.0.0.1")
	t := contract.Target{
		Name:     v.m.Name,
		OS:       osEntry,
		Endpoint: contract.Endpoint{Host: lo.String(), Port: v.ports.Host.WinRM},
		Creds:    v.m.Creds,
		Traffic: contract.TrafficAddrs{
			Stream:           netip.AddrPortFrom(lo, uint16(v.ports.Host.Stream)),
			Control:          netip.AddrPortFrom(lo, uint16(v.ports.Host.Control)),
			GuestStreamPort:  uint16(v.m.GuestPorts.Stream),
			GuestControlPort: uint16(v.m.GuestPorts.Control),
		},
	}
	if l := v.ports.Links; l != nil {
		in, out := l.A, l.B
		t.Traffic.ForwardIn, t.Traffic.ForwardOut = &in, &out
		t.Traffic.ForwardPrefix = out.GuestIP.Masked()
		t.Traffic.Forward = netip.AddrPortFrom(out.HostIP, uint16(v.m.ForwardPort))
	}
	return t, nil
}

// reserve counts m against the memory budget.
func (p *Provider) reserve(m Machine) error {
	need := m.MemoryMB + qemuOverheadMB
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.usedMB+need > p.cfg.MemoryBudgetMB {
		return fmt.Errorf("needs %d MB (memory_mb %d + %d MB for QEMU) but only %d of the %d MB memory budget are left; lower memory_mb, run fewer targets, or raise the budget",
			need, m.MemoryMB, qemuOverheadMB, p.cfg.MemoryBudgetMB-p.usedMB, p.cfg.MemoryBudgetMB)
	}
	p.usedMB += need
	return nil
}

func (p *Provider) release(m Machine) {
	p.mu.Lock()
	p.usedMB -= m.MemoryMB + qemuOverheadMB
	p.mu.Unlock()
}

// boot prepares the VM folder and disks, starts QEMU and waits for WinRM. On failure the
// QEMU is killed and the disks are cleaned as Down would.
func (p *Provider) boot(ctx context.Context, m Machine, index int) (*vm, error) {
	paths := newVMPaths(p.cfg.RunDir, m.Name)
	v := &vm{m: m, index: index, paths: paths, qmp: qmpClient{socket: paths.QMP}}
	if err := os.MkdirAll(paths.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("VM folder: %w", err)
	}
	err := p.bootIn(ctx, v)
	if err != nil {
		v.kill()
		p.cleanup(v)
		return nil, err
	}
	return v, nil
}

func (p *Provider) bootIn(ctx context.Context, v *vm) error {
	m := v.m
	if err := writeOwner(v.paths.Owner); err != nil {
		return err
	}
	if m.Image != "" {
		if err := createOverlay(ctx, p.cfg.QemuImg, m.Image, v.paths.Overlay); err != nil {
			return err
		}
	}
	if m.StateDiskMB > 0 {
		if err := createStateDisk(v.paths.State, m.StateDiskMB); err != nil {
			return err
		}
	}
	full := bootWait{bound: p.cfg.BootTimeout}
	switch m.Accel {
	case AccelKVM, AccelTCG:
		return p.start(ctx, v, m.Accel, full)
	}
	// accel auto
	if verdict := p.accel.get(); verdict != "" {
		return p.start(ctx, v, verdict, full)
	}
	p.accel.trial.Lock()
	if verdict := p.accel.get(); verdict != "" { // another target's trial decided meanwhile
		p.accel.trial.Unlock()
		return p.start(ctx, v, verdict, full)
	}
	trial := bootWait{bound: min(m.ProbeTimeout, p.cfg.BootTimeout)}
	if m.Kernel != "" {
		trial.silence = DefaultKVMSilence
	}
	t0 := time.Now()
	err := p.start(ctx, v, AccelKVM, trial)
	if err == nil {
		p.decide(AccelKVM, "")
		p.accel.trial.Unlock()
		return nil
	}
	if ctx.Err() != nil {
		p.accel.trial.Unlock()
		return err
	}
	v.kill()
	// Keep the trial's console for the record; the TCG boot writes a fresh one.
	os.Rename(v.paths.Console, filepath.Join(v.paths.Dir, "console.kvm-trial.log"))
	why := fmt.Sprintf("%s: KVM made no progress in %.0fs (%v)", m.Name, time.Since(t0).Seconds(), firstLine(err))
	if errors.Is(err, errExitedAtStart) { // no /dev/kvm, or no rights to it: QEMU says which
		why = fmt.Sprintf("%s: QEMU would not start under KVM (%v)", m.Name, firstLine(err))
	}
	p.decide(AccelTCG, why)
	p.accel.trial.Unlock()
	return p.start(ctx, v, AccelTCG, full)
}

// decide records accel auto's verdict for the run and the host, warning once on TCG.
func (p *Provider) decide(verdict, why string) {
	p.accel.set(verdict)
	if verdict == AccelTCG && p.accel.warnOnce() {
		p.cfg.Logf("qemu: WARNING: accel auto falls back to TCG (slower) for this run: %s", why)
	}
	if err := p.cache.store(verdict); err != nil {
		p.cfg.Logf("qemu: %v (the decision holds for this run only)", err)
	}
}

// start launches QEMU (retrying with fresh ports when one was taken meanwhile) and waits
// for WinRM.
func (p *Provider) start(ctx context.Context, v *vm, accel string, w bootWait) error {
	var err error
	for attempt := range 3 {
		if attempt > 0 || v.ports.Host.WinRM == 0 {
			if v.ports, err = p.ports.allocate(v.index, v.m.ForwardLinks); err != nil {
				return err
			}
		}
		err = p.launch(ctx, v, accel)
		if !errors.Is(err, errPortRace) {
			break
		}
		p.cfg.Logf("qemu: %s: %v; retrying with other ports", v.m.Name, err)
	}
	if err != nil {
		return err
	}
	p.cfg.Logf("qemu: %s: booting under %s, WinRM forwarded from 127.0.0.1:%d, console in %s",
		v.m.Name, accel, v.ports.Host.WinRM, v.paths.Console)
	return p.waitReady(ctx, v, w)
}

// Down stops every VM: system_powerdown, then quit after PowerdownWait, then SIGKILL; it
// removes overlays and state disks unless KeepVMs (console logs and screenshots stay).
// It returns one error per VM that needed SIGKILL or whose files could not be removed.
func (p *Provider) Down(ctx context.Context) error {
	p.mu.Lock()
	if !p.up {
		p.mu.Unlock()
		return nil
	}
	var vms []*vm
	for _, name := range p.order {
		vms = append(vms, p.vms[name])
	}
	p.mu.Unlock()

	errsPer := make([]error, len(vms))
	var wg sync.WaitGroup
	for i, v := range vms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errsPer[i] = p.stop(ctx, v)
		}()
	}
	wg.Wait()

	p.mu.Lock()
	defer p.mu.Unlock()
	p.spawn.close() // any QEMU still alive gets SIGKILL from the kernel now
	p.vms, p.order, p.usedMB, p.up = map[string]*vm{}, nil, 0, false
	var errs *multierror.Error
	for i, err := range errsPer {
		if err != nil {
			errs = multierror.Append(errs, fmt.Errorf("%s: %w", vms[i].m.Name, err))
		}
	}
	return errs.ErrorOrNil()
}

// stop ends one VM in order of gentleness, each step bounded, then cleans its folder.
func (p *Provider) stop(ctx context.Context, v *vm) error {
	var errs *multierror.Error
	if v.running() {
		qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := v.qmp.powerdown(qctx)
		cancel()
		if err != nil || !v.waitExit(p.cfg.PowerdownWait) {
			qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			v.qmp.quit(qctx) // QEMU may hang up before replying; the exit is what counts
			cancel()
			if !v.waitExit(5 * time.Second) {
				v.kill()
				if v.running() {
					errs = multierror.Append(errs, fmt.Errorf("QEMU PID %d survived SIGKILL for 10s", v.cmd.Process.Pid))
				} else {
					errs = multierror.Append(errs, errors.New("QEMU ignored system_powerdown and quit; killed it"))
				}
			}
		}
	}
	if err := p.cleanup(v); err != nil {
		errs = multierror.Append(errs, err)
	}
	return errs.ErrorOrNil()
}

// cleanup removes a stopped VM's runtime files, and its disks unless KeepVMs.
func (p *Provider) cleanup(v *vm) error {
	files := []string{v.paths.QMP, v.paths.Pid, v.paths.Owner}
	if !p.cfg.KeepVMs {
		files = append(files, v.paths.Overlay, v.paths.State)
	}
	var errs *multierror.Error
	for _, f := range files {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = multierror.Append(errs, err)
		}
	}
	return errs.ErrorOrNil()
}

const evidenceTailLines = 40

// Evidence records a target's console tail, QEMU's run state and a screenshot, without
// touching the guest. It returns what it could gather, with an error naming what it could
// not (a QEMU that exited has no status and no screen).
func (p *Provider) Evidence(ctx context.Context, target string) (contract.Evidence, error) {
	v, err := p.vm(target)
	if err != nil {
		return contract.Evidence{}, err
	}
	ev := contract.Evidence{ConsoleLog: v.paths.Console, At: time.Now().UTC()}
	var errs *multierror.Error
	if !v.running() {
		ev.Status = "exited: " + v.exitError(errors.New("QEMU exited")).Error()
		errs = multierror.Append(errs, fmt.Errorf("%s: QEMU is not running; no status or screenshot", target))
	} else {
		if st, err := v.qmp.status(ctx); err != nil {
			ev.Status = "unknown: " + err.Error()
			errs = multierror.Append(errs, fmt.Errorf("%s: %w", target, err))
		} else {
			ev.Status = st.Status
		}
		if shot, err := p.screenshot(ctx, v); err != nil {
			errs = multierror.Append(errs, fmt.Errorf("%s: %w", target, err))
		} else {
			ev.Screenshot = shot
		}
	}
	ev.ConsoleTail = tailLines(v.paths.Console, evidenceTailLines)
	return ev, errs.ErrorOrNil()
}

// screenshot takes screendump-N.png in the VM folder (QEMU writes PPM; it is converted and
// removed).
func (p *Provider) screenshot(ctx context.Context, v *vm) (string, error) {
	v.mu.Lock()
	v.shots++
	n := v.shots
	v.mu.Unlock()
	base := filepath.Join(v.paths.Dir, fmt.Sprintf("screendump-%d", n))
	if err := v.qmp.screendump(ctx, base+".ppm"); err != nil {
		return "", err
	}
	defer os.Remove(base + ".ppm")
	if err := ppmToPNG(base+".ppm", base+".png"); err != nil {
		return "", fmt.Errorf("converting the screendump: %w", err)
	}
	return base + ".png", nil
}

// Recover is for a guest that QEMU runs but that stopped answering: it takes the evidence
// (screenshot first), then resets the VM through QMP and returns without waiting for the
// guest; use WaitReady for that. The reset is attempted even when the evidence is partial.
func (p *Provider) Recover(ctx context.Context, target string) (contract.Evidence, error) {
	ev, everr := p.Evidence(ctx, target)
	var errs *multierror.Error
	if everr != nil {
		errs = multierror.Append(errs, everr)
	}
	v, err := p.vm(target)
	if err != nil {
		return ev, err
	}
	if !v.running() {
		return ev, multierror.Append(errs, fmt.Errorf("%s: QEMU exited; it cannot be reset (%s)", target, ev.Status))
	}
	if err := v.qmp.reset(ctx); err != nil {
		return ev, multierror.Append(errs, fmt.Errorf("%s: reset failed: %w", target, err))
	}
	p.cfg.Logf("qemu: %s: reset through QMP; evidence in %s", target, v.paths.Dir)
	return ev, errs.ErrorOrNil()
}

// WaitReady waits, within BootTimeout, until the target's WinRM answers again (after
// Recover or a guest reboot).
func (p *Provider) WaitReady(ctx context.Context, target string) error {
	v, err := p.vm(target)
	if err != nil {
		return err
	}
	if err := p.waitReady(ctx, v, bootWait{bound: p.cfg.BootTimeout}); err != nil {
		return fmt.Errorf("%s: %w", target, err)
	}
	return nil
}

// VMInfo describes a running VM for the CLI and the report.
type VMInfo struct {
	Dir        string
	ConsoleLog string
	QemuLog    string
	Accel      string // the accelerator it runs under
	PID        int
	Host       HostPorts
	Links      *ForwardLinks // nil without forward links
}

// VM returns what the provider knows of a running target.
func (p *Provider) VM(target string) (VMInfo, error) {
	v, err := p.vm(target)
	if err != nil {
		return VMInfo{}, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	info := VMInfo{Dir: v.paths.Dir, ConsoleLog: v.paths.Console, QemuLog: v.paths.QemuLog, Accel: v.accel,
		Host: v.ports.Host, Links: v.ports.Links}
	if v.cmd != nil && v.cmd.Process != nil {
		info.PID = v.cmd.Process.Pid
	}
	return info, nil
}

func (p *Provider) vm(target string) (*vm, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.vms[target]
	if !ok {
		return nil, fmt.Errorf("qemu provider: no running target %q", target)
	}
	return v, nil
}

func firstLine(err error) string {
	s := err.Error()
	for i, r := range s {
		if r == '\n' {
			return s[:i]
		}
	}
	return s
}
