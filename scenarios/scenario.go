package scenarios

import (
	"net/netip"
	"time"

	"github.com/wfplab/wfplab/lab/contract"
)

// Scenario is one validated scenario file.
type Scenario struct {
	Name        string
	Description string
	Source      string // file path, or "builtin:<name>"
	Provider    ProviderSpec
	Targets     []TargetSpec
	Lab         Lab
	Phases      []Phase
	Timing      Timing
	Profiles    []Profile
	Verdict     VerdictRule
	Expect      []Expectation
	Throughput  Throughput

	text  []byte         // the file as read, for run.json; nil when built in code
	lines map[string]int // field path -> line in text, for validation messages
}

// ProviderSpec says where guests come from.
type ProviderSpec struct {
	Kind string // "sim", "vagrant" or "static"
	// Sim: seconds a simulated reboot keeps WinRM down; noise on/off.
	SimRebootDown time.Duration
	SimNoise      bool
	// SimHotfixLoss is the share of the driver's chains a simulated patched netio.sys passes
	// without calling the callout: a hotfix that costs throughput, to see it flagged (0: none).
	SimHotfixLoss float64
	// Vagrant: the folder holding the Vagrantfile, the CLI (a name on PATH or a path; ""
	// vagrant), the hypervisor `vagrant up --provider` gets ("": Vagrant's default) and the
	// snapshot every run starts from ("": clean).
	VagrantDir      string
	VagrantCLI      string
	VagrantProvider string
	VagrantSnapshot string
	// QEMU: memory all VMs may take at once (0: half of what the host has available),
	// how long a VM may take to answer WinRM, and the kernel appliances boot ("": the
	// Debian package, fetched and cached).
	QEMUMemoryBudgetMB int
	QEMUBootTimeout    time.Duration
	ApplianceKernel    string
	// Static: hosts are on each Target.
}

// TargetSpec is one guest of the scenario.
type TargetSpec struct {
	Name string // unique name, used in reports
	OS   string // catalog key (lab.LookupOS)
	// Static provider only: WinRM endpoint and traffic addresses.
	Host     string
	Port     int
	HTTPS    bool
	Insecure bool
	// Static and Vagrant: WinRM authentication (contract.AuthBasic or AuthNTLM; "" basic)
	// and, with HTTPS, a PEM file of the CA that signed the guest's certificate.
	Auth          string
	CAFile        string
	UserEnv       string // environment variable holding the user name (default WFPLAB_USER)
	PasswordEnv   string // environment variable holding the password (default WFPLAB_PASSWORD)
	PasswordFile  string // or a file holding it
	StreamPort    int
	ControlPort   int
	ForwardDest   netip.AddrPort
	ForwardPrefix netip.Prefix
	// QEMU provider only (credentials above apply too). Image is the base disk (qcow2 or
	// raw), never written: each run boots an overlay. Appliance boots a simulated guest of
	// OS as a micro-VM instead. Kernel/Initrd/Append boot a kernel directly.
	Image     string
	Appliance bool
	Kernel    string
	Initrd    string
	Append    string
	MemoryMB  int
	CPUs      int
	Accel     string // auto, kvm or tcg
	WinRMPort int    // the guest's WinRM port (5985; 80 for WinRM 1.1)
	// HangPoolMB makes an appliance stop answering once its simulated nonpaged pool passes
	// it, as Windows does when the leak exhausts pool (0: never): to test hang handling.
	HangPoolMB int
	// Faults are failures a simulated guest (provider kind sim) injects on purpose, to test
	// that the lab survives them; see contract.Faults.
	Faults contract.Faults
}

// Lab holds run-wide settings.
type Lab struct {
	// Allow lists the networks traffic may go to; loopback is always allowed.
	Allow []netip.Prefix
	// HotfixDir holds the KB979223 MSU packages for real guests.
	HotfixDir string
	// RebootTimeout bounds one reboot (default 5m).
	RebootTimeout time.Duration
}

// Phase is "before" (as installed) or "after" (hotfix installed and rebooted).
type Phase struct {
	Name          string
	InstallHotfix bool
}

// Timing of each phase.
type Timing struct {
	Warmup         time.Duration // quiet sampling before the first profile
	Window         time.Duration // each profile's traffic time
	Settle         time.Duration // start of each window left out of the estimate
	SampleInterval time.Duration
	// SampleTimeout is how long a guest may send no sample before the runner asks whether
	// it still answers; silent for two of them, it is GUEST_HUNG.
	SampleTimeout time.Duration
	// Block switches each window's traffic on and off in turn, block long, so that time
	// and the chains the driver blocks separate and the leak is judged in bytes per chain.
	// 0: traffic runs throughout and the leak is judged as a rate.
	Block time.Duration
}

// Throughput says how each phase measures throughput after its leak windows: the driver
// permits and counts instead of blocking, and each profile is offered at Rate in Windows
// windows of Window each; before and after are then compared window by window.
type Throughput struct {
	Windows int           // windows per profile and phase; 0 turns throughput off
	Window  time.Duration // each window's length
	Settle  time.Duration // start of each window left out of its figures
	Rate    float64       // packets/s offered to every profile (the ceiling); 0: each profile's own rate
	// MaxLoss is the share the median may fall after the hotfix before it is a regression,
	// when the fall is also significant at Alpha (Mann-Whitney U).
	MaxLoss float64
	Alpha   float64
}

// On says whether the scenario measures throughput.
func (t Throughput) On() bool { return t.Windows > 0 }

// RateFor is what a throughput window offers profile p, in its packets/s.
func (t Throughput) RateFor(p Profile) float64 {
	if t.Rate > 0 {
		return t.Rate
	}
	return p.Rate
}

// Profile is one traffic profile of the scenario.
type Profile struct {
	Name          string // unique within the scenario, e.g. "stream-burst"
	Kind          string // "stream-burst", "fragment-forward" or "single-nbl"
	Rate          float64
	PayloadBytes  int
	BurstSegments int
	Conns         int
}

// VerdictRule turns an estimate into LEAK, CLEAN or INCONCLUSIVE.
type VerdictRule struct {
	// Threshold is the smallest leak rate, in bytes/s, that matters: LEAK when the
	// confidence interval lies above it, CLEAN when it lies below it.
	ThresholdBps float64
	// ThresholdPerChain is the same in bytes per blocked chain, for windows whose traffic
	// pauses in blocks (Timing.Block).
	ThresholdPerChain float64
	Confidence        float64 // e.g. 0.95
}

// Expectation says what verdict a cell must reach. Empty Target, Phase or Profile match all.
type Expectation struct {
	Target  string
	Phase   string
	Profile string
	Verdict string // "LEAK", "CLEAN" or "INCONCLUSIVE"
	Line    int    // line in the scenario file, for messages
}

// Cell is one target × phase × profile with its expected verdict ("" when none).
type Cell struct {
	Target  TargetSpec
	Phase   Phase
	Profile Profile
	Expect  string
	// ExpectLine is the line of the expectation that set Expect (0 when none), for reports.
	ExpectLine int
}
