package kernel

import "time"

// Params are the model's parameters. A zero field takes its default (WithDefaults).
//
//	parameter          default           basis
//	NBLBytesX86        0x160 (352 B)     guess: NET_BUFFER_LIST + NET_BUFFER + MDL as one NETIO allocation, 32-bit
//	NBLBytesX64        0x240 (576 B)     guess: the same with 64-bit pointers
//	MSS                1460 B            Ethernet MTU 1500 - 20 IP - 20 TCP: one segment per NBL on the stream path
//	MTU                1500 B            Ethernet; the forward path fragments UDP datagrams to it
//	                                     (1480 B of IP payload per fragment, the UDP header counts: 8 B)
//	BaselineBytes      per OS, see BaselineBytes()  guess: 20-40 MiB of nonpaged pool on an idle guest
//	NoiseSigma         8192 B            guess: stationary std. deviation of the background pool noise
//	NoisePhi           0.5               guess: AR(1) coefficient per NoiseStep
//	NoiseStep          100 ms            the AR(1) time step and the in-flight estimator's period
//	NoiseTags          "Irp ","File","Ntfx","TcpE"  guess: background tags the noise is spread over
//	DriftSigma         2048 B/√s         guess: a random walk under the noise (real pool wanders by tens of
//	                                     KiB over minutes when idle); its std. deviation after t is DriftSigma·√t
//	JumpsPerMinute     1                 guess: how often a large allocation or free moves the pool at once
//	JumpBytes          32768 B           guess: a jump's mean size (exponential); 60% of jumps allocate, 40% free
//	DisturbTag         "MmCa"            guess: the tag that drift and jumps show on
//	ChurnPerSecond     400 /s            guess: background allocations per second per noise tag
//	InflightLatency    1 ms              guess: how long a receive buffer stays allocated
//	InflightBufBytes   2048 B            guess: receive buffer size, tag "NDnd"
//	CPUs               2                 guess: the guest's processor count
//	BackgroundKernel   0.02              guess: fraction of CPU time in kernel mode when idle
//	BackgroundUser     0.01              guess: fraction in user mode
//	KernelNsPerNBL     1000 ns           guess: kernel CPU per NBL indicated
//	KernelNsPerChain   2000 ns           guess: kernel CPU per chain (classify, completion)
//	MaxConns           1024              bound on concurrent TCP connections the stream socket keeps
//	RecvBatch          16                UDP buffers read per system call (recvmmsg on Linux): a datagram,
//	                                     or a UDP_GRO group of up to 64 of them
//	PatchedLossShare   0                 not a Windows figure: share of the driver's chains a patched
//	                                     netio.sys passes without calling the callout, so tests can
//	                                     model a hotfix that costs classify throughput (the KB claims none)
type Params struct {
	NBLBytesX86   uint64
	NBLBytesX64   uint64
	MSS           int
	MTU           int
	BaselineBytes uint64 // 0: BaselineBytes(version, arch)
	NoiseSigma    float64
	NoisePhi      float64
	NoiseStep     time.Duration
	NoiseTags     []string
	// Drift and jumps come with the noise (Config.Noise); a negative value turns one off.
	DriftSigma       float64
	JumpsPerMinute   float64
	JumpBytes        float64
	DisturbTag       string
	ChurnPerSecond   float64
	InflightLatency  time.Duration
	InflightBufBytes uint64
	CPUs             int
	BackgroundKernel float64
	BackgroundUser   float64
	KernelNsPerNBL   float64
	KernelNsPerChain float64
	MaxConns         int
	RecvBatch        int
	PatchedLossShare float64
}

// Header sizes that turn a UDP payload into IP fragments.
const (
	ipv4Header = 20
	udpHeader  = 8
)

// DefaultParams returns the defaults of the table above.
func DefaultParams() Params {
	return Params{
		NBLBytesX86:      0x160,
		NBLBytesX64:      0x240,
		MSS:              1460,
		MTU:              1500,
		NoiseSigma:       8192,
		NoisePhi:         0.5,
		NoiseStep:        100 * time.Millisecond,
		NoiseTags:        []string{"Irp ", "File", "Ntfx", "TcpE"},
		DriftSigma:       2048,
		JumpsPerMinute:   1,
		JumpBytes:        32768,
		DisturbTag:       "MmCa",
		ChurnPerSecond:   400,
		InflightLatency:  time.Millisecond,
		InflightBufBytes: 2048,
		CPUs:             2,
		BackgroundKernel: 0.02,
		BackgroundUser:   0.01,
		KernelNsPerNBL:   1000,
		KernelNsPerChain: 2000,
		MaxConns:         1024,
		RecvBatch:        16,
	}
}

// WithDefaults fills the zero fields of p from DefaultParams.
func (p Params) WithDefaults() Params {
	d := DefaultParams()
	setU := func(v *uint64, def uint64) {
		if *v == 0 {
			*v = def
		}
	}
	setI := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	setF := func(v *float64, def float64) {
		if *v == 0 {
			*v = def
		}
	}
	setD := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	setU(&p.NBLBytesX86, d.NBLBytesX86)
	setU(&p.NBLBytesX64, d.NBLBytesX64)
	setI(&p.MSS, d.MSS)
	setI(&p.MTU, d.MTU)
	setF(&p.NoiseSigma, d.NoiseSigma)
	setF(&p.NoisePhi, d.NoisePhi)
	setD(&p.NoiseStep, d.NoiseStep)
	if len(p.NoiseTags) == 0 {
		p.NoiseTags = d.NoiseTags
	}
	setF(&p.DriftSigma, d.DriftSigma)
	setF(&p.JumpsPerMinute, d.JumpsPerMinute)
	setF(&p.JumpBytes, d.JumpBytes)
	if p.DisturbTag == "" {
		p.DisturbTag = d.DisturbTag
	}
	setF(&p.ChurnPerSecond, d.ChurnPerSecond)
	setD(&p.InflightLatency, d.InflightLatency)
	setU(&p.InflightBufBytes, d.InflightBufBytes)
	setI(&p.CPUs, d.CPUs)
	setF(&p.BackgroundKernel, d.BackgroundKernel)
	setF(&p.BackgroundUser, d.BackgroundUser)
	setF(&p.KernelNsPerNBL, d.KernelNsPerNBL)
	setF(&p.KernelNsPerChain, d.KernelNsPerChain)
	setI(&p.MaxConns, d.MaxConns)
	setI(&p.RecvBatch, d.RecvBatch)
	if p.MTU < ipv4Header+udpHeader+8 {
		p.MTU = d.MTU
	}
	if p.NoisePhi < 0 || p.NoisePhi >= 1 {
		p.NoisePhi = d.NoisePhi
	}
	return p
}

// Disturbed reports whether drift or jumps are on.
func (p Params) Disturbed() bool {
	return p.DriftSigma > 0 || (p.JumpsPerMinute > 0 && p.JumpBytes > 0)
}

// NBLBytes is the size of one NBL allocation for an OS architecture ("x86" or "x64").
func (p Params) NBLBytes(arch string) uint64 {
	if arch == "x86" {
		return p.NBLBytesX86
	}
	return p.NBLBytesX64
}

// BaselineBytes is the default nonpaged pool in use on an idle guest, by kernel version and
// architecture. Guesses: larger for 6.1 than 6.0 and for x64 than x86.
func BaselineBytes(version, arch string) uint64 {
	const mib = 1 << 20
	switch {
	case version == "6.0" && arch == "x86":
		return 20 * mib
	case version == "6.0":
		return 32 * mib
	case arch == "x86":
		return 24 * mib
	default:
		return 40 * mib
	}
}

// StreamChain is how many NBLs the stream layer indicates for one receive of n bytes: one
// per MSS-sized TCP segment the data arrived in.
func (p Params) StreamChain(n int) int {
	if n <= 0 {
		return 0
	}
	return (n + p.MSS - 1) / p.MSS
}

// FragmentChain is how many NBLs one UDP datagram of payload bytes becomes on the forward
// path: one unfragmented NBL if it fits the MTU, else one per IP fragment, each carrying
// (MTU - 20) rounded down to 8 bytes of IP payload (UDP header included).
func (p Params) FragmentChain(payload int) int {
	if payload < 0 {
		return 0
	}
	ipPayload := payload + udpHeader
	if ipPayload+ipv4Header <= p.MTU {
		return 1
	}
	per := (p.MTU - ipv4Header) &^ 7
	return (ipPayload + per - 1) / per
}
