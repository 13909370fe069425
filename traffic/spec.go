package traffic

import (
	"net/netip"
	"time"
)

// Profile names a traffic shape.
type Profile string

const (
	// StreamBurst writes bursts of several MSS-sized segments back to back on TCP
	// connections (Nagle off), so the guest's stream layer indicates multi-NBL chains.
	StreamBurst Profile = "stream-burst"
	// FragmentForward sends UDP datagrams larger than the path MTU (DF clear) to a
	// destination routed through the guest: one fragment group, several NBLs, each.
	FragmentForward Profile = "fragment-forward"
	// SingleNBL sends small UDP datagrams: one NBL each, the control that never leaks.
	SingleNBL Profile = "single-nbl"
)

// Profiles lists every basic profile.
var Profiles = []Profile{StreamBurst, FragmentForward, SingleNBL}

// Mix runs several basic profiles at once, splitting the rate and MaxPackets by Spec.Weights.
// It is not in Profiles: it is made of them.
const Mix Profile = "mix"

// SendMode picks how the UDP profiles hand datagrams to the kernel.
type SendMode string

const (
	// SendAuto uses UDP_SEGMENT (GSO) where the kernel accepts it, else SendBatch.
	SendAuto SendMode = ""
	// SendGSO sends up to 64 datagrams per sendmsg with UDP_SEGMENT (Linux); refused → error.
	SendGSO SendMode = "gso"
	// SendBatch sends up to Spec.Batch datagrams per sendmmsg (Linux); one by one elsewhere.
	SendBatch SendMode = "batch"
	// SendSingle makes one write per datagram.
	SendSingle SendMode = "single"
)

// Spec is one traffic run.
type Spec struct {
	Profile Profile
	// Rate is packets per second: TCP segments for stream-burst (bursts go out at
	// Rate/BurstSegments per second), datagrams for the UDP profiles. 0 means as fast as possible.
	Rate float64
	// Duration and MaxPackets bound the run; the first reached ends it. At least one must be set.
	Duration   time.Duration
	MaxPackets uint64
	// PayloadBytes is the TCP segment size (stream-burst, default 1460) or the UDP
	// datagram payload size (fragment-forward default 4000, single-nbl default 64).
	PayloadBytes int
	// BurstSegments is how many segments one stream-burst write carries (default 8).
	BurstSegments int
	// Conns is how many TCP connections stream-burst keeps (default 4).
	Conns int

	// BitRate is an alternative to Rate: payload bits per second, turned into packets per
	// second with PacketsPerSecond. Set at most one of Rate and BitRate.
	BitRate float64
	// Weights split a Mix run between basic profiles (relative, > 0), e.g.
	// {stream-burst: 1, single-nbl: 3}. Each part uses its own profile's PayloadBytes default.
	Weights map[Profile]float64
	// Send is the UDP send path (default SendAuto); Batch is the most datagrams per send
	// call (default 64).
	Send  SendMode
	Batch int
	// Clock paces the run and bounds its Duration (nil: the real clock). Tests pass a fake one.
	Clock Clock
}

// Addrs is where traffic goes.
type Addrs struct {
	Stream  netip.AddrPort // TCP, stream-burst
	Forward netip.AddrPort // UDP, fragment-forward
	Control netip.AddrPort // UDP, single-nbl
	// ForwardIn and ForwardOut, when both set, are the guest's two routed links (a
	// hypervisor's frame sockets on loopback): fragment-forward then writes Ethernet frames
	// of IPv4 fragment groups into ForwardIn, addressed to Forward (a host in ForwardOut's
	// network; ForwardOut.HostIP port 9 when Forward is zero), and counts what the guest
	// forwards out of ForwardOut. Without them fragment-forward sends UDP to Forward.
	ForwardIn, ForwardOut *Link
}

// frameLinks reports whether fragment-forward goes through frame links.
func (t Addrs) frameLinks() bool { return t.ForwardIn != nil && t.ForwardOut != nil }

// Counters are totals, or per-second deltas in a Tick.
type Counters struct {
	Packets uint64 // segments or datagrams sent
	Bytes   uint64 // payload bytes sent
	Bursts  uint64 // stream-burst writes
	Conns   uint64 // TCP connections opened
	Resets  uint64 // TCP connections the peer reset or closed
	Errors  map[string]uint64
	// Syscalls counts send calls (write, sendmmsg, sendmsg): Packets/Syscalls > 1 shows batching.
	Syscalls uint64
	// Frames are Ethernet frames sent into a frame link (fragment-forward through
	// Target.ForwardIn); Packets still counts datagrams (fragment groups).
	Frames uint64
	// What the guest forwarded out of Target.ForwardOut: IPv4 frames of our datagrams,
	// datagrams complete (every fragment arrived), and their UDP payload bytes. Zero while the
	// forward path is blocked.
	ForwardedFrames, ForwardedDatagrams, ForwardedBytes uint64
}

// Tick is one second of a run.
type Tick struct {
	At    time.Time // end of the second
	Delta Counters
	// Span is how much time Delta covers: one second, or less for the last tick of a run.
	Span time.Duration
	// Final marks the last tick of a run.
	Final bool
}
