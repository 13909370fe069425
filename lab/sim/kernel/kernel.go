package kernel

import (
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Layer is a WFP layer the test driver's callouts sit at, one per traffic path.
type Layer int

const (
	// LayerStream is FWPM_LAYER_STREAM_V4: TCP data, one NBL per segment, chained.
	LayerStream Layer = iota
	// LayerForward is FWPM_LAYER_IPFORWARD_V4: forwarded IP fragment groups, one NBL per fragment.
	LayerForward
	// LayerTransport is FWPM_LAYER_INBOUND_TRANSPORT_V4: one NBL per datagram.
	LayerTransport
	numLayers
)

// Layers lists every layer in FORMAT.md's order.
var Layers = [numLayers]Layer{LayerStream, LayerForward, LayerTransport}

// String is the layer's name in the agent's output.
func (l Layer) String() string {
	switch l {
	case LayerStream:
		return "stream"
	case LayerForward:
		return "forward"
	case LayerTransport:
		return "transport"
	}
	return "unknown"
}

// LayerCounters are the driver's counters for one layer, as its IOCTL reports them.
type LayerCounters struct {
	Classify   uint64
	Blocked    uint64
	NBLs       uint64
	MultiChain uint64
	Hist       [6]uint64 // chain length 1, 2, 3-4, 5-8, 9-16, 17+
	// MultiBlocked counts blocked chains of two or more NBLs (the driver's IOCTL version 2).
	MultiBlocked uint64
}

// HistBucket is the histogram bucket of a chain of n NBLs.
func HistBucket(n int) int {
	switch {
	case n <= 1:
		return 0
	case n == 2:
		return 1
	case n <= 4:
		return 2
	case n <= 8:
		return 3
	case n <= 16:
		return 4
	}
	return 5
}

// DriverConfig is what the driver reads from its Parameters key when it starts. A zero port
// or an invalid prefix filters nothing on that path.
type DriverConfig struct {
	StreamPort    uint16
	ControlPort   uint16
	ForwardPrefix netip.Prefix
}

// Config describes one boot of a guest's kernel.
type Config struct {
	Arch      string // "x86" or "x64"
	OSVersion string // "6.0" or "6.1": picks the pool baseline
	// Patched says the netio.sys in force for this boot carries the KB979223 fix.
	Patched bool
	Seed    int64
	// Noise turns on background pool noise and in-flight receive buffers. Off, the pool
	// moves only by what the NBL model leaks.
	Noise bool
	// GroupFragments is the boot's fragment grouping on the forward path (netsh interface
	// ipv4 set global groupforwardedfragments; off by default on Windows). Off, each forwarded
	// fragment is indicated alone; on, alone and then again in its group, a chain.
	GroupFragments bool
	Params         Params
}

// Kernel is one boot of a guest's kernel. Indicate is safe for concurrent use and takes no
// lock: counters are atomics, the driver is an atomic pointer.
type Kernel struct {
	cfg      Config
	p        Params
	nblBytes uint64
	drv      atomic.Pointer[driver]
	paths    [numLayers]pathStats
	grouping atomic.Bool // fragment grouping in force now (netsh applies it at once)

	inflight atomic.Uint64 // receive buffers in flight, bytes (noise only)
	stop     chan struct{}
	done     chan struct{}
	closed   sync.Once

	poolMu sync.Mutex // guards the derived, clamped state of Pool and CPU
	pool   poolState
	cpu    cpuState
}

// pathStats are the NBL totals of one path, padded so paths do not share a cache line.
type pathStats struct {
	chains    atomic.Uint64
	nbls      atomic.Uint64
	freed     atomic.Uint64 // NBLs given back to the pool
	leaked    atomic.Uint64 // chains whose last NBL was not freed
	leakBytes atomic.Uint64
	blocked   atomic.Uint64
	_         [16]byte
}

type driver struct {
	cfg    DriverConfig
	permit atomic.Bool // IOCTL_WFPLAB_SET_MODE: count and permit instead of block
	layers [numLayers]layerCounters
}

type layerCounters struct {
	classify, blocked, nbls, multi atomic.Uint64
	hist                           [6]atomic.Uint64
	multiBlocked                   atomic.Uint64
	_                              [40]byte // two cache lines per layer
}

// New starts a kernel; Close stops its background estimator.
func New(cfg Config) *Kernel {
	cfg.Params = cfg.Params.WithDefaults()
	k := &Kernel{cfg: cfg, p: cfg.Params, nblBytes: cfg.Params.NBLBytes(cfg.Arch),
		stop: make(chan struct{}), done: make(chan struct{})}
	k.pool = newPoolState(cfg, k.nblBytes)
	k.grouping.Store(cfg.GroupFragments)
	if cfg.Noise {
		go k.estimateInflight()
	} else {
		close(k.done)
	}
	return k
}

// Close stops the kernel's background work. Safe to call more than once.
func (k *Kernel) Close() {
	k.closed.Do(func() { close(k.stop) })
	<-k.done
}

// Params are the parameters in force, defaults filled in.
func (k *Kernel) Params() Params { return k.p }

// NBLBytes is the size of one NBL on this architecture: what an unpatched netio leaks per
// blocked multi-NBL chain.
func (k *Kernel) NBLBytes() uint64 { return k.nblBytes }

// SetFragmentGrouping turns fragment grouping on the forward path on or off, at once.
func (k *Kernel) SetFragmentGrouping(on bool) { k.grouping.Store(on) }

// FragmentGrouping reports whether forwarded fragments are indicated in groups too.
func (k *Kernel) FragmentGrouping() bool { return k.grouping.Load() }

// Patched reports whether netio.sys in force for this boot carries the fix.
func (k *Kernel) Patched() bool { return k.cfg.Patched }

var (
	// ErrDriverRunning is ERROR_SERVICE_ALREADY_RUNNING.
	ErrDriverRunning = errors.New("driver already running")
	// ErrDriverStopped is ERROR_SERVICE_NOT_ACTIVE.
	ErrDriverStopped = errors.New("driver not running")
)

// StartDriver loads the callout driver with the parameters it read; its counters start at zero.
func (k *Kernel) StartDriver(cfg DriverConfig) error {
	if !k.drv.CompareAndSwap(nil, &driver{cfg: cfg}) {
		return ErrDriverRunning
	}
	return nil
}

// StopDriver unloads the driver.
func (k *Kernel) StopDriver() error {
	if k.drv.Swap(nil) == nil {
		return ErrDriverStopped
	}
	return nil
}

// Counters returns the driver's counters, or ok=false when it is not loaded.
func (k *Kernel) Counters() (c [numLayers]LayerCounters, ok bool) {
	d := k.drv.Load()
	if d == nil {
		return c, false
	}
	for i := range d.layers {
		c[i] = d.layers[i].read(false)
	}
	return c, true
}

// SetDriverMode switches the loaded driver between blocking (the default at every load)
// and permit-and-count, and returns its counters; ok=false when it is not loaded.
func (k *Kernel) SetDriverMode(permit bool) (c [numLayers]LayerCounters, ok bool) {
	d := k.drv.Load()
	if d == nil {
		return c, false
	}
	d.permit.Store(permit)
	return k.Counters()
}

// ResetCounters returns the counters as they were and sets them to zero.
func (k *Kernel) ResetCounters() (c [numLayers]LayerCounters, ok bool) {
	d := k.drv.Load()
	if d == nil {
		return c, false
	}
	for i := range d.layers {
		c[i] = d.layers[i].read(true)
	}
	return c, true
}

func (l *layerCounters) read(reset bool) LayerCounters {
	get := func(a *atomic.Uint64) uint64 {
		if reset {
			return a.Swap(0)
		}
		return a.Load()
	}
	var c LayerCounters
	c.Classify = get(&l.classify)
	c.Blocked = get(&l.blocked)
	c.NBLs = get(&l.nbls)
	c.MultiChain = get(&l.multi)
	for i := range l.hist {
		c.Hist[i] = get(&l.hist[i])
	}
	c.MultiBlocked = get(&l.multiBlocked)
	return c
}

// filters says whether the driver's filter matches a chain on layer l arriving at local.
func (d *driver) filters(l Layer, local netip.AddrPort) bool {
	switch l {
	case LayerStream:
		return d.cfg.StreamPort != 0 && local.Port() == d.cfg.StreamPort
	case LayerTransport:
		return d.cfg.ControlPort != 0 && local.Port() == d.cfg.ControlPort
	case LayerForward:
		return d.cfg.ForwardPrefix.IsValid() && d.cfg.ForwardPrefix.Contains(local.Addr().Unmap())
	}
	return false
}

// Indicate is WFP indicating one chain of n NBLs on layer l, for traffic to local. The NBLs
// are allocated from the pool (tag Nnbl). When the driver is loaded and its filter matches,
// the callout classifies the chain and blocks it; on an unpatched netio.sys a blocked chain
// of more than one NBL then leaks its last NBL. Everything else is freed. It reports whether
// the chain was blocked.
func (k *Kernel) Indicate(l Layer, n int, local netip.AddrPort) bool {
	return k.IndicateN(l, n, 1, local)
}

// IndicateN is count calls of Indicate(l, n, local) at once: the counters end up exactly as
// after those calls, with one atomic add per counter instead of count. The receive path
// uses it for a batch of datagrams of one shape. It reports whether the chains were blocked
// (the filter decides by layer and local address, so all of them or none).
func (k *Kernel) IndicateN(l Layer, n, count int, local netip.AddrPort) bool {
	if n <= 0 || count <= 0 || l < 0 || l >= numLayers {
		return false
	}
	ps := &k.paths[l]
	un, uc := uint64(n), uint64(count)
	// Allocation first, frees after: a reader that loads frees before allocs never sees
	// more frees than allocations.
	ps.nbls.Add(un * uc)
	chainsBefore := ps.chains.Add(uc) - uc
	d := k.drv.Load()
	filtered := d != nil && d.filters(l, local)
	if lost := k.lostChains(chainsBefore, uc); filtered && lost > 0 {
		// They pass unclassified: the callout never sees them.
		ps.freed.Add(un * lost)
		if uc -= lost; uc == 0 {
			return false
		}
	}
	if !filtered {
		ps.freed.Add(un * uc)
		return false
	}
	lc := &d.layers[l]
	lc.classify.Add(uc)
	lc.nbls.Add(un * uc)
	if n > 1 {
		lc.multi.Add(uc)
	}
	lc.hist[HistBucket(n)].Add(uc)
	// The driver permits a single NBL on the forward layer: a lone fragment must pass to be
	// grouped (guest/driver/callouts.c, classify_forward).
	if d.permit.Load() || l == LayerForward && n < 2 {
		ps.freed.Add(un * uc)
		return false
	}
	lc.blocked.Add(uc)
	if n > 1 {
		lc.multiBlocked.Add(uc)
	}
	ps.blocked.Add(uc)
	if n > 1 && !k.cfg.Patched {
		ps.leakBytes.Add(k.nblBytes * uc)
		ps.leaked.Add(uc)
		ps.freed.Add((un - 1) * uc)
	} else {
		ps.freed.Add(un * uc)
	}
	return true
}

// lostChains is how many of the count chains after the first before a patched netio.sys
// does not indicate to the callout (Params.PatchedLossShare), spread evenly over a path's chains.
func (k *Kernel) lostChains(before, count uint64) uint64 {
	share := k.p.PatchedLossShare
	if !k.cfg.Patched || share <= 0 {
		return 0
	}
	share = min(share, 1)
	return uint64(float64(before+count)*share) - uint64(float64(before)*share)
}

func (k *Kernel) totalNBLs() (allocs, frees, chains uint64) {
	for i := range k.paths {
		frees += k.paths[i].freed.Load()
	}
	for i := range k.paths {
		allocs += k.paths[i].nbls.Load()
		chains += k.paths[i].chains.Load()
	}
	return allocs, frees, chains
}

// estimateInflight keeps the bytes of receive buffers in flight: NBLs per step times the
// share of a step a buffer lives, times the buffer size.
func (k *Kernel) estimateInflight() {
	defer close(k.done)
	t := time.NewTicker(k.p.NoiseStep)
	defer t.Stop()
	last, _, _ := k.totalNBLs()
	share := float64(k.p.InflightLatency) / float64(k.p.NoiseStep)
	for {
		select {
		case <-k.stop:
			return
		case <-t.C:
			now, _, _ := k.totalNBLs()
			k.inflight.Store(uint64(float64(now-last)*share+0.5) * k.p.InflightBufBytes)
			last = now
		}
	}
}
