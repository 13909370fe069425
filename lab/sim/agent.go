package sim

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/wfplab/wfplab/lab/agentfmt"
	"github.com/wfplab/wfplab/lab/sim/cmdexe"
	"github.com/wfplab/wfplab/lab/sim/kernel"
)

// agentVersion is what the simulated agent reports as ver=; "+sim" says it is the model.
const agentVersion = "0.1.0+sim"

// agent is the simulated wfplab-agent.exe: versions, sample, counters, reset, mode,
// printing the lines of guest/agent/FORMAT.md.
func (g *Machine) agent(ctx context.Context, b *boot, p *cmdexe.Process) int {
	if len(p.Args) == 0 {
		return agentUsage(p, "missing command: use versions, sample --interval-ms N, counters, reset or mode block|permit")
	}
	switch strings.ToLower(p.Args[0]) {
	case "versions":
		if len(p.Args) != 1 {
			return agentUsage(p, "versions takes no arguments")
		}
		fmt.Fprint(p.Stdout, g.inventoryLine(b))
		return 0
	case "counters", "reset":
		if len(p.Args) != 1 {
			return agentUsage(p, p.Args[0]+" takes no arguments")
		}
		var c [3]kernel.LayerCounters
		var ok bool
		if strings.EqualFold(p.Args[0], "reset") {
			c, ok = b.kern.ResetCounters()
		} else {
			c, ok = b.kern.Counters()
		}
		fmt.Fprint(p.Stdout, "C1 "+driverFields(c, ok)+"\r\n")
		return 0
	case "mode":
		// The real agent compares case-sensitively (strcmp), so the sim does too.
		if len(p.Args) != 2 || p.Args[1] != agentfmt.ModeBlock && p.Args[1] != agentfmt.ModePermit {
			return agentUsage(p, "mode takes block or permit")
		}
		c, ok := b.kern.SetDriverMode(p.Args[1] == agentfmt.ModePermit)
		if !ok {
			fmt.Fprint(p.Stdout, "C1 "+driverFields(c, false)+"\r\n")
			return 2
		}
		fields := driverFields(c, true)
		// mode= follows drv=, as the real agent writes it.
		fields = strings.Replace(fields, "drv=running", "drv=running mode="+p.Args[1], 1)
		fmt.Fprint(p.Stdout, "C1 "+fields+"\r\n")
		return 0
	case "sample":
		interval := 1000
		for i := 1; i < len(p.Args); i++ {
			switch p.Args[i] {
			case "--interval-ms":
				if i+1 >= len(p.Args) {
					return agentUsage(p, "--interval-ms needs a number of milliseconds")
				}
				i++
				n, err := strconv.Atoi(p.Args[i])
				if err != nil || n < 1 || n > 3600000 {
					return agentUsage(p, "--interval-ms must be 1..3600000")
				}
				interval = n
			default:
				return agentUsage(p, "unknown option "+p.Args[i])
			}
		}
		return g.sample(ctx, b, p, time.Duration(interval)*time.Millisecond)
	}
	return agentUsage(p, "unknown command "+p.Args[0])
}

func agentUsage(p *cmdexe.Process, msg string) int {
	fmt.Fprintf(p.Stdout, "E1 where=usage code=87 msg=%s\r\n", agentfmt.Escape(msg))
	return 1
}

// sample writes H1, then an S1 line every interval of guest time until stdin ends, the
// command is terminated, or the guest goes down.
func (g *Machine) sample(ctx context.Context, b *boot, p *cmdexe.Process, interval time.Duration) int {
	fmt.Fprintf(p.Stdout, "H1 agent=wfplab-agent ver=%s interval_ms=%d arch=%s pid=%d\r\n",
		agentfmt.Escape(agentVersion), interval/time.Millisecond, g.os.Arch, g.newPID())
	stdinDone := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, p.Stdin)
		close(stdinDone)
	}()
	var prev map[string]kernel.TagUsage
	next := b.uptime()
	t := time.NewTimer(0)
	defer t.Stop()
	var dies <-chan time.Time // the agent_dies_after fault
	if d := g.cfg.Faults.AgentDiesAfter; d > 0 {
		death := time.NewTimer(d)
		defer death.Stop()
		dies = death.C
	}
	for seq := uint64(0); ; seq++ {
		select {
		case <-dies:
			g.logf("fault: the agent dies after %v of sampling", g.cfg.Faults.AgentDiesAfter)
			fmt.Fprintf(p.Stdout, "E1 where=sample code=3221225477 msg=%s\r\n", agentfmt.Escape("access violation (fault injection)"))
			return 2 // a fatal error, as FORMAT.md's exit codes allow
		case <-ctx.Done():
			return 0
		case <-stdinDone:
			return 0
		case <-b.down:
			return 0
		case <-b.hung: // a hung guest samples nothing more
			select {
			case <-ctx.Done():
			case <-b.down:
			}
			return 0
		case <-t.C:
		}
		line, tags := g.sampleLine(b, seq, prev)
		prev = tags
		if _, err := io.WriteString(p.Stdout, line); err != nil {
			return 0 // the client went away
		}
		// Keep to the interval's grid; after a stall, start again from now.
		next += interval
		now := b.uptime()
		if next < now-interval {
			next = now
		}
		t.Reset(max(next-now, 0))
	}
}

// sampleLine formats one S1 line and returns the tags it compared against.
func (g *Machine) sampleLine(b *boot, seq uint64, prev map[string]kernel.TagUsage) (string, map[string]kernel.TagUsage) {
	at := b.uptime()
	pool := b.kern.Pool(at)
	cpu := b.kern.CPU(at)
	c, ok := b.kern.Counters()
	var s strings.Builder
	fmt.Fprintf(&s, "S1 seq=%d t_us=%d np_bytes=%d np_allocs=%d np_frees=%d cpu_kernel_ms=%d cpu_user_ms=%d cpu_idle_ms=%d %s",
		seq, at.Microseconds(), pool.Bytes, pool.Allocs, pool.Frees, cpu.KernelMS, cpu.UserMS, cpu.IdleMS, driverFields(c, ok))
	tags := make(map[string]kernel.TagUsage, len(pool.Tags))
	for _, u := range pool.Tags {
		tags[u.Tag] = u
		old, seen := prev[u.Tag]
		changed := prev == nil && (u.Bytes != 0 || u.Allocs != 0) || prev != nil && (!seen || old != u)
		if changed {
			fmt.Fprintf(&s, " T.%s=%d,%d,%d", agentfmt.Escape(u.Tag), u.Allocs, u.Frees, u.Bytes)
		}
	}
	s.WriteString("\r\n")
	return s.String(), tags
}

// driverFields is `drv=... L.stream=... L.stream.multi_blocked=... L.forward=...` for S1 and
// C1, as the real agent prints them from a version 2 driver.
func driverFields(c [3]kernel.LayerCounters, running bool) string {
	if !running {
		return "drv=absent"
	}
	var s strings.Builder
	s.WriteString("drv=running")
	for _, l := range kernel.Layers {
		lc := c[l]
		fmt.Fprintf(&s, " L.%s=%d,%d,%d,%d", l, lc.Classify, lc.Blocked, lc.NBLs, lc.MultiChain)
		for _, h := range lc.Hist {
			fmt.Fprintf(&s, ",%d", h)
		}
		fmt.Fprintf(&s, " L.%s.multi_blocked=%d", l, lc.MultiBlocked)
	}
	return s.String()
}

// inventoryLine is the V1 line: file versions and test signing in force for this boot.
func (g *Machine) inventoryLine(b *boot) string {
	ts := "off"
	if b.testSigning {
		ts = "on"
	}
	return fmt.Sprintf("V1 os_build=%s os_version=%s sp=%d arch=%s netio=%s tcpip=%s fwpkclnt=%s testsigning=%s drv_service=%s boot_us=%d\r\n",
		g.os.Build, g.os.Version, g.os.SP, g.os.Arch, b.files.netio, b.files.tcpip, b.files.fwpkclnt, ts,
		g.serviceState(b, agentDriverService), b.uptime().Microseconds())
}
