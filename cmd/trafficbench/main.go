//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wfplab/wfplab/lab/sim/kernel"
	"github.com/wfplab/wfplab/traffic"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "sink" {
		if err := sink(); err != nil {
			fmt.Fprintln(os.Stderr, "sink:", err)
			os.Exit(2)
		}
		return
	}
	quick := flag.Bool("quick", false, "short runs (2 s each): a smoke test, not the reference figures")
	maxSecs := flag.Float64("max-secs", 5, "seconds of each maximum-rate run")
	paceSecs := flag.Float64("pace-secs", 10, "seconds of each pacing run")
	rates := flag.String("rates", "1000,10000,50000,200000", "pacing targets, datagrams/s")
	cpuRate := flag.Float64("cpu-rate", 50000, "datagrams/s of the CPU run")
	flag.Float64Var(&simRate, "sim-rate", 200000, "datagrams/s offered to the simulated guest")
	flag.BoolVar(&verbose, "v", false, "print every second of the pacing runs")
	only := flag.String("only", "", "run only these sections, comma-separated: max, pace, cpu, sim (default all)")
	flag.Parse()
	if *quick {
		*maxSecs, *paceSecs = 2, 2
	}
	if err := pickSections(*only); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if err := bench(*maxSecs, *paceSecs, *rates, *cpuRate); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

var (
	verbose bool
	simRate float64
	// sections are the parts of the benchmark to run (-only).
	sections = map[string]bool{"max": true, "pace": true, "cpu": true, "sim": true}
)

// pickSections keeps only the sections named in list (all when list is empty).
func pickSections(list string) error {
	if strings.TrimSpace(list) == "" {
		return nil
	}
	picked := map[string]bool{}
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if _, ok := sections[f]; !ok {
			return fmt.Errorf("-only: %q is not a section: use max, pace, cpu or sim", f)
		}
		picked[f] = true
	}
	sections = picked
	return nil
}

func bench(maxSecs, paceSecs float64, rateList string, cpuRate float64) error {
	sk, err := startSink()
	if err != nil {
		return err
	}
	defer sk.stop()
	to := traffic.Addrs{Control: sk.addr}
	fmt.Printf("traffic generator benchmark on loopback (%s), sink in a separate process at %s\n\n", hostInfo(), sk.addr)

	if sections["max"] {
		maxRate(sk, to, maxSecs)
	}
	if sections["pace"] {
		if err := pacing(to, paceSecs, rateList); err != nil {
			return err
		}
	}
	if sections["cpu"] {
		cpuUse(to, paceSecs, cpuRate)
	}
	if !sections["sim"] {
		return nil
	}
	// 4. The simulated guest's receive path (lab/sim/kernel), in this process as in `wfplab run`.
	fmt.Printf("\n== simulated guest (lab/sim/kernel) classifying %.0f datagrams/s offered for %.0f s (goal ≥ 95%%)\n", simRate, paceSecs)
	return simGuest(simRate, paceSecs)
}

// maxRate measures the maximum rate of 64-byte single-nbl datagrams from one sending
// goroutine on each send path, and iperf3's.
func maxRate(sk *sinkProc, to traffic.Addrs, maxSecs float64) {
	fmt.Printf("== maximum rate: 64-byte UDP datagrams, one sending goroutine, %.0f s each\n", maxSecs)
	fmt.Printf("%-28s %14s %12s %14s\n", "sender", "datagrams/s", "per call", "sink received")
	fmt.Println("(the sink is one reader on the other core: it cannot keep up with the fastest senders)")
	best := 0.0
	for _, mode := range []traffic.SendMode{traffic.SendAuto, traffic.SendBatch, traffic.SendSingle} {
		before := sk.settledCount()
		spec := traffic.Spec{Profile: traffic.SingleNBL, Duration: secs(maxSecs), Send: mode}
		c, err := traffic.Run(context.Background(), spec, to, nil, nil)
		if err != nil {
			fmt.Printf("%-28s error: %v\n", modeName(mode), err)
			continue
		}
		rate := float64(c.Packets) / maxSecs
		best = math.Max(best, rate)
		received := sk.settledCount() - before
		fmt.Printf("%-28s %14.0f %12.1f %13.1f%%\n", modeName(mode), rate, float64(c.Packets)/float64(max(c.Syscalls, 1)), 100*float64(received)/float64(max(c.Packets, 1)))
	}
	ip, ipErr := iperf3Rate(maxSecs)
	if ipErr != nil {
		fmt.Printf("%-28s not measured: %v\n", "iperf3 -u -l 64 -b 0", ipErr)
	} else {
		fmt.Printf("%-28s %14.0f\n", "iperf3 -u -l 64 -b 0", ip)
		fmt.Printf("ratio (best of ours / iperf3): %.2f×   goal ≥ 2×: %s\n", best/ip, verdict(best/ip >= 2))
	}

}

// pacing measures pacing accuracy at each rate of rateList.
func pacing(to traffic.Addrs, paceSecs float64, rateList string) error {
	fmt.Printf("\n== pacing accuracy: %.0f s per rate (goal: whole run within ±1%%, each second within ±5%%)\n", paceSecs)
	fmt.Printf("%10s %12s %9s %12s %12s %8s %s\n", "target/s", "achieved/s", "error", "worst sec/s", "worst sec", "calls/s", "")
	for _, f := range strings.Split(rateList, ",") {
		target, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || target <= 0 {
			return fmt.Errorf("-rates: %q is not a positive number", f)
		}
		var worst, worstRate float64
		var series []string
		onTick := func(t traffic.Tick) {
			series = append(series, fmt.Sprintf("%.0f", t.PacketRate()))
			if t.Span != time.Second {
				return // the final partial second is in the total, not judged alone
			}
			r := t.PacketRate()
			if d := math.Abs(r-target) / target; d >= worst {
				worst, worstRate = d, r
			}
		}
		spec := traffic.Spec{Profile: traffic.SingleNBL, Rate: target, Duration: secs(paceSecs)}
		c, err := traffic.Run(context.Background(), spec, to, nil, onTick)
		if err != nil {
			return err
		}
		achieved := float64(c.Packets) / paceSecs
		errPct := 100 * (achieved - target) / target
		ok := math.Abs(errPct) <= 1 && worst <= 0.05
		fmt.Printf("%10.0f %12.1f %+8.2f%% %12.0f %+11.2f%% %8.0f %s\n", target, achieved, errPct, worstRate, 100*math.Copysign(worst, worstRate-target), float64(c.Syscalls)/paceSecs, verdict(ok))
		if verbose {
			fmt.Printf("%10s per second: %s\n", "", strings.Join(series, " "))
		}
	}

	return nil
}

// cpuUse measures the generator's CPU at cpuRate on each send path.
func cpuUse(to traffic.Addrs, paceSecs, cpuRate float64) {
	fmt.Printf("\n== CPU of the generator at %.0f datagrams/s for %.0f s (goal < 25%% of one core)\n", cpuRate, paceSecs)
	for _, mode := range []traffic.SendMode{traffic.SendAuto, traffic.SendBatch, traffic.SendSingle} {
		u0, s0 := cpuTimes()
		start := time.Now()
		spec := traffic.Spec{Profile: traffic.SingleNBL, Rate: cpuRate, Duration: secs(paceSecs), Send: mode}
		c, err := traffic.Run(context.Background(), spec, to, nil, nil)
		if err != nil {
			fmt.Printf("%-28s error: %v\n", modeName(mode), err)
			continue
		}
		wall := time.Since(start).Seconds()
		u1, s1 := cpuTimes()
		user, sys := (u1-u0)/wall*100, (s1-s0)/wall*100
		fmt.Printf("%-28s %6.1f%% of a core (user %.1f%%, system %.1f%%) at %.0f/s  %s\n", modeName(mode), user+sys, user, sys, float64(c.Packets)/paceSecs, verdict(user+sys < 25))
	}
	fmt.Println("System time includes the kernel's loopback delivery to the sink, which Linux runs in the sender's context.")
}

// simGuest offers simRate datagrams/s of the two UDP profiles to a simulated guest kernel
// with the driver filtering both paths, and prints how many datagrams reached the callout
// (single NBLs at the transport layer, fragment groups on the forward path).
func simGuest(rate, seconds float64) error {
	// Fragment grouping on, as the lab's prepare sets it on every guest.
	k := kernel.New(kernel.Config{Arch: "x64", OSVersion: "6.1", Seed: 1, GroupFragments: true})
	defer k.Close()
	ns, err := kernel.Listen(k, netip.MustParseAddr("127.0.0.1"), kernel.Ports{})
	if err != nil {
		return err
	}
	defer ns.Close()
	stream, forward, control := ns.Addrs()
	if err := k.StartDriver(kernel.DriverConfig{StreamPort: stream.Port(), ControlPort: control.Port(), ForwardPrefix: netip.PrefixFrom(forward.Addr(), 32)}); err != nil {
		return err
	}
	to := traffic.Addrs{Stream: stream, Forward: forward, Control: control}
	for _, tc := range []struct {
		profile traffic.Profile
		layer   kernel.Layer
	}{{traffic.SingleNBL, kernel.LayerTransport}, {traffic.FragmentForward, kernel.LayerForward}} {
		_, _ = k.ResetCounters()
		u0, s0 := cpuTimes()
		c, err := traffic.Run(context.Background(), traffic.Spec{Profile: tc.profile, Rate: rate, Duration: secs(seconds)}, to, nil, nil)
		if err != nil {
			return err
		}
		time.Sleep(300 * time.Millisecond)
		u1, s1 := cpuTimes()
		lc, _ := k.Counters()
		// A fragmented datagram is classified as each fragment alone and then as its group:
		// count the groups (chains of two or more) there, one per datagram.
		got := lc[tc.layer].Classify
		if tc.layer == kernel.LayerForward {
			got = lc[tc.layer].MultiChain
		}
		share := 100 * float64(got) / float64(max(c.Packets, 1))
		fmt.Printf("%-18s offered %10d (%.0f/s), classified %10d: %5.1f%%  %s  (CPU, generator and guest: %.0f%% of a core)\n",
			tc.profile, c.Packets, float64(c.Packets)/seconds, got, share, verdict(share >= 95), 100*(u1-u0+s1-s0)/(seconds+0.3))
	}
	return nil
}

func secs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func verdict(ok bool) string {
	if ok {
		return "MET"
	}
	return "NOT MET"
}

func modeName(m traffic.SendMode) string {
	switch m {
	case traffic.SendAuto:
		return "wfplab auto (UDP_SEGMENT)"
	case traffic.SendBatch:
		return "wfplab batch (sendmmsg)"
	default:
		return "wfplab single (write)"
	}
}

func hostInfo() string {
	var u syscall.Utsname
	release := "?"
	if syscall.Uname(&u) == nil {
		b := make([]byte, 0, len(u.Release))
		for _, c := range u.Release {
			if c == 0 {
				break
			}
			b = append(b, byte(c))
		}
		release = string(b)
	}
	n := 0
	if out, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		n = strings.Count(string(out), "processor\t:")
	}
	return fmt.Sprintf("Linux %s, %d CPUs", release, n)
}

// cpuTimes is this process's user and system CPU seconds so far.
func cpuTimes() (user, sys float64) {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec) + float64(ru.Utime.Usec)/1e6, float64(ru.Stime.Sec) + float64(ru.Stime.Usec)/1e6
}

// iperf3Rate runs iperf3's server and client on loopback and returns the client's datagrams/s.
func iperf3Rate(seconds float64) (float64, error) {
	path, err := exec.LookPath("iperf3")
	if err != nil {
		return 0, errors.New("iperf3 is not installed (run.sh installs it with apt-get)")
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), secs(seconds)+30*time.Second)
	defer cancel()
	server := exec.CommandContext(ctx, path, "-s", "-1", "-B", "127.0.0.1", "-p", port)
	if err := server.Start(); err != nil {
		return 0, err
	}
	defer func() { _ = server.Process.Kill(); _ = server.Wait() }()
	var out []byte
	for attempt := 0; attempt < 50; attempt++ { // the server needs a moment to listen
		time.Sleep(100 * time.Millisecond)
		out, err = exec.CommandContext(ctx, path, "-c", "127.0.0.1", "-p", port, "-u", "-l", "64", "-b", "0",
			"-t", strconv.FormatFloat(seconds, 'f', -1, 64), "-J").Output()
		if err == nil || !strings.Contains(string(out), "unable to connect") {
			break
		}
	}
	if err != nil {
		return 0, fmt.Errorf("iperf3 client: %v: %s", err, firstLine(out))
	}
	var report struct {
		End struct {
			Sum     iperfSum `json:"sum"`
			SumSent iperfSum `json:"sum_sent"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(out, &report); err != nil {
		return 0, fmt.Errorf("iperf3 -J output: %v", err)
	}
	if report.Error != "" {
		return 0, errors.New("iperf3: " + report.Error)
	}
	s := report.End.SumSent
	if s.Packets == 0 {
		s = report.End.Sum
	}
	if s.Seconds <= 0 || s.Packets == 0 {
		return 0, errors.New("iperf3 reported no packets")
	}
	return float64(s.Packets) / s.Seconds, nil
}

type iperfSum struct {
	Seconds float64 `json:"seconds"`
	Packets uint64  `json:"packets"`
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}

// sinkProc is the receiving process: it reads datagrams and answers "count" on its stdin.
type sinkProc struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	addr netip.AddrPort
}

func startSink() (*sinkProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "sink")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &sinkProc{cmd: cmd, in: in, out: bufio.NewReader(stdout)}
	line, err := s.out.ReadString('\n')
	if err != nil {
		s.stop()
		return nil, fmt.Errorf("sink did not start: %v", err)
	}
	if s.addr, err = netip.ParseAddrPort(strings.TrimSpace(line)); err != nil {
		s.stop()
		return nil, fmt.Errorf("sink said %q: %v", line, err)
	}
	return s, nil
}

func (s *sinkProc) count() uint64 {
	if _, err := io.WriteString(s.in, "count\n"); err != nil {
		return 0
	}
	line, _ := s.out.ReadString('\n')
	n, _ := strconv.ParseUint(strings.TrimSpace(line), 10, 64)
	return n
}

// settledCount waits for datagrams still in flight or queued, then counts.
func (s *sinkProc) settledCount() uint64 {
	time.Sleep(300 * time.Millisecond)
	return s.count()
}

func (s *sinkProc) stop() {
	s.in.Close() // the sink exits at EOF on stdin
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}
