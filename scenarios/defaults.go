package scenarios

import (
	"time"

	"github.com/wfplab/wfplab/lab/contract"
)

// Names the schema knows.
const (
	ProviderSim     = "sim"
	ProviderVagrant = "vagrant"
	ProviderStatic  = "static"
	ProviderQEMU    = "qemu"

	AccelAuto = "auto" // KVM when guests make progress under it, else TCG
	AccelKVM  = "kvm"
	AccelTCG  = "tcg"

	PhaseBefore = "before"
	PhaseAfter  = "after" // installs the hotfix and reboots first

	KindStreamBurst     = "stream-burst"
	KindFragmentForward = "fragment-forward"
	KindSingleNBL       = "single-nbl"

	VerdictLeak         = "LEAK"
	VerdictClean        = "CLEAN"
	VerdictInconclusive = "INCONCLUSIVE"

	// DefaultScenario is the built-in scenario `wfplab run` uses without --scenario.
	DefaultScenario = "kb979223"
)

var (
	providerKinds = []string{ProviderSim, ProviderQEMU, ProviderVagrant, ProviderStatic}
	accels        = []string{AccelAuto, AccelKVM, AccelTCG}
	phaseNames    = []string{PhaseBefore, PhaseAfter}
	profileKinds  = []string{KindStreamBurst, KindFragmentForward, KindSingleNBL}
	verdicts      = []string{VerdictLeak, VerdictClean, VerdictInconclusive}
)

// Defaults for fields a scenario leaves out.
const (
	DefaultSimRebootDown = 3 * time.Second
	DefaultVagrantDir    = "vagrant"
	DefaultUserEnv       = "WFPLAB_USER"
	DefaultPasswordEnv   = "WFPLAB_PASSWORD"
	DefaultRebootTimeout = 5 * time.Minute

	// Timing defaults suit real guests; the built-in simulated scenario sets shorter ones.
	DefaultWarmup         = 10 * time.Second
	DefaultWindow         = 60 * time.Second
	DefaultSettle         = 5 * time.Second
	DefaultSampleInterval = time.Second
	DefaultSampleTimeout  = 10 * time.Second

	DefaultThresholdBps = 4096
	// DefaultThresholdPerChain is well under one leaked NBL (352-576 B) and well over the
	// dose estimate's noise in a 12 s window (go test -bench Power ./bench).
	DefaultThresholdPerChain = 128
	DefaultConfidence        = 0.95

	DefaultBurstSegments = 8
	DefaultConns         = 4

	// Throughput is off unless a scenario asks for it; these fill what its block leaves out.
	DefaultThroughputWindows = 6
	DefaultThroughputWindow  = 10 * time.Second
	DefaultThroughputSettle  = time.Second
	DefaultMaxLoss           = 0.05
	DefaultAlpha             = 0.05
	// MinThroughputWindows: fewer cannot show a difference at alpha 0.05 with a U test.
	MinThroughputWindows = 6
	maxThroughputWindows = 100
)

// Payload limits that keep each profile on its path: a fragment-forward datagram must
// not fit one 1500-byte Ethernet frame (20-byte IP + 8-byte UDP headers), a single-nbl one must.
const (
	maxUnfragmentedUDP = 1500 - 20 - 8
	maxUDPPayload      = 65507
	maxStreamPayload   = 65535
	maxRate            = 1e7 // packets/s; far above what any guest takes, catches typos
	maxBurstSegments   = 64
	maxConns           = 64
	maxTargets         = 256
	maxProfiles        = 32
	maxExpectations    = 1024
)

// ProfileDefaults returns the profile a kind gets when the scenario sets nothing but the kind.
func ProfileDefaults(kind string) (Profile, bool) {
	switch kind {
	case KindStreamBurst:
		return Profile{Name: kind, Kind: kind, Rate: 2000, PayloadBytes: 1460,
			BurstSegments: DefaultBurstSegments, Conns: DefaultConns}, true
	case KindFragmentForward:
		return Profile{Name: kind, Kind: kind, Rate: 500, PayloadBytes: 4000}, true
	case KindSingleNBL:
		return Profile{Name: kind, Kind: kind, Rate: 2000, PayloadBytes: 64}, true
	}
	return Profile{}, false
}

func defaultProfiles() []Profile {
	out := make([]Profile, 0, len(profileKinds))
	for _, k := range profileKinds {
		p, _ := ProfileDefaults(k)
		out = append(out, p)
	}
	return out
}

func defaultPhases() []Phase {
	return []Phase{{Name: PhaseBefore}, {Name: PhaseAfter, InstallHotfix: true}}
}

func defaultTiming() Timing {
	return Timing{Warmup: DefaultWarmup, Window: DefaultWindow, Settle: DefaultSettle, SampleInterval: DefaultSampleInterval, SampleTimeout: DefaultSampleTimeout}
}

// QEMU defaults.
const (
	DefaultQEMUMemoryMB    = 512
	DefaultQEMUCPUs        = 1
	DefaultQEMUBootTimeout = 5 * time.Minute
	DefaultWinRMPort       = 5985 // WinRM 2.0; WinRM 1.1 guests (stock Vista/2008) listen on 80
)

// WinRM's listener ports by version (docs/winrm.md): WinRM 2.0 (7, 2008 R2, and Vista or
// 2008 with WMF 2.0) listens on 5985, or 5986 for HTTPS; WinRM 1.1 (stock Vista and 2008)
// on 80, or 443.
const (
	WinRM2HTTPPort   = 5985
	WinRM2HTTPSPort  = 5986
	WinRM11HTTPPort  = 80
	WinRM11HTTPSPort = 443
)

// DefaultPort is a static target's WinRM port when the scenario gives none: the stock
// listener of the OS's WinRM (1.1 on 6.0, Vista and Server 2008). 0 for an unknown OS.
func DefaultPort(osName string, https bool) int {
	o, err := contract.LookupOS(osName)
	switch {
	case err != nil:
		return 0
	case o.Version == "6.0" && https:
		return WinRM11HTTPSPort
	case o.Version == "6.0":
		return WinRM11HTTPPort
	case https:
		return WinRM2HTTPSPort
	}
	return WinRM2HTTPPort
}
