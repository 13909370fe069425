package appliance

import (
	"fmt"
	"strconv"
	"strings"
)

// Params are what /init reads from the kernel command line (wfplab.NAME=VALUE). No secret
// ever goes there (it is readable in /proc/cmdline and QEMU's argv): the simulated guest's
// WinRM account is the simulator's default, vagrant / vagrant.
//
//	wfplab.target=win7-x64   catalog OS (default: the one the initramfs was built for)
//	wfplab.seed=1            the kernel model's seed
//	wfplab.noise=1           background pool noise on (1) or off (0)
//	wfplab.hang_pool_mb=0    stop answering once nonpaged pool passes N MiB (0: never)
//	wfplab.state=/dev/vda    the raw state disk ("none": keep nothing across reboots)
type Params struct {
	Target     string
	Seed       int64
	Noise      bool
	HangPoolMB uint64
	State      string
}

// BaseAppend is the part of the command line every appliance boot needs: the serial console
// (QEMU's -nographic), and a reboot at once on a kernel panic rather than a silent stop.
const BaseAppend = "console=ttyS0 quiet panic=-1"

// Append is the full kernel command line for p.
func (p Params) Append() string {
	s := fmt.Sprintf("%s wfplab.target=%s wfplab.seed=%d wfplab.noise=%d", BaseAppend, p.Target, p.Seed, b2i(p.Noise))
	if p.HangPoolMB > 0 {
		s += fmt.Sprintf(" wfplab.hang_pool_mb=%d", p.HangPoolMB)
	}
	if p.State != "" {
		s += " wfplab.state=" + p.State
	}
	return s
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ParseCmdline reads the wfplab.* parameters of a kernel command line over the defaults in p.
func ParseCmdline(cmdline string, p Params) (Params, error) {
	for _, f := range strings.Fields(cmdline) {
		k, v, ok := strings.Cut(f, "=")
		if !ok || !strings.HasPrefix(k, "wfplab.") {
			continue
		}
		var err error
		switch strings.TrimPrefix(k, "wfplab.") {
		case "target":
			p.Target = v
		case "seed":
			p.Seed, err = strconv.ParseInt(v, 10, 64)
		case "noise":
			p.Noise, err = strconv.ParseBool(v)
		case "hang_pool_mb":
			p.HangPoolMB, err = strconv.ParseUint(v, 10, 64)
		case "state":
			p.State = v
		default:
			return p, fmt.Errorf("kernel command line: unknown parameter %s (known: wfplab.target, seed, noise, hang_pool_mb, state)", k)
		}
		if err != nil {
			return p, fmt.Errorf("kernel command line: %s=%q: %w", k, v, err)
		}
	}
	return p, nil
}
