package kernel

import (
	"errors"
	"io"
	"math"
	"net"
	"net/netip"
	"testing"
	"time"
)

var loopback = netip.MustParseAddr("127.0.0.1")

func quietKernel(t testing.TB, arch string, patched bool) *Kernel {
	// Fragment grouping on, as the lab sets it: forwarded fragment groups reach the callout.
	k := New(Config{Arch: arch, OSVersion: "6.1", Patched: patched, Seed: 1, GroupFragments: true})
	t.Cleanup(k.Close)
	return k
}

func startNet(t testing.TB, k *Kernel) *NetStack {
	n, err := Listen(k, loopback, Ports{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Error(err)
		}
	})
	return n
}

func driverFor(n *NetStack) DriverConfig {
	s, f, c := n.Addrs()
	return DriverConfig{StreamPort: s.Port(), ControlPort: c.Port(), ForwardPrefix: netip.PrefixFrom(f.Addr(), 32)}
}

// waitFor polls cond for up to 10 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func sendUDP(t testing.TB, to netip.AddrPort, size, count int) {
	t.Helper()
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(to))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, size)
	for i := 0; i < count; i++ {
		if _, err := c.Write(buf); err != nil {
			t.Fatal(err)
		}
		if i%64 == 63 {
			time.Sleep(time.Millisecond) // stay well inside the socket buffer
		}
	}
}

// burst opens a connection, writes one burst and reads until the guest closes or resets it.
func burst(t testing.TB, to netip.AddrPort, size int) (reset bool) {
	t.Helper()
	c, err := net.DialTCP("tcp", nil, net.TCPAddrFromAddrPort(to))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetNoDelay(true)
	if _, err := c.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("connection was neither reset nor closed")
	}
	return err != nil
}

func poolBytes(k *Kernel) uint64 { return k.Pool(time.Second).Bytes }

func tag(s PoolSnapshot, name string) TagUsage {
	for _, u := range s.Tags {
		if u.Tag == name {
			return u
		}
	}
	return TagUsage{}
}

func TestUnpatchedLeaksLastNBLOfBlockedMultiChains(t *testing.T) {
	for _, arch := range []string{"x86", "x64"} {
		t.Run(arch, func(t *testing.T) {
			k := quietKernel(t, arch, false)
			n := startNet(t, k)
			before := k.Pool(0)
			if err := k.StartDriver(driverFor(n)); err != nil {
				t.Fatal(err)
			}
			stream, fwd, ctl := n.Addrs()

			const conns = 20
			for i := 0; i < conns; i++ {
				if !burst(t, stream, 8*1460) {
					t.Fatalf("connection %d: blocked stream data did not reset the connection", i)
				}
			}
			const frags = 300
			sendUDP(t, fwd, 4000, frags) // 4008 B of IP payload: 3 fragments
			const singles = 300
			sendUDP(t, ctl, 64, singles)
			waitFor(t, "every datagram", func() bool {
				c, _ := k.Counters()
				// Each of a datagram's 3 fragments alone, then the group.
				return c[LayerForward].Classify == 4*frags && c[LayerTransport].Classify == singles
			})
			c, ok := k.Counters()
			if !ok {
				t.Fatal("driver not running")
			}
			s := c[LayerStream]
			if s.Classify != conns || s.Blocked != conns {
				t.Fatalf("stream: %+v, want %d classified and blocked", s, conns)
			}
			if s.MultiChain == 0 {
				t.Fatalf("stream: no multi-NBL chain from %d bursts of 8 segments: %+v", conns, s)
			}
			f := c[LayerForward]
			if f.Blocked != frags || f.NBLs != 6*frags || f.MultiChain != frags || f.Hist[2] != frags || f.Hist[0] != 3*frags {
				t.Fatalf("forward: %+v, want %d lone fragments permitted and %d groups of 3 NBLs blocked", f, 3*frags, frags)
			}
			x := c[LayerTransport]
			if x.Blocked != singles || x.NBLs != singles || x.MultiChain != 0 || x.Hist[0] != singles {
				t.Fatalf("transport: %+v, want %d single-NBL chains", x, singles)
			}
			for l, lc := range c {
				var h uint64
				for _, v := range lc.Hist {
					h += v
				}
				if h != lc.Classify || lc.Classify-lc.Hist[0] != lc.MultiChain {
					t.Fatalf("layer %d: histogram %v does not add up to %d classified, %d multi", l, lc.Hist, lc.Classify, lc.MultiChain)
				}
			}
			wantLeak := (s.MultiChain + f.MultiChain) * k.NBLBytes()
			after := k.Pool(time.Second)
			if got := after.Bytes - before.Bytes; got != wantLeak {
				t.Fatalf("pool grew %d bytes, want %d = %d chains x %d", got, wantLeak, s.MultiChain+f.MultiChain, k.NBLBytes())
			}
			nb0, nb1 := tag(before, TagNBL), tag(after, TagNBL)
			if nb1.Bytes-nb0.Bytes != wantLeak || (nb1.Allocs-nb1.Frees)-(nb0.Allocs-nb0.Frees) != s.MultiChain+f.MultiChain {
				t.Fatalf("Nnbl %+v -> %+v: want +%d bytes, +%d outstanding", nb0, nb1, wantLeak, s.MultiChain+f.MultiChain)
			}
			wantSize := uint64(0x240)
			if arch == "x86" {
				wantSize = 0x160
			}
			if k.NBLBytes() != wantSize {
				t.Fatalf("NBL size %d", k.NBLBytes())
			}
		})
	}
}

func TestPatchedAndSingleNBLNeverLeak(t *testing.T) {
	k := quietKernel(t, "x64", true)
	n := startNet(t, k)
	before := poolBytes(k)
	k.StartDriver(driverFor(n))
	stream, fwd, ctl := n.Addrs()
	for i := 0; i < 10; i++ {
		burst(t, stream, 16*1460)
	}
	sendUDP(t, fwd, 8000, 100)
	sendUDP(t, ctl, 32, 100)
	waitFor(t, "datagrams", func() bool {
		c, _ := k.Counters()
		return c[LayerForward].Blocked == 100 && c[LayerTransport].Blocked == 100
	})
	c, _ := k.Counters()
	if c[LayerForward].MultiChain != 100 || c[LayerStream].Blocked != 10 {
		t.Fatalf("counters %+v", c)
	}
	if got := poolBytes(k); got != before {
		t.Fatalf("patched netio leaked %d bytes", int64(got)-int64(before))
	}
	tot := k.totals()
	for l, pt := range tot {
		if pt.NBLs != pt.Freed || pt.Leaked != 0 {
			t.Fatalf("layer %d not balanced: %+v", l, pt)
		}
	}
}

func TestUnfilteredAndDriverlessTrafficIsBalanced(t *testing.T) {
	k := quietKernel(t, "x64", false)
	n := startNet(t, k)
	stream, fwd, ctl := n.Addrs()
	before := k.Pool(0)
	// Driver loaded, but filtering other ports and another prefix.
	k.StartDriver(DriverConfig{StreamPort: 1, ControlPort: 2, ForwardPrefix: netip.MustParsePrefix("10.0.0.0/8")})
	c, err := net.DialTCP("tcp", nil, net.TCPAddrFromAddrPort(stream))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if _, err := c.Write(make([]byte, 8*1460)); err != nil {
			t.Fatalf("unfiltered stream connection failed: %v", err)
		}
	}
	c.Close()
	sendUDP(t, fwd, 4000, 50)
	k.StopDriver()
	sendUDP(t, ctl, 64, 50)
	waitFor(t, "traffic", func() bool {
		tot := k.totals()
		return tot[LayerStream].NBLs >= 160 && tot[LayerForward].Chains == 4*50 && tot[LayerTransport].Chains == 50
	})
	after := k.Pool(time.Second)
	if after.Bytes != before.Bytes {
		t.Fatalf("unblocked traffic changed the pool by %d bytes", int64(after.Bytes)-int64(before.Bytes))
	}
	nb := tag(after, TagNBL)
	if nb.Allocs-tag(before, TagNBL).Allocs < 160+150+50 || nb.Allocs-nb.Frees != tag(before, TagNBL).Allocs-tag(before, TagNBL).Frees {
		t.Fatalf("Nnbl allocations not balanced: %+v -> %+v", tag(before, TagNBL), nb)
	}
	for l, pt := range k.totals() {
		if pt.Blocked != 0 {
			t.Fatalf("layer %d blocked %d chains with no matching filter", l, pt.Blocked)
		}
	}
}

func TestDriverStartStopReset(t *testing.T) {
	k := quietKernel(t, "x64", false)
	local := netip.AddrPortFrom(loopback, 5000)
	if k.Indicate(LayerTransport, 1, local) {
		t.Fatal("blocked without a driver")
	}
	if _, ok := k.Counters(); ok {
		t.Fatal("counters without a driver")
	}
	if err := k.StopDriver(); !errors.Is(err, ErrDriverStopped) {
		t.Fatal(err)
	}
	if err := k.StartDriver(DriverConfig{ControlPort: 5000, StreamPort: 6000}); err != nil {
		t.Fatal(err)
	}
	if err := k.StartDriver(DriverConfig{}); !errors.Is(err, ErrDriverRunning) {
		t.Fatal(err)
	}
	for _, n := range []int{1, 2, 3, 4, 5, 8, 9, 16, 17, 45} {
		if !k.Indicate(LayerStream, n, netip.AddrPortFrom(loopback, 6000)) {
			t.Fatalf("chain of %d not blocked", n)
		}
	}
	old, _ := k.ResetCounters()
	want := LayerCounters{Classify: 10, Blocked: 10, NBLs: 110, MultiChain: 9, Hist: [6]uint64{1, 1, 2, 2, 2, 2}, MultiBlocked: 9}
	if old[LayerStream] != want {
		t.Fatalf("stream counters %+v, want %+v", old[LayerStream], want)
	}
	now, _ := k.Counters()
	if now[LayerStream] != (LayerCounters{}) {
		t.Fatalf("after reset %+v", now[LayerStream])
	}
	if k.totals()[LayerStream].Leaked != 9 {
		t.Fatalf("leaked %d chains, want 9", k.totals()[LayerStream].Leaked)
	}
	k.StopDriver()
	k.StartDriver(DriverConfig{})
	if c, _ := k.Counters(); c[LayerStream] != (LayerCounters{}) {
		t.Fatal("a restarted driver kept its counters")
	}
}

func TestChainLengths(t *testing.T) {
	p := DefaultParams()
	for n, want := range map[int]int{0: 0, 1: 1, 1460: 1, 1461: 2, 8 * 1460: 8, 65536: 45} {
		if got := p.StreamChain(n); got != want {
			t.Errorf("StreamChain(%d)=%d want %d", n, got, want)
		}
	}
	// 1472 B of payload fits one 1500-byte packet; one byte more fragments.
	for n, want := range map[int]int{64: 1, 1472: 1, 1473: 2, 2952: 2, 2953: 3, 4000: 3, 65507: 45} {
		if got := p.FragmentChain(n); got != want {
			t.Errorf("FragmentChain(%d)=%d want %d", n, got, want)
		}
	}
	for n, want := range map[int]int{1: 0, 2: 1, 3: 2, 4: 2, 5: 3, 8: 3, 9: 4, 16: 4, 17: 5, 1000: 5} {
		if got := HistBucket(n); got != want {
			t.Errorf("HistBucket(%d)=%d want %d", n, got, want)
		}
	}
}

func TestNoiseIsSeededStationaryAndBalanced(t *testing.T) {
	still := DefaultParams()
	still.DriftSigma, still.JumpsPerMinute = -1, -1 // the stationary part alone
	mk := func(seed int64) *Kernel {
		k := New(Config{Arch: "x64", OSVersion: "6.1", Seed: seed, Noise: true, Params: still})
		t.Cleanup(k.Close)
		return k
	}
	a, b, c := mk(42), mk(42), mk(43)
	step := DefaultParams().NoiseStep
	var xs []float64
	differs := false
	var prev PoolSnapshot
	for i := 0; i < 3000; i++ {
		at := time.Duration(i) * step
		pa, pb, pc := a.Pool(at), b.Pool(at), c.Pool(at)
		if pa.Bytes != pb.Bytes || pa.Allocs != pb.Allocs || pa.Frees != pb.Frees {
			t.Fatalf("step %d: same seed, different pool: %d vs %d", i, pa.Bytes, pb.Bytes)
		}
		differs = differs || pa.Bytes != pc.Bytes
		xs = append(xs, float64(pa.Bytes))
		if i > 0 && (pa.Allocs < prev.Allocs || pa.Frees < prev.Frees) {
			t.Fatalf("step %d: counts went back: %+v -> %+v", i, prev, pa)
		}
		if pa.Frees > pa.Allocs {
			t.Fatalf("more frees than allocations: %+v", pa)
		}
		prev = pa
	}
	if !differs {
		t.Fatal("another seed gave the same noise")
	}
	mean, sd, lag1 := stats(xs)
	base := float64(BaselineBytes("6.1", "x64"))
	if math.Abs(mean-base) > 2000 {
		t.Errorf("noise mean %f, want near the baseline %f", mean, base)
	}
	if sd < 0.7*8192 || sd > 1.3*8192 {
		t.Errorf("noise std. deviation %f, want about 8192", sd)
	}
	if lag1 < 0.35 || lag1 > 0.65 {
		t.Errorf("lag-1 autocorrelation %f, want about 0.5", lag1)
	}
	// Sampling at other moments does not change the values at these.
	d, e := mk(42), mk(42)
	d.Pool(17 * step)
	if d.Pool(20*step).Bytes != e.Pool(20*step).Bytes {
		t.Fatal("noise depends on when it is sampled")
	}
}

// The drift is a random walk of DriftSigma per √s and the jumps come at their rate with
// their mean size, both on the disturbance tag only, the same for a seed whenever sampled.
func TestDriftAndJumpsFollowTheirParameters(t *testing.T) {
	p := DefaultParams()
	p.NoiseSigma = 1e-9 // leave the disturbance alone on the total (noise is zero only by default)
	p.JumpsPerMinute = -1
	const seeds, secs = 40, 300
	var incr []float64
	for seed := int64(1); seed <= seeds; seed++ {
		k := New(Config{Arch: "x64", OSVersion: "6.1", Seed: seed, Noise: true, Params: p})
		prev := float64(tag(k.Pool(0), p.DisturbTag).Bytes)
		for s := 1; s <= secs; s++ {
			cur := float64(tag(k.Pool(time.Duration(s)*time.Second), p.DisturbTag).Bytes)
			incr = append(incr, cur-prev)
			prev = cur
		}
		k.Close()
	}
	_, sd, lag1 := stats(incr)
	if math.Abs(sd-p.DriftSigma) > 0.1*p.DriftSigma {
		t.Errorf("drift over 1 s: std. deviation %.0f B, want about %.0f", sd, p.DriftSigma)
	}
	if math.Abs(lag1) > 0.1 {
		t.Errorf("drift increments correlate: lag-1 %.2f, want about 0 (a random walk)", lag1)
	}

	// Jumps alone: count the seconds the tag moved in, over an hour per seed (two jumps in
	// one second are rare at one a minute).
	p = DefaultParams()
	p.NoiseSigma, p.DriftSigma = 1e-9, -1
	var jumps, up int
	var size float64
	for seed := int64(1); seed <= 20; seed++ {
		k := New(Config{Arch: "x64", OSVersion: "6.1", Seed: seed, Noise: true, Params: p})
		prev := float64(tag(k.Pool(0), p.DisturbTag).Bytes)
		for i := 1; i <= 3600; i++ {
			snap := k.Pool(time.Duration(i) * time.Second)
			if other := tag(snap, "Irp ").Bytes; i == 1 && other != tag(k.Pool(0), "Irp ").Bytes {
				t.Fatal("the disturbance moved another tag")
			}
			cur := float64(tag(snap, p.DisturbTag).Bytes)
			if d := cur - prev; math.Abs(d) > 1 {
				jumps++
				size += math.Abs(d)
				if d > 0 {
					up++
				}
			}
			prev = cur
		}
		k.Close()
	}
	if want := 20 * 60 * p.JumpsPerMinute; math.Abs(float64(jumps)-want) > 4*math.Sqrt(want) {
		t.Errorf("%d jumps in 20 hours, want about %.0f", jumps, want)
	}
	if mean := size / float64(jumps); math.Abs(mean-p.JumpBytes) > 0.15*p.JumpBytes {
		t.Errorf("mean jump %.0f B, want about %.0f", mean, p.JumpBytes)
	}
	if share := float64(up) / float64(jumps); share < 0.5 || share > 0.7 {
		t.Errorf("%.0f%% of jumps allocate, want about 60%%", 100*share)
	}

	// On by default, a function of the seed and the step, whenever sampled; off with the noise.
	a := New(Config{Arch: "x64", OSVersion: "6.1", Seed: 9, Noise: true})
	b := New(Config{Arch: "x64", OSVersion: "6.1", Seed: 9, Noise: true})
	q := New(Config{Arch: "x64", OSVersion: "6.1", Seed: 9})
	defer a.Close()
	defer b.Close()
	defer q.Close()
	b.Pool(time.Minute)
	if x, y := tag(a.Pool(2*time.Minute), "MmCa").Bytes, tag(b.Pool(2*time.Minute), "MmCa").Bytes; x != y {
		t.Errorf("the disturbance depends on when it is sampled: %d vs %d", x, y)
	}
	if q.Pool(time.Hour).Bytes != q.Pool(0).Bytes {
		t.Error("without noise the pool moved")
	}
}

func stats(xs []float64) (mean, sd, lag1 float64) {
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	var v, c float64
	for i, x := range xs {
		v += (x - mean) * (x - mean)
		if i > 0 {
			c += (x - mean) * (xs[i-1] - mean)
		}
	}
	return mean, math.Sqrt(v / float64(len(xs))), c / v
}

func TestInflightBuffersFollowTrafficAndAreFreed(t *testing.T) {
	p := DefaultParams()
	p.NoiseStep = 20 * time.Millisecond
	p.InflightLatency = 10 * time.Millisecond // half a step: visible
	k := New(Config{Arch: "x64", OSVersion: "6.1", Seed: 3, Noise: true, Params: p})
	t.Cleanup(k.Close)
	local := netip.AddrPortFrom(loopback, 1)
	base := tag(k.Pool(0), TagInflight).Bytes
	stop := time.Now().Add(10 * time.Second)
	for k.inflight.Load() == 0 && time.Now().Before(stop) {
		for i := 0; i < 100; i++ {
			k.Indicate(LayerTransport, 1, local)
		}
		time.Sleep(time.Millisecond)
	}
	if k.inflight.Load() == 0 {
		t.Fatal("traffic left no buffers in flight")
	}
	if got := tag(k.Pool(time.Second), TagInflight).Bytes; got <= base {
		t.Fatalf("NDnd %d, not above its baseline %d under traffic", got, base)
	}
	waitFor(t, "in-flight buffers to drain", func() bool { return k.inflight.Load() == 0 })
	u := tag(k.Pool(2*time.Second), TagInflight)
	if u.Bytes != base {
		t.Fatalf("NDnd %d after traffic, want its baseline %d", u.Bytes, base)
	}
}

func TestCPUGrowsWithTraffic(t *testing.T) {
	k := quietKernel(t, "x64", false)
	c0 := k.CPU(time.Second)
	if c0.KernelMS == 0 || c0.UserMS == 0 || c0.IdleMS == 0 || c0.KernelMS+c0.UserMS+c0.IdleMS > 2000 {
		t.Fatalf("idle CPU times %+v for 1 s on 2 CPUs", c0)
	}
	local := netip.AddrPortFrom(loopback, 1)
	for i := 0; i < 100000; i++ {
		k.Indicate(LayerForward, 3, local)
	}
	c1 := k.CPU(2 * time.Second)
	idleOnly := k.p.BackgroundKernel * 4000
	if float64(c1.KernelMS) < idleOnly+300 {
		t.Fatalf("kernel time %d ms after 300k NBLs, want at least %f", c1.KernelMS, idleOnly+300)
	}
	if c1.IdleMS < c0.IdleMS || c1.UserMS < c0.UserMS {
		t.Fatalf("CPU times went back: %+v -> %+v", c0, c1)
	}
	// Time asked out of order does not go back either.
	if c2 := k.CPU(time.Second); c2.KernelMS < c1.KernelMS || c2.IdleMS < c1.IdleMS {
		t.Fatalf("went back: %+v -> %+v", c1, c2)
	}
}

func TestListenRefusesNonLoopback(t *testing.T) {
	k := quietKernel(t, "x64", false)
	if _, err := Listen(k, netip.MustParseAddr("192.0.2.1"), Ports{}); err == nil {
		t.Fatal("listened on a non-loopback address")
	}
}

// The forward socket listens on its own address when one is given (a network behind the
// guest), keeps it across a reboot, and refuses one off loopback.
func TestForwardHost(t *testing.T) {
	k := quietKernel(t, "x64", false)
	fh := netip.MustParseAddr("127.0.0.77")
	n, err := Listen(k, loopback, Ports{ForwardHost: fh})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	stream, fwd, _ := n.Addrs()
	if fwd.Addr() != fh || stream.Addr() != loopback || n.Ports().ForwardHost != fh {
		t.Fatalf("stream %s forward %s ports %+v", stream, fwd, n.Ports())
	}
	if _, err := Listen(k, loopback, Ports{ForwardHost: netip.MustParseAddr("10.57.1.10")}); err == nil {
		t.Fatal("forward socket off loopback")
	}
}

func TestRelistenSamePorts(t *testing.T) {
	k := quietKernel(t, "x64", false)
	n, err := Listen(k, loopback, Ports{})
	if err != nil {
		t.Fatal(err)
	}
	ports := n.Ports()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	n2, err := Listen(k, loopback, ports)
	if err != nil {
		t.Fatalf("could not reopen %+v: %v", ports, err)
	}
	defer n2.Close()
	if n2.Ports() != ports {
		t.Fatalf("ports %+v, want %+v", n2.Ports(), ports)
	}
}

func BenchmarkClassify(b *testing.B) {
	k := New(Config{Arch: "x64", OSVersion: "6.1"})
	defer k.Close()
	k.StartDriver(DriverConfig{StreamPort: 1, ForwardPrefix: netip.MustParsePrefix("127.0.0.1/32")})
	local := netip.AddrPortFrom(loopback, 1)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k.Indicate(LayerForward, 3, local)
		}
	})
}

func BenchmarkUDPReceive(b *testing.B) {
	k := New(Config{Arch: "x64", OSVersion: "6.1"})
	defer k.Close()
	n, err := Listen(k, loopback, Ports{})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	k.StartDriver(driverFor(n))
	_, fwd, _ := n.Addrs()
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(fwd))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 4000)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Write(buf)
	}
	reportReceived(b, k, LayerForward)
}

// reportReceived waits while datagrams still come in (at most 5 s), then reports the share
// of the b.N sent that layer l indicated. Datagrams the socket dropped under overload are
// lost, as on a NIC.
func reportReceived(b *testing.B, k *Kernel, l Layer) {
	deadline := time.Now().Add(5 * time.Second)
	for last := uint64(0); time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		got := k.totals()[l].Chains
		if got >= uint64(b.N) || got == last {
			break
		}
		last = got
	}
	b.StopTimer()
	got := k.totals()[l].Chains
	b.ReportMetric(float64(got)/float64(b.N), "received/sent")
}

// pathTotals are the model's own totals for one layer since boot (not the driver's).
type pathTotals struct {
	Chains, NBLs, Freed, Blocked, Leaked, LeakedBytes uint64
}

// totals returns the totals of every layer since boot: what the tests hold the driver's
// counters and the pool against.
func (k *Kernel) totals() [numLayers]pathTotals {
	var t [numLayers]pathTotals
	for i := range k.paths {
		ps := &k.paths[i]
		t[i] = pathTotals{Freed: ps.freed.Load(), Leaked: ps.leaked.Load(), LeakedBytes: ps.leakBytes.Load(),
			Blocked: ps.blocked.Load(), Chains: ps.chains.Load(), NBLs: ps.nbls.Load()}
	}
	return t
}

// Permit-and-count classifies and counts as block mode does, blocks nothing and leaks
// nothing; every load starts in block mode.
func TestDriverPermitMode(t *testing.T) {
	k := quietKernel(t, "x64", false)
	stream := netip.AddrPortFrom(loopback, 6000)
	if _, ok := k.SetDriverMode(true); ok {
		t.Fatal("a mode was set with no driver loaded")
	}
	k.StartDriver(DriverConfig{StreamPort: 6000})
	if _, ok := k.SetDriverMode(true); !ok {
		t.Fatal("SetDriverMode on a loaded driver failed")
	}
	for range 10 {
		if k.Indicate(LayerStream, 8, stream) {
			t.Fatal("a chain was blocked in permit mode")
		}
	}
	c, _ := k.Counters()
	want := LayerCounters{Classify: 10, NBLs: 80, MultiChain: 10, Hist: [6]uint64{0, 0, 0, 10, 0, 0}}
	if c[LayerStream] != want {
		t.Fatalf("permit-mode counters %+v, want %+v", c[LayerStream], want)
	}
	if tot := k.totals()[LayerStream]; tot.Leaked != 0 || tot.Freed != tot.NBLs {
		t.Fatalf("permit mode leaked: %+v", tot)
	}
	k.SetDriverMode(false)
	if !k.Indicate(LayerStream, 8, stream) {
		t.Fatal("block mode again did not block")
	}
	k.StopDriver()
	k.StartDriver(DriverConfig{StreamPort: 6000})
	if !k.Indicate(LayerStream, 8, stream) {
		t.Fatal("a reloaded driver did not start in block mode")
	}
}

// PatchedLossShare takes its share of the callout's chains on a patched netio only.
func TestPatchedLossShare(t *testing.T) {
	for _, patched := range []bool{false, true} {
		k := New(Config{Arch: "x64", OSVersion: "6.1", Patched: patched, Params: Params{PatchedLossShare: 0.25}})
		t.Cleanup(k.Close)
		k.StartDriver(DriverConfig{ControlPort: 5000})
		k.SetDriverMode(true)
		local := netip.AddrPortFrom(loopback, 5000)
		for range 100 {
			k.IndicateN(LayerTransport, 1, 10, local)
		}
		c, _ := k.Counters()
		want := uint64(1000)
		if patched {
			want = 750
		}
		if c[LayerTransport].Classify != want {
			t.Errorf("patched=%v: %d chains classified of 1000, want %d", patched, c[LayerTransport].Classify, want)
		}
		if tot := k.totals()[LayerTransport]; tot.Freed != tot.NBLs {
			t.Errorf("patched=%v: lost chains were not freed: %+v", patched, tot)
		}
	}
}

// Windows' default: fragment grouping off. Each forwarded fragment is indicated alone, the
// driver permits single NBLs, so nothing is blocked and nothing leaks, until grouping is
// turned on (netsh applies it at once), when each group is indicated too and blocked.
func TestFragmentGroupingOffIndicatesLoneFragmentsOnly(t *testing.T) {
	k := New(Config{Arch: "x64", OSVersion: "6.1", Seed: 1})
	t.Cleanup(k.Close)
	if k.FragmentGrouping() {
		t.Fatal("fragment grouping is on in a new kernel; Windows starts with it off")
	}
	n := startNet(t, k)
	before := k.Pool(0)
	if err := k.StartDriver(driverFor(n)); err != nil {
		t.Fatal(err)
	}
	_, fwd, _ := n.Addrs()
	sendUDP(t, fwd, 4000, 50) // 3 fragments each
	waitFor(t, "the fragments", func() bool {
		c, _ := k.Counters()
		return c[LayerForward].Classify == 3*50
	})
	c, _ := k.Counters()
	if f := c[LayerForward]; f.Blocked != 0 || f.MultiChain != 0 || f.Hist[0] != 3*50 {
		t.Fatalf("grouping off: forward %+v, want 150 lone fragments, none blocked", f)
	}
	if after := k.Pool(time.Second); after.Bytes != before.Bytes {
		t.Fatalf("grouping off: the pool moved by %d bytes", int64(after.Bytes)-int64(before.Bytes))
	}

	k.SetFragmentGrouping(true)
	sendUDP(t, fwd, 4000, 50)
	waitFor(t, "the groups", func() bool {
		c, _ := k.Counters()
		return c[LayerForward].Classify == 3*50+4*50
	})
	c, _ = k.Counters()
	if f := c[LayerForward]; f.Blocked != 50 || f.MultiBlocked != 50 || f.Hist[2] != 50 {
		t.Fatalf("grouping on: forward %+v, want 50 groups of 3 blocked", f)
	}
	if got := k.Pool(time.Second).Bytes - before.Bytes; got != 50*k.NBLBytes() {
		t.Fatalf("grouping on: pool grew %d bytes, want 50 leaked NBLs (%d)", got, 50*k.NBLBytes())
	}
}
