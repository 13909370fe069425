package qemu

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/wfplab/wfplab/lab/contract"
)

// Accelerators a Machine may ask for.
const (
	AccelAuto = "auto"
	AccelKVM  = "kvm"
	AccelTCG  = "tcg"
)

// Defaults for fields left zero.
const (
	DefaultMemoryMB    = 512
	DefaultCPUs        = 1
	DefaultWinRMPort   = 5985
	DefaultStreamPort  = 5001
	DefaultControlPort = 5002
	// DefaultForwardPort is the UDP port of the forward path's destination (behind the guest).
	DefaultForwardPort = 5003
	DefaultBootTimeout = 5 * time.Minute
	// DefaultKVMProbe bounds how long accel auto waits for a KVM guest's WinRM. An appliance
	// answers within seconds under working KVM (13.7 s under TCG, measured here); Windows
	// images boot slower, so raise it (or set accel: kvm) for them.
	DefaultKVMProbe = 60 * time.Second
	// DefaultKVMSilence: under accel auto with a direct kernel boot, a KVM guest that has
	// written nothing to its serial console after this long is taken as stuck. Measured
	// here: Debian's kernel prints its banner 4.1 s after QEMU starts under TCG, and nothing
	// in 25 s under the nested KVM that hangs.
	DefaultKVMSilence = 15 * time.Second
	// DefaultPowerdownWait is how long Down waits after system_powerdown before quit.
	DefaultPowerdownWait = 5 * time.Second
	// qemuOverheadMB is what one QEMU process costs on top of its guest memory (measured
	// order: 40-70 MB RSS for TCG with 512 MB guests); the memory budget counts it.
	qemuOverheadMB = 64
)

// GuestPorts are the guest-side ports NIC 1 forwards from the host.
type GuestPorts struct {
	WinRM   int // TCP, default 5985
	Stream  int // TCP, default 5001
	Control int // UDP, default 5002
}

// Machine is one target's virtual machine.
type Machine struct {
	Name string // target name, unique in the run; names the vm folder
	OS   string // catalog name, e.g. "win7-x64"
	// Image is the base disk (qcow2 or raw). It is never written: the VM runs on an overlay.
	// Optional when Kernel is set.
	Image string
	// Direct kernel boot (the appliance): Kernel is required for it, Initrd and Append optional.
	Kernel, Initrd, Append string
	MemoryMB               int    // default 512
	CPUs                   int    // default 1
	Accel                  string // auto (default), kvm or tcg
	// CPU is QEMU's -cpu model; empty keeps QEMU's default. Note -cpu host aborts under the
	// nested KVM of the project's machines.
	CPU string
	// StateDiskMB > 0 attaches a blank raw disk of that size as virtio-blk, for appliances
	// that keep state across reboots. Every run starts with a blank one.
	StateDiskMB int
	// DiskInterface is how Image is attached: "ide" (default; Vista/7 have no inbox virtio
	// storage driver) or "virtio".
	DiskInterface string
	// NICModel is the device of all NICs: "virtio-net-pci" (default) or e.g. "e1000" for
	// Windows images without virtio drivers.
	NICModel   string
	GuestPorts GuestPorts
	// Creds is the guest account, resolved by the caller. It is never put on QEMU's
	// command line.
	Creds contract.Credentials
	// ForwardLinks adds NIC 2 and NIC 3 on dgram netdevs for the forward path.
	ForwardLinks bool
	// ForwardPort is the UDP destination port of the forward path (default 5003).
	ForwardPort int
	// ProbeTimeout bounds accel auto's KVM trial (default DefaultKVMProbe).
	ProbeTimeout time.Duration
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// withDefaults fills zero fields.
func (m Machine) withDefaults() Machine {
	if m.MemoryMB == 0 {
		m.MemoryMB = DefaultMemoryMB
	}
	if m.CPUs == 0 {
		m.CPUs = DefaultCPUs
	}
	if m.Accel == "" {
		m.Accel = AccelAuto
	}
	if m.DiskInterface == "" {
		m.DiskInterface = "ide"
	}
	if m.NICModel == "" {
		m.NICModel = "virtio-net-pci"
	}
	if m.GuestPorts.WinRM == 0 {
		m.GuestPorts.WinRM = DefaultWinRMPort
	}
	if m.GuestPorts.Stream == 0 {
		m.GuestPorts.Stream = DefaultStreamPort
	}
	if m.GuestPorts.Control == 0 {
		m.GuestPorts.Control = DefaultControlPort
	}
	if m.ForwardPort == 0 {
		m.ForwardPort = DefaultForwardPort
	}
	if m.ProbeTimeout == 0 {
		m.ProbeTimeout = DefaultKVMProbe
	}
	return m
}

// validate reports every problem of a defaulted Machine in one error.
func (m Machine) validate() error {
	var p []string
	if !namePattern.MatchString(m.Name) {
		p = append(p, fmt.Sprintf("name %q must be 1-64 letters, digits, '.', '_' or '-' (it names a folder)", m.Name))
	}
	if m.OS == "" {
		p = append(p, "no os (a catalog name such as win7-x64)")
	} else if _, err := contract.LookupOS(m.OS); err != nil {
		p = append(p, err.Error())
	}
	if m.Image == "" && m.Kernel == "" {
		p = append(p, "neither image nor kernel: give a base image, or a kernel for direct boot")
	}
	if m.Kernel == "" && (m.Initrd != "" || m.Append != "") {
		p = append(p, "initrd/append given without kernel")
	}
	for _, f := range []struct{ what, path string }{{"image", m.Image}, {"kernel", m.Kernel}, {"initrd", m.Initrd}} {
		if f.path == "" {
			continue
		}
		if st, err := os.Stat(f.path); err != nil {
			p = append(p, fmt.Sprintf("%s: %v", f.what, err))
		} else if st.IsDir() {
			p = append(p, fmt.Sprintf("%s %s is a directory, not a file", f.what, f.path))
		}
	}
	if m.MemoryMB < 32 || m.MemoryMB > 1<<20 {
		p = append(p, fmt.Sprintf("memory_mb %d is not in 32..1048576", m.MemoryMB))
	}
	if m.CPUs < 1 || m.CPUs > 64 {
		p = append(p, fmt.Sprintf("cpus %d is not in 1..64", m.CPUs))
	}
	switch m.Accel {
	case AccelAuto, AccelKVM, AccelTCG:
	default:
		p = append(p, fmt.Sprintf("accel %q: use auto, kvm or tcg", m.Accel))
	}
	switch m.DiskInterface {
	case "ide", "virtio":
	default:
		p = append(p, fmt.Sprintf("disk interface %q: use ide or virtio", m.DiskInterface))
	}
	if strings.ContainsAny(m.NICModel, ", ") {
		p = append(p, fmt.Sprintf("nic model %q must be a bare QEMU device name", m.NICModel))
	}
	if m.StateDiskMB < 0 || m.StateDiskMB > 1<<20 {
		p = append(p, fmt.Sprintf("state disk %d MB is not in 0..1048576", m.StateDiskMB))
	}
	for _, port := range []int{m.GuestPorts.WinRM, m.GuestPorts.Stream, m.GuestPorts.Control, m.ForwardPort} {
		if port < 1 || port > 65535 {
			p = append(p, fmt.Sprintf("guest port %d is not in 1..65535", port))
		}
	}
	if m.Creds.User == "" {
		p = append(p, "no guest user")
	}
	if m.ProbeTimeout < 0 {
		p = append(p, "negative probe timeout")
	}
	if len(p) > 0 {
		return errors.New(strings.Join(p, "; "))
	}
	return nil
}

// Config is the provider's settings.
type Config struct {
	RunDir     string // results/<run-id>; VMs live under RunDir/vm/<target>/
	QemuBinary string // default qemu-system-x86_64
	QemuImg    string // default qemu-img
	// MemoryBudgetMB caps what all VMs together may use (guest memory plus QEMU's
	// overhead); a target that does not fit fails. Default: half of MemAvailable.
	MemoryBudgetMB int
	BootTimeout    time.Duration // WinRM must answer within it; default 5 min
	KeepVMs        bool          // keep overlays and state disks after Down
	// PowerdownWait is how long Down waits for an ACPI shutdown before quit (default 5 s).
	PowerdownWait time.Duration
	// AccelCacheDir holds accel auto's decision across runs, keyed by QEMU version and host
	// kernel release. Empty: os.UserCacheDir()/wfplab. "off": no cache.
	AccelCacheDir string
	Logf          func(format string, args ...any)
}

func (c Config) withDefaults() Config {
	if c.QemuBinary == "" {
		c.QemuBinary = "qemu-system-x86_64"
	}
	if c.QemuImg == "" {
		c.QemuImg = "qemu-img"
	}
	if c.BootTimeout == 0 {
		c.BootTimeout = DefaultBootTimeout
	}
	if c.PowerdownWait == 0 {
		c.PowerdownWait = DefaultPowerdownWait
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	if c.MemoryBudgetMB == 0 {
		if avail, err := memAvailableMB("/proc/meminfo"); err == nil {
			c.MemoryBudgetMB = avail / 2
		} else {
			c.Logf("qemu: %v; memory budget set to %d MB", err, 2*DefaultMemoryMB)
			c.MemoryBudgetMB = 2 * DefaultMemoryMB
		}
	}
	if c.RunDir != "" {
		if abs, err := filepath.Abs(c.RunDir); err == nil {
			c.RunDir = abs
		}
	}
	return c
}

// memAvailableMB reads MemAvailable from a meminfo file.
func memAvailableMB(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("reading available memory: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemAvailable:" {
			kb, err := strconv.Atoi(fields[1])
			if err != nil {
				return 0, fmt.Errorf("reading available memory: %s: bad MemAvailable %q", path, fields[1])
			}
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("reading available memory: no MemAvailable line in %s", path)
}
