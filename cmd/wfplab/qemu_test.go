package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wfplab/wfplab/bench"
)

// These tests boot simulated guests in real QEMU VMs under TCG (tens of seconds each). They
// need qemu-system-x86_64 and Debian's kernel, which ./test.sh installs and fetches.

var (
	wfplabOnce sync.Once
	wfplabBin  string
	wfplabErr  error
)

// wfplabBinary builds this command once: an appliance's /init must be wfplab itself, not
// the test binary.
func wfplabBinary(t *testing.T) string {
	t.Helper()
	wfplabOnce.Do(func() {
		dir, err := os.MkdirTemp("", "wfplab-bin-")
		if err != nil {
			wfplabErr = err
			return
		}
		wfplabBin = filepath.Join(dir, "wfplab")
		if out, err := exec.Command("go", "build", "-o", wfplabBin, ".").CombinedOutput(); err != nil {
			wfplabErr = err
			t.Logf("%s", out)
		}
	})
	if wfplabErr != nil {
		t.Fatalf("building wfplab: %v", wfplabErr)
	}
	return wfplabBin
}

func needVMs(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("SKIP: -short: no VMs")
	}
	for _, tool := range []string{"qemu-system-x86_64", "qemu-img"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIP: %s is not installed (Debian: qemu-system-x86, qemu-utils; ./test.sh installs them)", tool)
		}
	}
}

// A guest that hangs (its pool passed the limit, as the bug's real end) is GUEST_HUNG: its
// console log and a screenshot are kept and linked from the report, it is reset through
// QMP, and the other target's cells still run and meet their expectation.
func TestQEMUApplianceHangIsDetectedAndRecovered(t *testing.T) {
	needVMs(t)
	bin := wfplabBinary(t)
	dir := t.TempDir()
	sc := writeFile(t, dir, "hang.yaml", `name: hang
provider: {kind: qemu, boot_timeout: 3m}
targets:
  - {name: hangs, os: vista-sp1-x86, appliance: true, accel: tcg, hang_pool_mb: 21}
  - {name: fine, os: vista-sp1-x86, appliance: true, accel: tcg}
phases: [before]
timing: {warmup: 2s, window: 12s, settle: 1s, sample_interval: 100ms, sample_timeout: 3s}
profiles:
  - {name: fragment-forward, kind: fragment-forward, rate: 500, payload_bytes: 4000}
expect:
  - {target: fine, verdict: LEAK}
`)
	out := filepath.Join(dir, "results")
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run", "--scenario", sc, "--out", out, "--seed", "5", "--quiet")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := cmd.ProcessState.ExitCode()
	if code != exitFailure || !strings.Contains(stderr.String(), "GUEST_HUNG") || !strings.Contains(stderr.String(), "hangs") {
		t.Fatalf("run: exit %d (%v), want 2 with GUEST_HUNG naming the target\nstdout:\n%s\nstderr:\n%s", code, err, stdout.String(), stderr.String())
	}
	if !regexp.MustCompile(`fine\s+before\s+fragment-forward\s.*LEAK\s+LEAK ok`).MatchString(stdout.String()) {
		t.Errorf("the other target's cell did not run to its verdict:\n%s", stdout.String())
	}
	runDir := onlyRun(t, out)
	st, err := bench.Open(filepath.Join(runDir, bench.StoreFile))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	evs, err := st.Events("hangs")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	reset := false
	for _, e := range evs {
		if label, path, ok := bench.ParseFileMessage(e.Message); ok && e.Kind == bench.EventFile {
			files[label] = path
		}
		reset = reset || (e.Kind == bench.EventGuestHung && strings.Contains(e.Message, "reset through the hypervisor"))
	}
	if !reset {
		t.Errorf("no reset recorded for the hung guest: %+v", evs)
	}
	for _, label := range []string{"console log", "screenshot when hung"} {
		p, ok := files[label]
		if !ok {
			t.Errorf("no %s recorded (files %v)", label, files)
			continue
		}
		if fi, err := os.Stat(filepath.Join(runDir, p)); err != nil || fi.Size() == 0 {
			t.Errorf("%s %s: %v", label, p, err)
		}
	}
	report, _ := os.ReadFile(filepath.Join(runDir, "report.html"))
	if p := files["screenshot when hung"]; p == "" || !bytes.Contains(report, []byte(`href="`+p+`"`)) {
		t.Errorf("report.html does not link the screenshot %q", p)
	}
	checkNoQEMUOf(t, runDir)
}

// kill -9 of wfplab run while its VMs boot leaves no qemu-system of that run behind.
func TestKilledRunLeavesNoQEMU(t *testing.T) {
	needVMs(t)
	bin := wfplabBinary(t)
	dir := t.TempDir()
	sc := writeFile(t, dir, "one.yaml", "name: one\nprovider: qemu\ntargets:\n  - {name: a, os: win7-x86, appliance: true, accel: tcg}\n")
	out := filepath.Join(dir, "results")
	cmd := exec.Command(bin, "run", "--scenario", sc, "--out", out, "--quiet")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// Wait for QEMU to run (its pidfile names a live process), then kill wfplab outright.
	var pid int
	deadline := time.Now().Add(2 * time.Minute)
	for pid == 0 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		matches, _ := filepath.Glob(filepath.Join(out, "*", "vm", "a", "qemu.pid"))
		if len(matches) == 1 {
			b, _ := os.ReadFile(matches[0])
			if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && processAlive(n) {
				pid = n
			}
		}
	}
	if pid == 0 {
		t.Fatal("QEMU never started")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	for end := time.Now().Add(10 * time.Second); processAlive(pid); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("qemu-system PID %d outlived its killed wfplab by 10 s", pid)
		}
	}
}

// checkNoQEMUOf fails when a qemu-system of the run is still alive after wfplab ended.
func checkNoQEMUOf(t *testing.T, runDir string) {
	t.Helper()
	pidfiles, _ := filepath.Glob(filepath.Join(runDir, "vm", "*", "qemu.pid"))
	for _, pf := range pidfiles {
		b, err := os.ReadFile(pf)
		if err != nil {
			continue
		}
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && processAlive(n) {
			t.Errorf("qemu-system PID %d (%s) still runs after wfplab ended", n, pf)
		}
	}
}

// processAlive says whether pid runs; a zombie (dead, not yet reaped by whoever inherited
// it) does not.
func processAlive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name's closing parenthesis.
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] != 'Z'
}
