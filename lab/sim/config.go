package sim

import (
	"fmt"
	"hash/fnv"
	"net/netip"
	"strings"
	"time"

	"github.com/wfplab/wfplab/lab/contract"
	"github.com/wfplab/wfplab/lab/sim/kernel"
)

// Config configures simulated guests. Zero fields take the defaults noted; Noise is a plain
// bool, so a zero Config has noise off: start from DefaultConfig for the model's defaults.
type Config struct {
	// Seed is the run seed; each guest derives its own from it and its name.
	Seed int64
	// RebootDown is how long a rebooting guest stays down (WinRM refusing). Default 3 s.
	RebootDown time.Duration
	// ShutdownDelay is how long after `shutdown /r /t 0` answers the guest goes down.
	// Default 300 ms: long enough for the client to collect the answer.
	ShutdownDelay time.Duration
	// Noise turns on background pool noise and in-flight receive buffers (kernel.Config.Noise).
	Noise bool
	// User and Password are the WinRM account. Default vagrant / vagrant.
	User     string
	Password string
	// ListenHost is the loopback address every socket binds to. Default 127.0.0.1.
	ListenHost string
	// InitialUptime is how long the guest claims to have been up when it first starts.
	InitialUptime time.Duration
	// Model are the kernel model's parameters; zero fields take kernel.DefaultParams.
	Model kernel.Params
	// DiskBytes bounds the simulated disk's file data. Default 1 GiB.
	DiskBytes int64
	// Logf, when set, receives guest events (boots, shutdowns). Never passwords.
	Logf func(format string, args ...any)
	// ExtraNICs are network adapters beyond the first (which WinRM reaches): getmac lists
	// them and netsh configures them. None by default; the appliance passes its eth1 and eth2.
	ExtraNICs []NIC

	// WinRMAuth is what the WinRM service accepts: "" Basic and NTLM (a prepared Vagrant box),
	// contract.AuthBasic Basic only, contract.AuthNTLM NTLM (Negotiate) only, as Windows
	// ships with Basic off. Target() tells the lab NTLM only in the last case.
	WinRMAuth string
	// HTTPS makes WinRM listen with TLS, its certificate (for ListenHost, HTTPSAddrs and
	// localhost) signed by HTTPSCA or else a CA the guest makes when created
	// (Machine.CACertPEM), as a lab that runs its own CA does. Target() carries that CA.
	// WinRM 1.1 guests speak TLS 1.0 only.
	HTTPS bool
	// HTTPSCA, when set, issues the guest's certificate instead of a CA of the guest's own,
	// as a lab CA issues its boxes' certificates before the machines exist.
	HTTPSCA *CA
	// HTTPSAddrs are addresses the certificate names besides ListenHost, e.g. 127.0.0.1 for
	// a guest the host reaches through a forwarded port.
	HTTPSAddrs []netip.Addr
	// WinRMVersion is "1.1" or "2.0"; "" is the OS's own (1.1 on Vista and Server 2008,
	// which ship it; "2.0" there is such a guest with WMF 2.0).
	WinRMVersion string
	// ServeCAFile is where Serve writes the guest's CA certificate (PEM) when HTTPS is on,
	// for the lab's ca_file.
	ServeCAFile string

	// WusaRefusesRemote makes wusa refuse a remote (WinRM) logon with 0x80070005, as Windows
	// Update does on some releases (docs/windows.md); run as SYSTEM by a scheduled task
	// (schtasks), it installs. Off: wusa installs over WinRM too.
	WusaRefusesRemote bool

	// Unelevated makes the WinRM user's token a filtered one, as UAC gives a local
	// administrator over the network without LocalAccountTokenFilterPolicy: `net session`
	// answers "System error 5", and what needs an administrator (sc, reg add under HKLM,
	// netsh advfirewall, netsh interface set, winrm set/create/quickconfig, net start,
	// bcdedit /set) is denied.
	Unelevated bool
	// NetworkPublic makes a network connection's type Public: `winrm quickconfig` then
	// refuses to make the firewall exception (0x80338169), as Windows does.
	NetworkPublic bool
	// FirewallStopped: the Windows Firewall service is not running, so every `netsh
	// advfirewall` command fails, as it does when the service is stopped or disabled.
	FirewallStopped bool

	// HangPoolBytes, when set, makes the guest stop answering once its nonpaged pool passes
	// it, as Windows does when the leak exhausts pool: WinRM holds every request (new and
	// open connections alike) and samplers stop, until the next boot. 0: never.
	HangPoolBytes uint64
	// Faults are failures injected on purpose (contract.Faults); a MachineSpec's own, when
	// set, replace these. hang_pool_mb sets HangPoolBytes.
	Faults contract.Faults

	// Patched makes the guest start with KB979223 already installed (the fixed netio.sys,
	// and on 6.0 the fixed tcpip.sys and fwpkclnt.sys), as a real lab's guest may be.
	Patched bool

	// The fields below serve `wfplab sim appliance` (package appliance), where the guest runs
	// alone inside a VM as its /init. Leave them zero on a host.

	// InVM lets ListenHost and the WinRM address be any address (e.g. 0.0.0.0, the VM's NIC).
	InVM bool
	// TrafficPorts fixes the traffic sockets' ports; 0 picks ephemeral ones.
	TrafficPorts kernel.Ports
	// PowerCycle, when set, replaces the in-process power cycle: after `shutdown` the guest
	// goes down and then PowerCycle(reboot) is called instead of booting again in-process.
	PowerCycle func(reboot bool)
	// StateChanged, when set, is called after every WinRM command ends: the persistent state
	// (SaveState) may have changed.
	StateChanged func()
}

// DefaultConfig is the model's default configuration: noise on, 3 s reboots.
func DefaultConfig() Config {
	return Config{Noise: true}.withDefaults()
}

func (c Config) withDefaults() Config {
	if c.RebootDown <= 0 {
		c.RebootDown = 3 * time.Second
	}
	if c.ShutdownDelay <= 0 {
		c.ShutdownDelay = 300 * time.Millisecond
	}
	if c.User == "" {
		c.User = "vagrant"
	}
	if c.Password == "" {
		c.Password = "vagrant"
	}
	if c.ListenHost == "" {
		c.ListenHost = "127.0.0.1"
	}
	c.Model = c.Model.WithDefaults()
	return c
}

// listenAddr parses ListenHost and insists on loopback (outside a VM).
func (c Config) listenAddr() (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.Trim(c.ListenHost, "[]"))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("sim: listen host %q is not an IP address: use 127.0.0.1 or ::1", c.ListenHost)
	}
	if !a.IsLoopback() && !c.InVM {
		return netip.Addr{}, fmt.Errorf("sim: listen host %s is not a loopback address: the simulated guests listen on loopback only", a)
	}
	return a.Unmap(), nil
}

// MachineSpec is one simulated guest to bring up.
type MachineSpec struct {
	Name string      // unique within the provider; also the base of the computer name
	OS   contract.OS // a catalog entry
	// Faults, when any is set, replace Config.Faults for this guest.
	Faults contract.Faults
}

// guestSeed mixes the run seed with the guest's name, so guests differ and runs repeat.
func guestSeed(seed int64, name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	x := uint64(seed) ^ h.Sum64()
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	return int64(x)
}

// computerName turns a guest name into a NetBIOS-safe host name of at most 15 characters.
func computerName(name string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-':
			b.WriteRune(r)
		case r == '_' || r == '.' || r == ' ':
			b.WriteByte('-')
		}
		if b.Len() == 15 {
			break
		}
	}
	s := strings.Trim(b.String(), "-")
	if s == "" {
		return "WFPLAB-SIM"
	}
	return s
}
