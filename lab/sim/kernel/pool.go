package kernel

import (
	"math"
	"sort"
	"time"
)

// TagUsage is one pool tag's nonpaged numbers.
type TagUsage struct {
	Tag    string // always 4 bytes
	Allocs uint64
	Frees  uint64
	Bytes  uint64
}

// PoolSnapshot is nonpaged pool at one moment: totals and every tag with non-zero usage,
// sorted by tag.
type PoolSnapshot struct {
	Bytes  uint64
	Allocs uint64
	Frees  uint64
	Tags   []TagUsage
}

// Tag names the model uses for its own parts.
const (
	TagNBL      = "Nnbl" // NETIO's NBLs: what KB979223 leaks
	TagInflight = "NDnd" // NDIS receive buffers in flight (noise)
)

// baselineTags spread the idle pool over plausible tags (shares and sizes are guesses); the
// first tag takes the rounding remainder.
var baselineTags = []struct {
	tag   string
	share float64
	avg   uint64 // average allocation size: turns bytes into an outstanding count
}{
	{"MmSt", 0, 4096},
	{"Irp ", 0.03, 512}, {"File", 0.06, 320}, {"Ntfx", 0.08, 256}, {"TcpE", 0.02, 384},
	{"MmCa", 0.12, 128}, {"Thre", 0.05, 1024}, {"Proc", 0.03, 1280}, {"Even", 0.02, 64},
	{"Io  ", 0.03, 256}, {"Devi", 0.02, 512}, {"Mdl ", 0.03, 256}, {"NDnd", 0.04, 2048},
	{"Nnbl", 0.01, 0}, {"Wfpn", 0.005, 128}, {"TcpL", 0.01, 256}, {"ObNm", 0.02, 192},
	{"Vad ", 0.04, 64}, {"Ntf0", 0.02, 512}, {"ReTa", 0.01, 256},
}

type tagState struct {
	tag       string
	bytes     uint64 // baseline bytes
	allocs    uint64 // baseline allocations since boot
	avg       uint64
	noise     int     // index into the noise tags, or -1
	lastFrees uint64  // clamp: frees never go back
	scale     float64 // this tag's AR(1) innovation std. deviation
}

type poolState struct {
	tags    []tagState
	nbl     int // index of Nnbl
	inf     int // index of NDnd
	noise   bool
	seed    uint64
	phi     float64
	terms   int
	step    time.Duration
	churn   float64
	bufSize uint64
	lastAt  time.Duration
	dist    disturbance
}

// disturbance is the slow part of background pool movement: a random walk and occasional
// jumps, on one tag. Like the noise it is a function of the seed and the step alone; the
// sums are kept as Pool's time only moves forward.
type disturbance struct {
	tag      int     // index of the tag it shows on, or -1 when off
	walkSD   float64 // random-walk std. deviation per step
	jumpP    float64 // probability of a jump in one step
	jumpMean float64
	step     int64 // last step summed
	walk     float64
	jumps    float64
}

// Series numbers of the disturbance's random draws, apart from the noise tags' 0, 1, ...
const (
	seriesWalk = 1 << 20
	seriesJump = seriesWalk + 1
	seriesSize = seriesWalk + 2
)

// at returns walk + jumps as of step, summing the steps since the last call.
func (d *disturbance) at(seed uint64, step int64) float64 {
	for ; d.step < step; d.step++ {
		k := uint64(d.step + 1)
		d.walk += d.walkSD * normal(seed, seriesWalk, k)
		if d.jumpP > 0 && uniform(seed, seriesJump, k) < d.jumpP {
			size := -d.jumpMean * math.Log(1-uniform(seed, seriesSize, k))
			if uniform(seed, seriesSize, k+1<<40) < 0.4 {
				size = -size
			}
			d.jumps += size
		}
	}
	return d.walk + d.jumps
}

func newPoolState(cfg Config, nblBytes uint64) poolState {
	p := cfg.Params
	base := p.BaselineBytes
	if base == 0 {
		base = BaselineBytes(cfg.OSVersion, cfg.Arch)
	}
	s := poolState{noise: cfg.Noise, seed: uint64(cfg.Seed), phi: p.NoisePhi, step: p.NoiseStep,
		churn: p.ChurnPerSecond, bufSize: p.InflightBufBytes, nbl: -1, inf: -1,
		dist: disturbance{tag: -1, step: -1, walkSD: max(p.DriftSigma, 0) * math.Sqrt(p.NoiseStep.Seconds())}}
	if p.JumpsPerMinute > 0 && p.JumpBytes > 0 {
		s.dist.jumpP = p.JumpsPerMinute / 60 * p.NoiseStep.Seconds()
		s.dist.jumpMean = p.JumpBytes
	}
	noiseIdx := map[string]int{}
	for i, t := range p.NoiseTags {
		noiseIdx[padTag(t)] = i
	}
	var sum uint64
	for _, bt := range baselineTags {
		ts := tagState{tag: bt.tag, bytes: uint64(float64(base) * bt.share), avg: bt.avg, noise: -1}
		if bt.tag == TagNBL {
			ts.avg = nblBytes
		}
		sum += ts.bytes
		s.tags = append(s.tags, ts)
	}
	// Noise tags that are not in the table join it.
	for _, t := range p.NoiseTags {
		t = padTag(t)
		found := false
		for _, ts := range s.tags {
			found = found || ts.tag == t
		}
		if !found {
			s.tags = append(s.tags, tagState{tag: t, bytes: base / 100, avg: 256, noise: -1})
			sum += base / 100
		}
	}
	if sum < base {
		s.tags[0].bytes += base - sum
	}
	sort.Slice(s.tags, func(i, j int) bool { return s.tags[i].tag < s.tags[j].tag })
	// Each noise tag gets an equal share of the variance, so the total has std. dev. sigma.
	perTag := p.NoiseSigma / math.Sqrt(float64(max(len(p.NoiseTags), 1)))
	for i := range s.tags {
		ts := &s.tags[i]
		ts.allocs = 3 * (ts.bytes / max(ts.avg, 1)) // as if a third of boot-time allocations remain
		ts.lastFrees = ts.allocs - ts.bytes/max(ts.avg, 1)
		if n, ok := noiseIdx[ts.tag]; ok {
			ts.noise = n
			ts.scale = perTag * math.Sqrt(1-p.NoisePhi*p.NoisePhi)
		}
		if cfg.Noise && p.Disturbed() && ts.tag == padTag(p.DisturbTag) {
			s.dist.tag = i
		}
		switch ts.tag {
		case TagNBL:
			s.nbl = i
		case TagInflight:
			s.inf = i
		}
	}
	// Enough AR(1) terms that the ones left out weigh under 1e-9 of sigma.
	s.terms = 1
	if s.phi > 0 {
		s.terms = min(int(math.Ceil(math.Log(1e-9)/math.Log(s.phi)))+1, 8192)
	}
	return s
}

func padTag(t string) string {
	if len(t) >= 4 {
		return t[:4]
	}
	return t + "    "[:4-len(t)]
}

// Pool returns nonpaged pool as of at (time since boot). Noise is a function of the seed, the
// tag and the step at falls in, so two kernels with one seed give the same noise at the same
// times whatever else they did. Allocation and free counts never go back.
func (k *Kernel) Pool(at time.Duration) PoolSnapshot {
	nblAllocs, nblFrees, _ := k.totalNBLs()
	var leaked uint64
	for i := range k.paths {
		leaked += k.paths[i].leakBytes.Load()
	}
	inflight := k.inflight.Load()

	k.poolMu.Lock()
	defer k.poolMu.Unlock()
	s := &k.pool
	if at < s.lastAt {
		at = s.lastAt
	}
	s.lastAt = at
	step := int64(at / s.step)
	snap := PoolSnapshot{Tags: make([]TagUsage, 0, len(s.tags))}
	for i := range s.tags {
		ts := &s.tags[i]
		u := TagUsage{Tag: ts.tag, Bytes: ts.bytes, Allocs: ts.allocs}
		outstanding := ts.bytes / max(ts.avg, 1)
		switch {
		case i == s.nbl:
			u.Bytes += leaked
			u.Allocs += nblAllocs
			outstanding += nblAllocs - nblFrees
		case i == s.inf && s.noise:
			u.Bytes += inflight
			u.Allocs += nblAllocs
			outstanding += inflight / max(s.bufSize, 1)
		case ts.noise >= 0 && s.noise:
			d := s.ar(ts.noise, step) * ts.scale
			u.Bytes = uint64(max(float64(ts.bytes)+d, 0))
			u.Allocs += uint64(s.churn * at.Seconds())
			outstanding = u.Bytes / max(ts.avg, 1)
		}
		if i == s.dist.tag {
			u.Bytes = uint64(max(float64(u.Bytes)+s.dist.at(s.seed, step), 0))
			outstanding = u.Bytes / max(ts.avg, 1)
		}
		frees := ts.lastFrees
		if u.Allocs > outstanding && u.Allocs-outstanding > frees {
			frees = u.Allocs - outstanding
		}
		ts.lastFrees = frees
		u.Frees = frees
		snap.Bytes += u.Bytes
		snap.Allocs += u.Allocs
		snap.Frees += u.Frees
		snap.Tags = append(snap.Tags, u)
	}
	return snap
}

// ar is a unit-variance-innovation AR(1) process x_k = phi*x_(k-1) + e_k, evaluated as the
// truncated sum of phi^j * e_(k-j), with e drawn from a hash of (seed, series, step).
func (s *poolState) ar(series int, step int64) float64 {
	x, w := 0.0, 1.0
	for j := 0; j < s.terms; j++ {
		x += w * normal(s.seed, uint64(series), uint64(step-int64(j)))
		w *= s.phi
	}
	return x
}

// normal is a standard normal number determined by its three inputs (Box-Muller over two
// splitmix64 outputs).
func normal(seed, series, step uint64) float64 {
	h := splitmix(seed ^ splitmix(series+0x9e3779b97f4a7c15) ^ splitmix(step*0xbf58476d1ce4e5b9+1))
	u1 := float64(h>>11+1) / (1 << 53)
	u2 := float64(splitmix(h)>>11) / (1 << 53)
	return math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2)
}

// uniform is a number in [0, 1) determined by its three inputs.
func uniform(seed, series, step uint64) float64 {
	h := splitmix(seed ^ splitmix(series+0x9e3779b97f4a7c15) ^ splitmix(step*0xbf58476d1ce4e5b9+1))
	return float64(h>>11) / (1 << 53)
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// CPUTimes are system-wide CPU times since boot, summed over processors, as GetSystemTimes
// gives them (kernel excludes idle).
type CPUTimes struct {
	KernelMS, UserMS, IdleMS uint64
}

type cpuState struct{ last CPUTimes }

// CPU returns CPU times as of at: a background share in kernel and user mode, plus kernel
// time for every NBL and chain indicated; idle is the rest. None of them goes back.
func (k *Kernel) CPU(at time.Duration) CPUTimes {
	_, _, chains := k.totalNBLs()
	var nbls uint64
	for i := range k.paths {
		nbls += k.paths[i].nbls.Load()
	}
	k.poolMu.Lock()
	defer k.poolMu.Unlock()
	p := k.p
	totalMS := at.Seconds() * 1000 * float64(p.CPUs)
	user := uint64(totalMS * p.BackgroundUser)
	kern := uint64(totalMS*p.BackgroundKernel + (float64(nbls)*p.KernelNsPerNBL+float64(chains)*p.KernelNsPerChain)/1e6)
	last := k.cpu.last
	total := uint64(max(totalMS, 0))
	user = max(user, last.UserMS)
	// Saturated: kernel time cannot outgrow the wall clock; what does not fit is dropped.
	kern = max(min(kern, sub(total, user+last.IdleMS)), last.KernelMS)
	idle := max(sub(total, kern+user), last.IdleMS)
	k.cpu.last = CPUTimes{KernelMS: kern, UserMS: user, IdleMS: idle}
	return k.cpu.last
}

// sub is a-b, or 0 when b is larger.
func sub(a, b uint64) uint64 {
	if a > b {
		return a - b
	}
	return 0
}
