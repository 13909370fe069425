//go:build linux

package appliance

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/pprof"
	"strings"
	"time"
)

// The WinRM watchdog: a guest that stops answering mid-run leaves the lab nothing but
// GUEST_HUNG, so /init asks its own WinRM listener over loopback now and then and, when it
// stops answering, writes what it can see to the kernel log once per boot: the goroutines,
// the NICs' counters and free memory. It writes through /dev/kmsg, whose console path polls
// the UART, so the report reaches the serial console (console.log in the run folder) even if
// the console tty that the guest's own log lines go through is what stalled.
const (
	watchdogEvery   = 5 * time.Second
	watchdogTimeout = 5 * time.Second
	watchdogMisses  = 2 // in a row before the report
)

// watchWinRM asks url every `every` (each ask bounded by timeout) and calls report once,
// after misses failed asks in a row. It runs for the life of the boot, or until it reported.
func watchWinRM(url string, every, timeout time.Duration, misses int, report func(why string)) {
	client := &http.Client{Timeout: timeout}
	for missed := 0; ; {
		time.Sleep(every)
		// Any HTTP answer (401 without credentials) means the listener serves.
		resp, err := client.Post(url, "application/soap+xml;charset=UTF-8", strings.NewReader(""))
		if err == nil {
			resp.Body.Close()
			missed = 0
			continue
		}
		if missed++; missed >= misses {
			report(fmt.Sprintf("%s did not answer %d times in a row (last: %v)", url, missed, err))
			return
		}
	}
}

// reportStall writes the report to the kernel log at KERN_ERR, which passes "quiet".
func reportStall(why string) {
	// User-space writes to /dev/kmsg are rate limited by default; this report is one burst.
	_ = os.WriteFile("/proc/sys/kernel/printk_devkmsg", []byte("on\n"), 0)
	kmsg, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0)
	if err != nil {
		return
	}
	defer kmsg.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "watchdog: %s\n", why)
	fmt.Fprintf(&b, "watchdog: %s\n", netCounters())
	fmt.Fprintf(&b, "watchdog: %s\n", memAvailable())
	b.WriteString("watchdog: goroutines follow\n")
	_ = pprof.Lookup("goroutine").WriteTo(&b, 2)
	writeKmsg(kmsg, b.String())
}

// writeKmsg writes text one record per line (a record is at most about 1 KiB).
func writeKmsg(w io.Writer, text string) {
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		if len(line) > 900 {
			line = line[:900] + "..."
		}
		fmt.Fprintf(w, "<3>wfplab: %s\n", line)
	}
}

// netCounters lists each NIC's packet counters.
func netCounters() string {
	ents, _ := os.ReadDir("/sys/class/net")
	var parts []string
	for _, e := range ents {
		stat := func(name string) string {
			b, _ := os.ReadFile("/sys/class/net/" + e.Name() + "/statistics/" + name)
			return strings.TrimSpace(string(b))
		}
		parts = append(parts, fmt.Sprintf("%s rx %s tx %s rx_dropped %s", e.Name(), stat("rx_packets"), stat("tx_packets"), stat("rx_dropped")))
	}
	return strings.Join(parts, "; ")
}

// memAvailable is /proc/meminfo's MemAvailable line.
func memAvailable() string {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "MemAvailable:") {
			return strings.Join(strings.Fields(l), " ")
		}
	}
	return "MemAvailable: unknown"
}
