package qemu

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// accelDecision is accel auto's verdict for the run: "" until a KVM trial ends, then
// AccelKVM or AccelTCG. The first auto target runs the trial while holding trial; the
// others wait for its verdict, so one run pays for at most one failed KVM boot.
//
// How a trial decides: the target boots under KVM; KVM works when WinRM answers within
// the target's ProbeTimeout (default 60 s). It does not when QEMU exits, when WinRM stays
// silent that long, or, for a direct kernel boot, when the serial console is still empty
// after DefaultKVMSilence (15 s). Then that QEMU is killed and the target boots under TCG,
// with one warning. /dev/kvm alone proves nothing: on nested hosts KVM creates guests that
// never get past the BIOS.
//
// The verdict is kept in AccelCacheDir/accel.json keyed by QEMU's version line and the
// host kernel release, so later runs on the same host skip the trial; delete the file to
// try again, or set accel: kvm or tcg to bypass it.
type accelDecision struct {
	trial   sync.Mutex
	mu      sync.Mutex
	verdict string
	warned  bool
}

func (a *accelDecision) get() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.verdict
}

func (a *accelDecision) set(v string) {
	a.mu.Lock()
	a.verdict = v
	a.mu.Unlock()
}

// warnOnce reports whether this call is the first warning of the run.
func (a *accelDecision) warnOnce() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	first := !a.warned
	a.warned = true
	return first
}

// accelCache is the verdicts file.
type accelCache struct {
	path string // "" when caching is off
	key  string
}

const accelCacheFile = "accel.json"

func newAccelCache(dir, qemuBinary string) accelCache {
	if dir == "off" {
		return accelCache{}
	}
	if dir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return accelCache{}
		}
		dir = filepath.Join(base, "wfplab")
	}
	return accelCache{path: filepath.Join(dir, accelCacheFile), key: accelKey(qemuBinary)}
}

// accelKey is "<QEMU version line> / <kernel release>", or "" when either is unknown.
func accelKey(qemuBinary string) string {
	rel, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return ""
	}
	var out bytes.Buffer
	cmd := exec.Command(qemuBinary, "--version")
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		return ""
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		return ""
	}
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(out.String(), "\n")
	return strings.TrimSpace(line) + " / kernel " + strings.TrimSpace(string(rel))
}

func (c accelCache) load() string {
	if c.path == "" || c.key == "" {
		return ""
	}
	b, err := os.ReadFile(c.path)
	if err != nil {
		return ""
	}
	var m map[string]string
	if json.Unmarshal(b, &m) != nil {
		return ""
	}
	switch v := m[c.key]; v {
	case AccelKVM, AccelTCG:
		return v
	}
	return ""
}

func (c accelCache) store(verdict string) error {
	if c.path == "" || c.key == "" {
		return nil
	}
	m := map[string]string{}
	if b, err := os.ReadFile(c.path); err == nil {
		json.Unmarshal(b, &m) // a damaged file is replaced
	}
	m[c.key] = verdict
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
		return fmt.Errorf("accel cache: %w", err)
	}
	tmp := c.path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("accel cache: %w", err)
	}
	return os.Rename(tmp, c.path)
}
