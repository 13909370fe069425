package sim

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/wfplab/wfplab/lab/contract"
	"github.com/wfplab/wfplab/lab/sim/cmdexe"
	"github.com/wfplab/wfplab/lab/sim/kernel"
	"github.com/wfplab/wfplab/lab/sim/wsman"
)

// Machine is one simulated Windows machine: a persistent state (disk, registry, services, boot
// configuration, installed updates) and, while it is up, one boot (a kernel model, traffic
// sockets and a WinRM server). Its methods are safe for concurrent use.
type Machine struct {
	name     string
	hostname string
	os       contract.OS
	cfg      Config
	seed     int64
	host     netip.Addr
	fs       *cmdexe.MemFS
	reg      *registry

	mu             sync.Mutex
	svcs           map[string]*service // key: lower-case service name
	bcdTestSigning bool                // configured; in force from the next boot
	files          fileVersions        // on disk and in force for the running boot
	pendingFiles   *fileVersions       // replaced at the next boot (an installed hotfix)
	hotfixDone     bool                // KB979223 installed (pending or in force)
	stores         map[string]map[[20]byte]string
	nics           []*NICState // network adapters; addresses and forwarding persist
	boots          int
	cur            *boot // nil while down
	shutdown       shutdownState
	pid            uint32
	winrm          netip.AddrPort
	ports          kernel.Ports
	closed         bool
	lastErr        error
	stop           chan struct{}
	wg             sync.WaitGroup
	tasks          map[string]*task // scheduled tasks by lower-case name (schtasks)
	faultCount     faultCounters
	fwdMu          sync.Mutex // serializes starting and stopping a boot's frame forwarder
	tls            *guestTLS  // the HTTPS listener's CA and certificate; nil: HTTP
	winrm11        bool       // answers as WinRM 1.1
	wcfg           winrmConfig
	fw             []*fwRule // firewall rules (netsh advfirewall)
	loopFwd        bool      // forwarding on the loopback interface (netsh ... set interface 1)
	groupFrags     bool      // netsh interface ipv4 set global groupforwardedfragments (off by default)
}

// fileVersions are the file versions of the drivers KB979223 replaces.
type fileVersions struct{ netio, tcpip, fwpkclnt string }

type shutdownPhase int

const (
	shutdownNone shutdownPhase = iota
	shutdownScheduled
	shutdownInProgress
)

type shutdownState struct {
	phase shutdownPhase
	timer *time.Timer
}

// boot is one boot of the guest: from power-on to going down.
type boot struct {
	n           int
	wall        time.Time // boot time, UTC
	mono        time.Time // carries the monotonic clock for uptime
	offset      time.Duration
	testSigning bool // in force for this boot
	files       fileVersions
	kern        *kernel.Kernel
	net         *kernel.NetStack
	srv         *wsman.Server
	ln          net.Listener
	serveDone   chan struct{}
	down        chan struct{} // closed when the boot ends
	hung        chan struct{} // closed when the pool passed Config.HangPoolBytes

	// guarded by Guest.mu
	driverOwner string          // lower-case name of the kernel service whose image is loaded
	started     map[string]bool // services started in this boot

	// guarded by Guest.fwdMu: the forward path's frame forwarder (extra NICs only)
	fwdStop func()
	fwdKey  string
}

func (b *boot) uptime() time.Duration { return b.offset + time.Since(b.mono) }

var errClosed = errors.New("the simulated guest was shut down for good (provider Down)")

// NewMachine prepares a guest; Start boots it.
func NewMachine(spec MachineSpec, cfg Config) (*Machine, error) {
	if spec.Faults.Any() {
		cfg.Faults = spec.Faults
	}
	if cfg.Faults.HangPoolMB > 0 {
		cfg.HangPoolBytes = uint64(cfg.Faults.HangPoolMB) << 20
	}
	cfg = cfg.withDefaults()
	if spec.Name == "" {
		return nil, errors.New("sim: a guest needs a name")
	}
	if spec.OS.Arch != "x86" && spec.OS.Arch != "x64" {
		return nil, fmt.Errorf("sim: guest %s: OS %q has architecture %q; the simulator models x86 and x64 only", spec.Name, spec.OS.Name, spec.OS.Arch)
	}
	if a := cfg.WinRMAuth; a != "" && a != contract.AuthBasic && a != contract.AuthNTLM {
		return nil, fmt.Errorf("sim: guest %s: WinRM auth %q: use %s, %s or nothing for both", spec.Name, a, contract.AuthBasic, contract.AuthNTLM)
	}
	winrm11 := spec.OS.Version == "6.0" // Vista and Server 2008 ship WinRM 1.1
	switch cfg.WinRMVersion {
	case "":
	case "1.1", "2.0":
		winrm11 = cfg.WinRMVersion == "1.1"
	default:
		return nil, fmt.Errorf("sim: guest %s: WinRM version %q: use 1.1, 2.0 or nothing for the OS's own", spec.Name, cfg.WinRMVersion)
	}
	host, err := cfg.listenAddr()
	if err != nil {
		return nil, fmt.Errorf("guest %s: %w", spec.Name, err)
	}
	var gt *guestTLS
	if cfg.HTTPS {
		if gt, err = newGuestTLS(spec.Name, cfg.HTTPSCA, host, cfg.HTTPSAddrs); err != nil {
			return nil, fmt.Errorf("sim: guest %s: HTTPS certificate: %w", spec.Name, err)
		}
	}
	nics, err := makeNICs(guestSeed(cfg.Seed, spec.Name), cfg.ExtraNICs)
	if err != nil {
		return nil, fmt.Errorf("guest %s: %w", spec.Name, err)
	}
	g := &Machine{
		name: spec.Name, hostname: computerName(spec.Name), os: spec.OS, cfg: cfg,
		seed: guestSeed(cfg.Seed, spec.Name), host: host,
		fs: cmdexe.NewMemFS(cfg.DiskBytes), reg: newRegistry(),
		svcs:   map[string]*service{},
		stores: map[string]map[[20]byte]string{},
		files:  fileVersions{netio: spec.OS.NetioStock, tcpip: spec.OS.NetioStock, fwpkclnt: spec.OS.NetioStock},
		stop:   make(chan struct{}),
		nics:   nics,
		tls:    gt, winrm11: winrm11,
		wcfg: newWinRMConfig(cfg, winrm11),
	}
	if cfg.Patched {
		g.files.netio, g.hotfixDone = spec.OS.NetioFixed, true
		if spec.OS.Version == "6.0" { // the 6.0 package carries all three (wusa)
			g.files.tcpip, g.files.fwpkclnt = spec.OS.NetioFixed, spec.OS.NetioFixed
		}
	}
	g.layDownSystem()
	return g, nil
}

// Name is the guest's name.
func (g *Machine) Name() string { return g.name }

// OS is the catalog entry the guest models.
func (g *Machine) OS() contract.OS { return g.os }

// BootCount is how many times the guest has booted.
func (g *Machine) BootCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.boots
}

// Up reports whether the guest is booted (WinRM listening).
func (g *Machine) Up() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cur != nil
}

// Err is the last failure of a background reboot, if any.
func (g *Machine) Err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lastErr
}

// Target is how the lab reaches the guest. Valid after Start.
func (g *Machine) Target() contract.Target {
	g.mu.Lock()
	defer g.mu.Unlock()
	h, fh := g.host, g.host
	if g.ports.ForwardHost.IsValid() {
		fh = g.ports.ForwardHost
	}
	return contract.Target{
		Name:     g.name,
		OS:       g.os,
		Endpoint: g.endpoint(h),
		Creds:    contract.Credentials{User: g.cfg.User, Password: g.cfg.Password},
		Traffic: contract.TrafficAddrs{
			Stream:        netip.AddrPortFrom(h, g.ports.Stream),
			Forward:       netip.AddrPortFrom(fh, g.ports.Forward),
			ForwardPrefix: netip.PrefixFrom(fh, fh.BitLen()),
			Control:       netip.AddrPortFrom(h, g.ports.Control),
		},
	}
}

// endpoint is how the lab reaches the guest's WinRM: NTLM where Basic is off, HTTPS with
// the guest's CA where it listens so.
func (g *Machine) endpoint(h netip.Addr) contract.Endpoint {
	ep := contract.Endpoint{Host: h.String(), Port: int(g.winrm.Port()), Auth: contract.AuthBasic}
	if g.cfg.WinRMAuth == contract.AuthNTLM {
		ep.Auth = contract.AuthNTLM
	}
	if g.tls != nil {
		ep.HTTPS, ep.CACert = true, g.CACertPEM()
	}
	return ep
}

// CACertPEM is the PEM certificate of the CA that signed the guest's HTTPS certificate;
// nil when it listens on HTTP.
func (g *Machine) CACertPEM() []byte {
	if g.tls == nil {
		return nil
	}
	return append([]byte(nil), g.tls.caPEM...)
}

// WinRM11 reports whether the guest answers as WinRM 1.1.
func (g *Machine) WinRM11() bool { return g.winrm11 }

func (g *Machine) logf(format string, args ...any) {
	if g.cfg.Logf != nil {
		g.cfg.Logf("sim %s: "+format, append([]any{g.name}, args...)...)
	}
}

// Start boots the guest the first time, on an ephemeral WinRM port unless addr is given.
func (g *Machine) Start(addr netip.AddrPort) error {
	g.mu.Lock()
	if g.boots > 0 {
		g.mu.Unlock()
		return fmt.Errorf("sim: guest %s already started", g.name)
	}
	if addr.IsValid() {
		if !addr.Addr().IsLoopback() && !g.cfg.InVM {
			g.mu.Unlock()
			return fmt.Errorf("sim: guest %s: WinRM address %s is not loopback", g.name, addr)
		}
		g.winrm = addr
	} else {
		g.winrm = netip.AddrPortFrom(g.host, 0)
	}
	g.ports = g.cfg.TrafficPorts
	g.mu.Unlock()
	return g.bootUp()
}

// bootUp applies what waited for a reboot, then starts a kernel, the traffic sockets and the
// WinRM server on the guest's addresses.
func (g *Machine) bootUp() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return errClosed
	}
	if g.pendingFiles != nil {
		g.files = *g.pendingFiles
		g.pendingFiles = nil
	}
	for k, s := range g.svcs {
		if s.deleted {
			delete(g.svcs, k)
			g.reg.deleteTree(servicesKey + `\` + s.name)
		}
	}
	g.boots++
	g.shutdown = shutdownState{}
	offset := time.Duration(0)
	if g.boots == 1 {
		offset = g.cfg.InitialUptime
	}
	now := time.Now()
	b := &boot{
		n: g.boots, wall: now.UTC().Add(-offset), mono: now, offset: offset,
		testSigning: g.bcdTestSigning, files: g.files,
		serveDone: make(chan struct{}), down: make(chan struct{}), hung: make(chan struct{}), started: map[string]bool{},
	}
	ports, winrm, files, groupFrags := g.ports, g.winrm, g.files, g.groupFrags
	g.mu.Unlock()
	g.writeSystemFiles(files)

	netio, err := lookupNetio(files.netio)
	if err != nil {
		return g.bootFailed(fmt.Errorf("sim: guest %s boot %d: %w", g.name, b.n, err))
	}
	b.kern = kernel.New(kernel.Config{
		// The bug is modelled from the simulator's own table of netio.sys builds.
		Arch: g.os.Arch, OSVersion: g.os.Version, Patched: !netio.leaks,
		Seed: g.seed ^ int64(b.n), Noise: g.cfg.Noise, Params: g.cfg.Model, GroupFragments: groupFrags,
	})
	listen := kernel.Listen
	if g.cfg.InVM {
		listen = kernel.ListenVM
	}
	b.net, err = retryListen(func() (*kernel.NetStack, error) { return listen(b.kern, g.host, ports) })
	if err != nil {
		b.kern.Close()
		return g.bootFailed(fmt.Errorf("sim: guest %s boot %d: %w", g.name, b.n, err))
	}
	ln, err := retryListen(func() (net.Listener, error) { return net.Listen("tcp", winrm.String()) })
	if err != nil {
		b.net.Close()
		b.kern.Close()
		return g.bootFailed(fmt.Errorf("sim: guest %s boot %d: WinRM listener on %s: %w", g.name, b.n, winrm, err))
	}
	b.srv = wsman.NewServer(wsman.HostFunc(func(ctx context.Context, c wsman.Command) int { return g.run(ctx, b, c) }),
		g.cfg.User, g.cfg.Password)
	b.srv.WinRM11 = g.winrm11
	g.mu.Lock()
	b.srv.Auth = g.wcfg.authSchemes()
	b.started["winrm"] = true // the WinRM service serves this boot
	g.mu.Unlock()
	b.srv.ComputerName = g.hostname
	b.srv.Inject = g.injector()
	if g.cfg.Logf != nil {
		b.srv.Logf = func(format string, args ...any) { g.logf(format, args...) }
	}

	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		ln.Close()
		b.net.Close()
		b.kern.Close()
		return errClosed
	}
	b.ln = ln
	g.cur = b
	g.ports = b.net.Ports()
	g.winrm = netip.MustParseAddrPort(ln.Addr().String())
	g.startBootDrivers(b)
	g.mu.Unlock()
	var serveLn net.Listener = ln
	if g.cfg.HangPoolBytes > 0 {
		serveLn = &hangListener{Listener: ln, hung: b.hung}
		go g.watchPool(b)
	}
	if g.tls != nil {
		serveLn = tls.NewListener(serveLn, g.tls.config(g.winrm11))
	}
	go func() {
		defer close(b.serveDone)
		_ = b.srv.Serve(serveLn)
	}()
	if g.cfg.Faults.RebootEvery > 0 {
		go g.crashEvery(b)
	}
	g.syncForwarder(b)
	g.logf("booted (boot %d, WinRM %s, netio %s, test signing %v)", b.n, ln.Addr(), files.netio, b.testSigning)
	return nil
}

func (g *Machine) bootFailed(err error) error {
	g.mu.Lock()
	g.lastErr = err
	g.mu.Unlock()
	g.logf("%v", err)
	return err
}

// retryListen retries a bind for up to 5 s: after a reboot the port may be free again only
// a moment later.
func retryListen[T any](listen func() (T, error)) (T, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		v, err := listen()
		if err == nil || time.Now().After(deadline) {
			return v, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// goDown ends the running boot: the traffic sockets close, WinRM stops (running commands
// are cancelled, connections closed), then the kernel.
func (g *Machine) goDown() {
	g.mu.Lock()
	b := g.cur
	g.cur = nil
	g.mu.Unlock()
	if b == nil {
		return
	}
	close(b.down)
	// Traffic first, so nothing answers once WinRM refuses.
	g.stopForwarder(b)
	if err := b.net.Close(); err != nil {
		g.logf("%v", err)
	}
	// Abrupt, as a machine going down is: requests in flight see their connection reset.
	// (A graceful http.Server.Shutdown would also wait for connections a client dialled but
	// never used.)
	if err := b.srv.Close(); err != nil {
		g.logf("WinRM close: %v", err)
	}
	// Serve may not have started yet: closing its listener makes it return when it does.
	_ = b.ln.Close()
	select {
	case <-b.serveDone:
	case <-time.After(5 * time.Second):
		g.logf("WinRM server did not stop within 5s")
	}
	b.kern.Close()
	g.logf("down (boot %d ended after %v)", b.n, b.uptime().Round(time.Millisecond))
}

// requestShutdown is `shutdown`: after delay the guest goes down, and comes back after
// RebootDown when reboot is set (power-off stays off). It returns the Win32 error code.
func (g *Machine) requestShutdown(b *boot, delay time.Duration, reboot bool) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.cur != b || g.shutdown.phase == shutdownInProgress:
		return 1115 // ERROR_SHUTDOWN_IN_PROGRESS
	case g.shutdown.phase == shutdownScheduled:
		return 1190 // ERROR_SHUTDOWN_IS_SCHEDULED
	}
	if delay <= 0 {
		g.beginPowerCycleLocked(b, reboot)
		return 0
	}
	g.shutdown.phase = shutdownScheduled
	g.shutdown.timer = time.AfterFunc(delay, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.cur == b && g.shutdown.phase == shutdownScheduled && !g.closed {
			g.beginPowerCycleLocked(b, reboot)
		}
	})
	return 0
}

// abortShutdown is `shutdown /a`.
func (g *Machine) abortShutdown() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch g.shutdown.phase {
	case shutdownScheduled:
		g.shutdown.timer.Stop()
		g.shutdown = shutdownState{}
		return 0
	case shutdownInProgress:
		return 1115
	}
	return 1116 // ERROR_NO_SHUTDOWN_IN_PROGRESS
}

func (g *Machine) beginPowerCycleLocked(b *boot, reboot bool) {
	if g.closed {
		return
	}
	g.shutdown.phase = shutdownInProgress
	g.wg.Add(1)
	go g.powerCycleFor(reboot, g.cfg.ShutdownDelay, g.cfg.RebootDown)
}

// powerCycleFor goes down after delay and, for a reboot, comes back after down.
func (g *Machine) powerCycleFor(reboot bool, delay, down time.Duration) {
	defer g.wg.Done()
	if delay > 0 && !g.sleep(delay) {
		return
	}
	g.goDown()
	if g.cfg.PowerCycle != nil {
		g.cfg.PowerCycle(reboot)
		return
	}
	if !reboot {
		g.logf("powered off")
		return
	}
	if !g.sleep(down) {
		return
	}
	if err := g.bootUp(); err != nil && !errors.Is(err, errClosed) {
		g.logf("reboot failed: %v", err)
	}
}

// sleep waits d unless the guest is closed first.
func (g *Machine) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-g.stop:
		return false
	}
}

// Close powers the guest off for good: pending reboots are abandoned.
func (g *Machine) Close(ctx context.Context) error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	close(g.stop)
	if g.shutdown.timer != nil {
		g.shutdown.timer.Stop()
	}
	g.mu.Unlock()
	done := make(chan struct{})
	go func() { g.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("sim: guest %s: a reboot in progress did not stop: %w", g.name, ctx.Err())
	}
	g.goDown()
	return nil
}

// run is the guest's WinRM host for one boot: every command is a `cmd /c LINE`.
func (g *Machine) run(ctx context.Context, b *boot, c wsman.Command) int {
	code := g.interp(b).Run(ctx, c.Line, c.Stdin, c.Stdout, c.Stderr)
	if g.cfg.StateChanged != nil {
		g.cfg.StateChanged()
	}
	return code
}

func (g *Machine) interp(b *boot) *cmdexe.Interp {
	return &cmdexe.Interp{
		FS: g.fs, Env: g.environ(), Cwd: g.profileDir(), Version: g.verString(),
		Exec: func(ctx context.Context, p *cmdexe.Process) int { return g.exec(ctx, b, p) },
	}
}
