package contract

import "time"

// Layer names the driver's callout layers, in the order FORMAT.md lists them.
type Layer string

const (
	LayerStream    Layer = "stream"
	LayerForward   Layer = "forward"
	LayerTransport Layer = "transport"
)

// Layers is every layer the driver counts.
var Layers = []Layer{LayerStream, LayerForward, LayerTransport}

// HistBuckets labels the chain-length histogram buckets.
var HistBuckets = [6]string{"1", "2", "3-4", "5-8", "9-16", "17+"}

// LayerCounters are the driver's counters for one layer since it started or was reset.
type LayerCounters struct {
	Classify   uint64
	Blocked    uint64
	NBLs       uint64
	MultiChain uint64 // chains seen with more than one NBL, blocked or not
	Hist       [6]uint64
	// MultiBlocked counts blocks set on a chain of two or more NBLs: what leaks on an
	// unpatched netio.sys. Only a version 2 driver reports it (HasMultiBlocked).
	MultiBlocked    uint64
	HasMultiBlocked bool
}

// Driver is the driver state and counters a sample carries.
type Driver struct {
	State  string // "running", "absent" or "error:N"
	Layers map[Layer]LayerCounters
}

// TagUsage is one pool tag's nonpaged numbers.
type TagUsage struct {
	Allocs uint64
	Frees  uint64
	Bytes  uint64
}

// The types below are the agent's lines (guest/agent/FORMAT.md) once parsed.

// Header is the H1 line that starts a sample stream.
type Header struct {
	Agent      string
	Version    string
	IntervalMS uint64
	Arch       string
	PID        uint64
}

// Sample is one S1 line.
type Sample struct {
	Seq         uint64
	TimeUS      uint64 // guest monotonic time since boot
	NPBytes     uint64
	NPAllocs    uint64
	NPFrees     uint64
	CPUKernelMS uint64
	CPUUserMS   uint64
	CPUIdleMS   uint64
	Driver      Driver
	ChangedTags map[string]TagUsage // only the tags that changed since the previous sample
	// TagsDeferred counts changed tags the agent left for later samples because the
	// line was full (FORMAT.md); their numbers arrive within a few samples.
	TagsDeferred uint64
}

// Inventory is the V1 line of `versions`.
type Inventory struct {
	OSVersion   string // "6.0" or "6.1"
	OSBuild     string // "7600.16385"
	SP          uint64
	Arch        string // "x86" or "x64"
	Netio       string // file version or "missing"
	Tcpip       string
	Fwpkclnt    string
	TestSigning bool
	DrvService  string
	BootUS      uint64
}

// SampleEvent is one line of a guest's sample stream as the lab received it, or the stream's end.
type SampleEvent struct {
	At     time.Time // host time the line arrived
	Sample Sample    // valid when Err == nil
	Line   string    // the raw line
	Err    error     // a line that did not parse, or the stream's end with an error
}
