package contract

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Faults are the failures a simulated guest injects on purpose, so the lab's survival of
// them can be tested: set per target in a scenario (`faults:`) or with `wfplab sim serve
// --faults`. The zero value injects nothing. The lab never reads it: it must cope with
// whatever a guest does.
type Faults struct {
	// DropReceiveEvery closes the connection of every Nth WinRM Receive without an answer
	// (its output stays queued, as a dropped long poll leaves it on Windows).
	DropReceiveEvery int
	// HTTP500Every answers every Nth WinRM request with HTTP 500 (an internal error), unrun.
	HTTP500Every int
	// SlowEvery delays every Nth WinRM request by SlowBy before it is handled.
	SlowEvery int
	SlowBy    time.Duration
	// RebootEvery reboots the guest unexpectedly (a crash) each time it has been up this long.
	RebootEvery time.Duration
	// RebootDown is how long such a reboot keeps the guest down (0: the guest's usual reboot
	// time); longer than the lab's timeouts, it is a reboot slower than the timeout.
	RebootDown time.Duration
	// AgentDiesAfter makes every `wfplab-agent.exe sample` exit with an error after this long.
	AgentDiesAfter time.Duration
	// HangPoolMB makes the guest stop answering once its nonpaged pool passes this many MiB.
	HangPoolMB int
}

// FaultKeys are the keys ParseFaults accepts, in the order String writes them.
var FaultKeys = []string{"drop_receive_every", "http_500_every", "slow_every", "slow_by",
	"reboot_every", "reboot_down", "agent_dies_after", "hang_pool_mb"}

// Any reports whether any fault is set.
func (f Faults) Any() bool { return f != Faults{} }

// maxFaultDuration bounds every duration: a fault spec is a test setting, not a schedule.
const maxFaultDuration = 24 * time.Hour

// ParseFaults reads a spec of comma-separated key=value pairs, e.g.
// "http_500_every=7,slow_every=5,slow_by=2s,reboot_every=90s". Counts are whole numbers
// of at least 1 (0 turns the fault off); durations are Go durations. "" is no faults.
func ParseFaults(spec string) (Faults, error) {
	var f Faults
	seen := map[string]bool{}
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		key, val, ok := strings.Cut(item, "=")
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		if !ok || val == "" {
			return Faults{}, fmt.Errorf("fault %q: want key=value, e.g. http_500_every=7 (keys: %s)", item, strings.Join(FaultKeys, ", "))
		}
		if !slices.Contains(FaultKeys, key) {
			return Faults{}, fmt.Errorf("unknown fault %q: use one of %s", key, strings.Join(FaultKeys, ", "))
		}
		if seen[key] {
			return Faults{}, fmt.Errorf("fault %s is given twice", key)
		}
		seen[key] = true
		var err error
		switch key {
		case "drop_receive_every":
			f.DropReceiveEvery, err = faultCount(key, val)
		case "http_500_every":
			f.HTTP500Every, err = faultCount(key, val)
		case "slow_every":
			f.SlowEvery, err = faultCount(key, val)
		case "hang_pool_mb":
			f.HangPoolMB, err = faultCount(key, val)
		case "slow_by":
			f.SlowBy, err = faultDuration(key, val)
		case "reboot_every":
			f.RebootEvery, err = faultDuration(key, val)
		case "reboot_down":
			f.RebootDown, err = faultDuration(key, val)
		case "agent_dies_after":
			f.AgentDiesAfter, err = faultDuration(key, val)
		}
		if err != nil {
			return Faults{}, err
		}
	}
	switch {
	case f.SlowEvery > 0 && f.SlowBy == 0:
		return Faults{}, fmt.Errorf("slow_every=%d needs slow_by (how long each slow answer waits, e.g. slow_by=2s)", f.SlowEvery)
	case f.SlowBy > 0 && f.SlowEvery == 0:
		return Faults{}, fmt.Errorf("slow_by=%s needs slow_every (which requests are slow, e.g. slow_every=5)", f.SlowBy)
	case f.RebootDown > 0 && f.RebootEvery == 0:
		return Faults{}, fmt.Errorf("reboot_down=%s needs reboot_every (when the guest reboots, e.g. reboot_every=60s)", f.RebootDown)
	}
	return f, nil
}

func faultCount(key, val string) (int, error) {
	n, err := strconv.Atoi(val)
	if err != nil || n < 0 || n > 1<<20 {
		return 0, fmt.Errorf("fault %s=%s: want a whole number from 0 (off) to %d", key, val, 1<<20)
	}
	return n, nil
}

func faultDuration(key, val string) (time.Duration, error) {
	d, err := time.ParseDuration(val)
	if err != nil || d < 0 || d > maxFaultDuration {
		return 0, fmt.Errorf("fault %s=%s: want a duration such as 30s or 2m, at most %s", key, val, maxFaultDuration)
	}
	return d, nil
}

// String writes f as ParseFaults reads it (keys in FaultKeys order, zero ones left out).
func (f Faults) String() string {
	var parts []string
	add := func(key string, set bool, val string) {
		if set {
			parts = append(parts, key+"="+val)
		}
	}
	add("drop_receive_every", f.DropReceiveEvery > 0, strconv.Itoa(f.DropReceiveEvery))
	add("http_500_every", f.HTTP500Every > 0, strconv.Itoa(f.HTTP500Every))
	add("slow_every", f.SlowEvery > 0, strconv.Itoa(f.SlowEvery))
	add("slow_by", f.SlowBy > 0, f.SlowBy.String())
	add("reboot_every", f.RebootEvery > 0, f.RebootEvery.String())
	add("reboot_down", f.RebootDown > 0, f.RebootDown.String())
	add("agent_dies_after", f.AgentDiesAfter > 0, f.AgentDiesAfter.String())
	add("hang_pool_mb", f.HangPoolMB > 0, strconv.Itoa(f.HangPoolMB))
	return strings.Join(parts, ",")
}
