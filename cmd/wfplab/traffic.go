package main

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wfplab/wfplab/traffic"
)

type trafficFlags struct {
	profile    string
	to         string
	rate       float64
	bitRate    float64
	duration   time.Duration
	maxPackets uint64
	payload    int
	burst      int
	conns      int
	allow      []string
	send       string
	quiet      bool
}

func newTrafficCmd() *cobra.Command {
	var f trafficFlags
	cmd := &cobra.Command{
		Use:   "traffic",
		Short: "Send one traffic profile to an address (for guests you drive yourself)",
		Long: `Traffic sends one profile to one address, shows the achieved rate every second and a final
table. stream-burst opens TCP connections to ADDR; fragment-forward and single-nbl send UDP
datagrams to ADDR. Destinations outside loopback must be inside an --allow network.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTraffic(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.profile, "profile", string(traffic.SingleNBL), "stream-burst, fragment-forward or single-nbl")
	fl.StringVar(&f.to, "to", "", "destination IP:PORT (required)")
	fl.Float64Var(&f.rate, "rate", 1000, "packets per second (segments for stream-burst); 0 = as fast as possible")
	fl.Float64Var(&f.bitRate, "bit-rate", 0, "payload bits per second instead of --rate")
	fl.DurationVar(&f.duration, "duration", 10*time.Second, "how long to send")
	fl.Uint64Var(&f.maxPackets, "max-packets", 0, "stop after this many packets (0 = no limit but --duration)")
	fl.IntVar(&f.payload, "payload", 0, "segment or datagram payload bytes (default per profile: 1460, 4000, 64)")
	fl.IntVar(&f.burst, "burst", 0, "stream-burst: segments per burst (default 8)")
	fl.IntVar(&f.conns, "conns", 0, "stream-burst: TCP connections (default 4)")
	fl.StringSliceVar(&f.allow, "allow", nil, "networks (CIDR) traffic may go to besides loopback")
	fl.StringVar(&f.send, "send", "", "UDP send path: gso, batch or single (default: gso where the kernel has it)")
	fl.BoolVar(&f.quiet, "quiet", false, "no per-second lines")
	return cmd
}

func runTraffic(cmd *cobra.Command, f trafficFlags) error {
	out := cmd.OutOrStdout()
	to, err := netip.ParseAddrPort(f.to)
	if err != nil {
		return withExit(exitFailure, fmt.Errorf("--to %q: want IP:PORT, e.g. 127.0.0.1:5001", f.to))
	}
	var allow traffic.Allow
	for _, a := range f.allow {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			return withExit(exitFailure, fmt.Errorf("--allow %q: want a CIDR network, e.g. 192.0.2.0/24", a))
		}
		allow = append(allow, p)
	}
	spec := traffic.Spec{
		Profile: traffic.Profile(f.profile), Rate: f.rate, BitRate: f.bitRate,
		Duration: f.duration, MaxPackets: f.maxPackets, PayloadBytes: f.payload,
		BurstSegments: f.burst, Conns: f.conns, Send: traffic.SendMode(f.send),
	}
	if f.bitRate > 0 {
		spec.Rate = 0
	}
	var target traffic.Addrs
	switch spec.Profile {
	case traffic.StreamBurst:
		target.Stream = to
	case traffic.FragmentForward:
		target.Forward = to
	case traffic.SingleNBL:
		target.Control = to
	default:
		return withExit(exitFailure, fmt.Errorf("--profile %q: want stream-burst, fragment-forward or single-nbl", f.profile))
	}
	if err := spec.Validate(); err != nil {
		return withExit(exitFailure, err)
	}
	// Refuse before anything is sent or printed; the flag here is --allow, not lab.allow.
	if !allow.Permits(to.Addr()) {
		return withExit(exitFailure, fmt.Errorf("--to %s is refused: it is neither loopback nor inside an --allow network (%s); add --allow with a prefix containing it only if that host belongs to your lab", to, allow))
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Fprintf(out, "%s to %s for %s\n", spec.Profile, to, f.duration)
	start := time.Now()
	onTick := func(t traffic.Tick) {
		if f.quiet {
			return
		}
		var sendErrs uint64
		for _, n := range t.Delta.SendErrors() {
			sendErrs += n
		}
		fmt.Fprintf(out, "%6.1fs  %10.0f pkts/s  %9.2f Mbit/s  resets %d  send errors %d\n",
			t.At.Sub(start).Seconds(), t.PacketRate(), t.BitRate()/1e6, t.Delta.Resets, sendErrs)
	}
	total, err := traffic.Run(ctx, spec, target, allow, onTick)
	elapsed := time.Since(start)
	printTrafficTotals(out, spec.Profile, total, elapsed)
	if err != nil && ctx.Err() == nil {
		return withExit(exitFailure, err)
	}
	if why := total.Undelivered(spec.Profile); why != "" && ctx.Err() == nil {
		return withExit(exitFailure, fmt.Errorf("%s to %s delivered nothing: %s; check the address and that the guest listens there", spec.Profile, to, why))
	}
	return nil
}

func printTrafficTotals(w io.Writer, p traffic.Profile, c traffic.Counters, elapsed time.Duration) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	secs := elapsed.Seconds()
	if secs <= 0 {
		secs = 1
	}
	fmt.Fprintf(tw, "packets\t%d\t%.0f/s\t\n", c.Packets, float64(c.Packets)/secs)
	fmt.Fprintf(tw, "bytes\t%d\t%.2f Mbit/s\t\n", c.Bytes, float64(c.Bytes)*8/secs/1e6)
	if p == traffic.StreamBurst {
		fmt.Fprintf(tw, "bursts\t%d\t\t\n", c.Bursts)
		fmt.Fprintf(tw, "connections\t%d\t\t\n", c.Conns)
		fmt.Fprintf(tw, "resets\t%d\t\t\n", c.Resets)
	}
	fmt.Fprintf(tw, "send calls\t%d\t\t\n", c.Syscalls)
	errs := traffic.ErrorList(c.SendErrors(), "")
	if errs == "" {
		errs = "none"
	}
	fmt.Fprintf(tw, "send errors\t%s\t\t\n", errs)
	fmt.Fprintf(tw, "elapsed\t%.2fs\t\t\n", secs)
	tw.Flush()
	if p == traffic.StreamBurst && c.Resets > 0 {
		// Not a failure: the guest ends a connection whose data its stream callout blocked.
		fmt.Fprintf(w, "resets: the guest reset %d connections after a burst, as Windows does when a stream callout blocks the data; each burst then goes out on a new connection\n", c.Resets)
	}
}
