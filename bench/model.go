package bench

import "time"

// Verdict is the outcome of one cell.
type Verdict string

const (
	Leak         Verdict = "LEAK"
	Clean        Verdict = "CLEAN"
	Inconclusive Verdict = "INCONCLUSIVE"
	// Incomplete is a cell whose window did not run to its end (the run was interrupted,
	// the guest hung, the sampler ended) or never ran: part of a window proves nothing
	// either way, so it gets no verdict, and it neither meets nor fails an expectation.
	Incomplete Verdict = "INCOMPLETE"
)

// RunInfo describes a run.
type RunInfo struct {
	ID           string
	Scenario     string // scenario name
	ScenarioText string // the scenario as run (YAML)
	Provider     string
	Seed         int64
	Tool         string // wfplab version
	Started      time.Time
	Finished     time.Time // zero while running, or if the run was killed
}

// TargetInfo is one target of a run, as the lab found it.
type TargetInfo struct {
	Name    string
	OS      string // catalog key
	Product string
	Arch    string
}

// PhaseInfo is one phase on one target.
type PhaseInfo struct {
	Target  string
	Phase   string
	OSBuild string
	Netio   string // netio.sys version in force during the phase
	Hotfix  string // contract.HotfixState of that version
	Started time.Time
	Ended   time.Time
}

// Window is a stretch of a phase: "warmup" or a profile name.
type Window struct {
	Target  string
	Phase   string
	Profile string
	Start   time.Time
	End     time.Time
}

// PoolPoint is one sample's pool and driver totals.
type PoolPoint struct {
	Target     string
	Phase      string
	At         time.Time // host time the sample arrived
	GuestUS    uint64
	Seq        uint64
	NPBytes    uint64
	NPAllocs   uint64
	NPFrees    uint64
	Blocked    uint64 // chains blocked, all layers
	MultiChain uint64 // chains seen with more than one NBL, all layers, blocked or not
	NBLs       uint64
	// MultiBlocked is the multi-NBL chains the driver blocked, all layers; only a version 2
	// driver reports it (HasMultiBlocked).
	MultiBlocked    uint64
	HasMultiBlocked bool
}

// TagPoint is one tag's nonpaged usage at a sample.
type TagPoint struct {
	Target string
	Phase  string
	At     time.Time
	Tag    string
	Bytes  uint64
	Allocs uint64
	Frees  uint64
}

// Event is something that happened: a reboot, an install, an error.
type Event struct {
	Target  string
	Phase   string
	At      time.Time
	Kind    string // e.g. "reboot", "hotfix", "driver", "error", "traffic"
	Message string
}

// TrafficPoint is one second of generated traffic.
type TrafficPoint struct {
	Target  string
	Phase   string
	Profile string
	At      time.Time
	Packets uint64
	Bytes   uint64
	Bursts  uint64
	Errors  uint64        // send errors; stream resets are not counted here (the traffic table keeps them apart)
	Span    time.Duration // time the second covers: 1s, or less for a run's last tick (added)
	// The forward path through frame links (schema 2; zero otherwise): Ethernet frames sent,
	// and what the guest forwarded: frames, whole datagrams, their payload bytes.
	Frames, ForwardedFrames, ForwardedDatagrams, ForwardedBytes uint64
}

// Estimate is a slope with its confidence interval.
type Estimate struct {
	Slope float64 // bytes per second
	Lo    float64
	Hi    float64
	N     int     // samples used
	NEff  float64 // effective sample size after autocorrelation
}

// TagGrowth is a tag's growth over a window.
type TagGrowth struct {
	Tag   string
	Bytes int64
}

// CellResult is the analysis of one target × phase × profile.
type CellResult struct {
	Target        string
	Phase         string
	Profile       string
	Leak          Estimate
	ChainsPerSec  float64 // multi-NBL chains blocked per second (seen, from a version 1 driver: see the note)
	PacketsPerSec float64 // traffic achieved
	BytesPerChain float64 // leak rate / multi-NBL chain rate; NaN when no multi-NBL chains
	TopTags       []TagGrowth
	Verdict       Verdict
	Expected      Verdict // "" when the scenario expects nothing
	Met           bool
	Note          string
	// Dose is the bytes-per-chain fit of a window whose traffic paused in blocks; nil
	// otherwise. Then Leak is Dose at the chain rate (NEff holds its degrees of freedom)
	// and BytesPerChain is Dose.PerChain.
	Dose *Dose
}

// Added after the first contract (additive):

// LayerPoint is one driver layer's counters at a sample.
type LayerPoint struct {
	Target     string
	Phase      string
	At         time.Time
	Seq        uint64
	Layer      string // agent.Layer: "stream", "forward", "transport"
	Classify   uint64
	Blocked    uint64
	NBLs       uint64
	MultiChain uint64
	Hist       [6]uint64 // chain lengths as agent.HistBuckets labels them
}
