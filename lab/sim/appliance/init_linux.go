//go:build linux

package appliance

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wfplab/wfplab/lab/contract"
	"github.com/wfplab/wfplab/lab/sim"
	"github.com/wfplab/wfplab/lab/sim/kernel"
)

// Fixed guest-side ports inside the VM; the QEMU provider forwards host ports to them.
const (
	WinRMPort   = 5985 // TCP, WinRM over HTTP as on Windows 7 / 2008 R2
	StreamPort  = 5001 // TCP, the stream path
	ControlPort = 5002 // UDP, single-NBL control traffic
	ForwardPort = 5003 // UDP, the loopback stand-in of the forward path (the VM's is NIC 2/3)
)

// User-mode networking's fixed addresses (QEMU "-netdev user").
var (
	guestAddr = netip.MustParseAddr("10.0.2.15")
	guestMask = netip.MustParseAddr("255.255.255.0")
	gateway   = netip.MustParseAddr("10.0.2.2")
)

// Booted reports whether this process is the appliance's /init: PID 1, started as /init,
// with the initramfs' module list present. A wfplab that is PID 1 elsewhere (a container's
// entrypoint) is not.
func Booted() bool {
	if os.Getpid() != 1 || len(os.Args) == 0 || os.Args[0] != "/init" {
		return false
	}
	_, err := os.Stat(orderFile)
	return err == nil
}

// Init is /init of the appliance: the wfplab binary started by the kernel as PID 1. It mounts
// the kernel's file systems, loads the virtio modules, brings the NICs up, loads the machine's
// state from the state disk and runs the simulated guest until a simulated shutdown turns
// into a real reboot(2) or power-off. It never returns; a fatal error is printed on the
// console and powers the VM off (a PID 1 that exits would panic the kernel).
func Init() {
	con := io.Writer(os.Stderr)
	defer func() {
		if r := recover(); r != nil {
			fatal(con, fmt.Errorf("panic: %v\n%s", r, debug.Stack()))
		}
	}()
	if err := mountAll(); err != nil {
		fatal(con, err)
	}
	if c, err := os.OpenFile("/dev/console", os.O_RDWR, 0); err == nil {
		// Also route the Go runtime's own crash output to the serial console.
		_ = unix.Dup3(int(c.Fd()), 1, 0)
		_ = unix.Dup3(int(c.Fd()), 2, 0)
		con = c
	}
	if err := run(con); err != nil {
		fatal(con, err)
	}
	for {
		time.Sleep(time.Hour) // the guest runs in other goroutines; PID 1 must not exit
	}
}

func fatal(con io.Writer, err error) {
	fmt.Fprintf(con, "\nwfplab appliance: FATAL: %v\nwfplab appliance: powering off\n", err)
	unix.Sync()
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	for {
		time.Sleep(time.Hour)
	}
}

func mountAll() error {
	for _, m := range []struct{ src, dst, typ string }{
		{"devtmpfs", "/dev", "devtmpfs"}, {"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"}, {"tmpfs", "/tmp", "tmpfs"},
	} {
		if err := os.MkdirAll(m.dst, 0o755); err != nil {
			return fmt.Errorf("mkdir %s: %w", m.dst, err)
		}
		if err := unix.Mount(m.src, m.dst, m.typ, 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount %s on %s: %w", m.typ, m.dst, err)
		}
	}
	return nil
}

// uptime is the kernel's time since boot, for the console's timings.
func uptime() string {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return "?"
	}
	f, _, _ := strings.Cut(string(b), " ")
	return f + "s"
}

func run(con io.Writer) error {
	logf := func(format string, args ...any) {
		fmt.Fprintf(con, "wfplab [%s]: %s\n", uptime(), fmt.Sprintf(format, args...))
	}
	cmdline, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return err
	}
	def := Params{Noise: true, Seed: 1, State: "/dev/vda"}
	if b, err := os.ReadFile(defaultFile); err == nil {
		def.Target = strings.TrimSpace(string(b))
	}
	p, err := ParseCmdline(string(cmdline), def)
	if err != nil {
		return err
	}
	o, err := contract.LookupOS(p.Target)
	if err != nil {
		return fmt.Errorf("wfplab.target: %w", err)
	}
	logf("simulated %s (%s %s) booting", o.Name, o.Product, o.Arch)
	if err := loadModules(logf); err != nil {
		return err
	}
	nics, err := setupNetwork(logf)
	if err != nil {
		return err
	}

	var disk *StateDisk
	var dev *os.File
	if p.State != "none" {
		if dev, disk, err = openStateDisk(p.State); err != nil {
			logf("no state disk (%v): nothing the guest does survives a reboot", err)
		}
	}
	s := &saver{disk: disk, dev: dev, logf: logf, kick: make(chan struct{}, 1)}
	cfg := sim.DefaultConfig()
	cfg.Seed, cfg.Noise, cfg.HangPoolBytes = p.Seed, p.Noise, p.HangPoolMB<<20
	cfg.InVM, cfg.ListenHost = true, "0.0.0.0"
	cfg.TrafficPorts = kernel.Ports{Stream: StreamPort, Forward: ForwardPort, Control: ControlPort}
	cfg.Logf = logf
	cfg.ExtraNICs = nics
	cfg.StateChanged = s.changed
	cfg.PowerCycle = s.powerCycle
	g, err := sim.NewMachine(sim.MachineSpec{Name: o.Name, OS: o}, cfg)
	if err != nil {
		return err
	}
	s.g = g
	if disk != nil {
		switch state, err := disk.Load(); {
		case errors.Is(err, ErrNoState):
			logf("state disk %s is blank: a fresh install", p.State)
		case err != nil:
			logf("state disk %s unreadable (%v): starting as a fresh install", p.State, err)
		default:
			if err := g.LoadState(state); err != nil {
				logf("%v: starting as a fresh install", err)
			} else {
				logf("state loaded from %s (%d bytes)", p.State, len(state))
			}
		}
	}
	if err := g.Start(netip.AddrPortFrom(netip.IPv4Unspecified(), WinRMPort)); err != nil {
		return err
	}
	go s.loop()
	go watchWinRM(fmt.Sprintf("http://127.0.0.1:%d/wsman", WinRMPort), watchdogEvery, watchdogTimeout, watchdogMisses, func(why string) {
		if p.HangPoolMB > 0 {
			why += fmt.Sprintf("; wfplab.hang_pool_mb=%d is set, so this may be the hang asked for", p.HangPoolMB)
		}
		reportStall(why)
	})
	watchPowerButton(func() { s.powerCycle(false) }, logf)
	logf("WinRM on :%d, stream tcp :%d, control udp :%d (user vagrant)", WinRMPort, StreamPort, ControlPort)
	return nil
}

// loadModules loads the initramfs' modules in the order the builder wrote.
func loadModules(logf func(string, ...any)) error {
	order, err := os.ReadFile(orderFile)
	if err != nil {
		return fmt.Errorf("modules: %w", err)
	}
	for _, name := range strings.Fields(string(order)) {
		path := modulesDir + "/" + name
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("modules: %w", err)
		}
		err = unix.FinitModule(int(f.Fd()), "", 0)
		f.Close()
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("modules: finit_module %s: %w (see the kernel's messages above)", name, err)
		}
	}
	logf("modules loaded: %s", strings.Join(strings.Fields(string(order)), " "))
	return nil
}

func openStateDisk(path string) (*os.File, *StateDisk, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, nil, err
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	d, err := OpenStateDisk(f, f, size)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, d, nil
}

// saver writes the machine's state to the state disk: shortly after commands (coalesced),
// and at once before a reboot or power-off.
type saver struct {
	g    *sim.Machine
	disk *StateDisk
	dev  *os.File
	logf func(string, ...any)
	kick chan struct{}
	mu   sync.Mutex
	last []byte
}

// saveDelay coalesces the saves of a burst of commands (an upload is many).
const saveDelay = 500 * time.Millisecond

func (s *saver) changed() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *saver) loop() {
	for range s.kick {
		time.Sleep(saveDelay)
		select { // what arrived while sleeping is in this save
		case <-s.kick:
		default:
		}
		if err := s.save(); err != nil {
			s.logf("saving state: %v", err)
		}
	}
}

func (s *saver) save() error {
	if s.disk == nil || s.g == nil {
		return nil
	}
	state, err := s.g.SaveState()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if string(state) == string(s.last) {
		return nil
	}
	if err := s.disk.Save(state); err != nil {
		return err
	}
	s.last = state
	return nil
}

// powerCycle is the simulated shutdown made real: save, sync, reboot(2) or power off.
func (s *saver) powerCycle(reboot bool) {
	if err := s.save(); err != nil {
		s.logf("saving state before the power cycle: %v (the next boot starts from the last good save)", err)
	}
	unix.Sync()
	cmd, what := unix.LINUX_REBOOT_CMD_POWER_OFF, "powering off"
	if reboot {
		cmd, what = unix.LINUX_REBOOT_CMD_RESTART, "rebooting"
	}
	s.logf("%s (reboot(2))", what)
	if err := unix.Reboot(cmd); err != nil {
		fatal(os.Stderr, fmt.Errorf("reboot(2): %w", err))
	}
}
