package qemu

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wfplab/wfplab/lab/contract"
)

// These tests run a real QEMU under TCG. Without a kernel they boot a blank disk: SeaBIOS
// finds nothing to boot, which is enough to exercise the command line, QMP, screendump,
// reset, the boot wait's failure path and Down. WFPLAB_QEMU_KERNEL adds real-kernel tests
// (see README.md); WFPLAB_QEMU_APPLIANCE_KERNEL/_INITRD boot an appliance up to WinRM.

const testPassword = "pw-not-on-argv-1f2e3d"

func needQEMU(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"qemu-system-x86_64", "qemu-img"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("SKIP: %s not installed (apt-get install qemu-system-x86 qemu-utils): %v", bin, err)
		}
	}
}

// blankBase makes a 1 MiB raw base image and returns its path and checksum.
func blankBase(t *testing.T) (string, [32]byte) {
	t.Helper()
	base := filepath.Join(t.TempDir(), "base.raw")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "raw", base, "1M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create: %v: %s", err, out)
	}
	return base, fileSum(t, base)
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// logRecorder collects Logf lines.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (l *logRecorder) logf(format string, args ...any) {
	l.mu.Lock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func (l *logRecorder) count(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, sub) {
			n++
		}
	}
	return n
}

// cleanupQEMU makes sure the provider is down and no QEMU it started survives the test.
func cleanupQEMU(t *testing.T, p *Provider) {
	t.Cleanup(func() {
		p.mu.Lock()
		var pids []int
		for _, v := range p.vms {
			if v.cmd != nil && v.cmd.Process != nil {
				pids = append(pids, v.cmd.Process.Pid)
			}
		}
		p.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		p.Down(ctx)
		for _, pid := range pids {
			if alive(pid) {
				t.Errorf("QEMU PID %d outlived Down; killing it", pid)
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
}

// startRunning brings up a VM under TCG without waiting for WinRM (nothing
// would answer), as Up would have left it.
func startRunning(t *testing.T, p *Provider, m Machine) *vm {
	t.Helper()
	m = m.withDefaults()
	if err := m.validate(); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.up, p.spawn = true, startSpawner()
	p.mu.Unlock()
	cleanupQEMU(t, p)
	v := &vm{m: m, paths: newVMPaths(p.cfg.RunDir, m.Name)}
	v.qmp = qmpClient{socket: v.paths.QMP}
	if err := os.MkdirAll(v.paths.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if m.Image != "" {
		if err := createOverlay(ctx, p.cfg.QemuImg, m.Image, v.paths.Overlay); err != nil {
			t.Fatal(err)
		}
	}
	if m.StateDiskMB > 0 {
		if err := createStateDisk(v.paths.State, m.StateDiskMB); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if v.ports, err = p.ports.allocate(0, m.ForwardLinks); err != nil {
		t.Fatal(err)
	}
	if err := p.launch(ctx, v, AccelTCG); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.vms[m.Name], p.order = v, append(p.order, m.Name)
	p.mu.Unlock()
	return v
}

func blankMachine(name, base string) Machine {
	return Machine{Name: name, OS: "win7-x64", Image: base, Accel: AccelTCG, MemoryMB: 128, StateDiskMB: 8,
		ForwardLinks: true, Creds: contract.Credentials{User: "wfplab", Password: testPassword}}
}

func TestRealQEMUEvidenceRecoverAndDown(t *testing.T) {
	needQEMU(t)
	base, sum := blankBase(t)
	runDir := t.TempDir()
	p, err := New(Config{RunDir: runDir, AccelCacheDir: "off", PowerdownWait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	v := startRunning(t, p, blankMachine("blank", base))
	pid := v.cmd.Process.Pid

	// The process is a qemu-system with our pidfile, and no secret is on its command line.
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(cmdline, []byte(testPassword)) {
		t.Errorf("the password is on QEMU's command line")
	}
	if !isQemuOf(pid, v.paths.Pid) {
		t.Errorf("PID %d does not look like the QEMU of %s: %q", pid, v.paths.Pid, cmdline)
	}
	if b, err := os.ReadFile(v.paths.Pid); err != nil || strings.TrimSpace(string(b)) != fmt.Sprint(pid) {
		t.Errorf("pidfile %s = %q (%v), want %d", v.paths.Pid, b, err, pid)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	time.Sleep(2 * time.Second) // let SeaBIOS draw something
	ev, err := p.Evidence(ctx, "blank")
	if err != nil {
		t.Fatalf("evidence: %v", err)
	}
	if ev.Status != "running" {
		t.Errorf("status = %q, want running", ev.Status)
	}
	f, err := os.Open(ev.Screenshot)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatalf("screenshot %s is not a PNG: %v", ev.Screenshot, err)
	}
	if b := img.Bounds(); b.Dx() < 320 || b.Dy() < 200 {
		t.Errorf("screenshot is %dx%d; want a VGA screen", b.Dx(), b.Dy())
	}
	if _, err := os.Stat(strings.TrimSuffix(ev.Screenshot, ".png") + ".ppm"); err == nil {
		t.Errorf("the PPM was left next to the PNG")
	}

	ev2, err := p.Recover(ctx, "blank")
	if err != nil {
		t.Fatalf("recover: %v", err)
	}
	if ev2.Screenshot == ev.Screenshot || ev2.Screenshot == "" {
		t.Errorf("recover's screenshot %q should be a new file (first was %q)", ev2.Screenshot, ev.Screenshot)
	}
	if st, err := v.qmp.status(ctx); err != nil || st.Status != "running" {
		t.Errorf("after reset: status %+v, %v; want running", st, err)
	}

	start := time.Now()
	// SeaBIOS ignores ACPI powerdown: Down must go on to quit within its bounds.
	if err := p.Down(ctx); err != nil {
		t.Errorf("down: %v", err)
	}
	t.Logf("Down took %.1fs", time.Since(start).Seconds())
	if alive(pid) {
		t.Errorf("QEMU PID %d still runs after Down", pid)
	}
	for _, gone := range []string{v.paths.Overlay, v.paths.State, v.paths.QMP, v.paths.Pid, v.paths.Owner} {
		if _, err := os.Stat(gone); err == nil {
			t.Errorf("%s is still there after Down", gone)
		}
	}
	for _, kept := range []string{v.paths.Console, v.paths.QemuLog, ev.Screenshot, ev2.Screenshot} {
		if _, err := os.Stat(kept); err != nil {
			t.Errorf("Down removed %s, which the report links: %v", kept, err)
		}
	}
	if fileSum(t, base) != sum {
		t.Errorf("the base image changed")
	}
	if _, err := p.Evidence(ctx, "blank"); err == nil {
		t.Errorf("evidence of a target that is down should fail")
	}
}

func TestRealQEMUUpReportsTheConsoleWhenWinRMStaysSilent(t *testing.T) {
	needQEMU(t)
	base, sum := blankBase(t)
	runDir := t.TempDir()
	p, err := New(Config{RunDir: runDir, AccelCacheDir: "off", BootTimeout: 3 * time.Second, MemoryBudgetMB: 1024},
		blankMachine("silent", base),
		Machine{Name: "too-big", OS: "win7-x64", Image: base, MemoryMB: 2048, Creds: contract.Credentials{User: "u"}},
		Machine{Name: "bad", OS: "win7-x64", Accel: "fast", Creds: contract.Credentials{User: "u"}})
	if err != nil {
		t.Fatal(err)
	}
	cleanupQEMU(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	targets, err := p.Up(ctx)
	if len(targets) != 0 {
		t.Errorf("targets = %v; nothing should come up", targets)
	}
	if err == nil {
		t.Fatal("Up succeeded without WinRM")
	}
	msg := err.Error()
	for _, want := range []string{
		"silent: WinRM did not answer", "accel tcg", "console log " + filepath.Join(runDir, "vm", "silent", "console.log"),
		"too-big: needs 2112 MB", "bad: ", `accel "fast"`, "neither image nor kernel",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("Up's error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, testPassword) {
		t.Errorf("the password is in an error")
	}
	if n := strings.Count(msg, "\t* "); n != 3 {
		t.Errorf("want one error entry per failed target (3), got %d:\n%s", n, msg)
	}
	if _, err := os.Stat(filepath.Join(runDir, "vm", "silent", overlayFile)); err == nil {
		t.Errorf("a failed boot left its overlay")
	}
	if _, err := os.Stat(filepath.Join(runDir, "vm", "silent", consoleFile)); err != nil {
		t.Errorf("a failed boot lost its console log: %v", err)
	}
	if fileSum(t, base) != sum {
		t.Errorf("the base image changed")
	}
	if live := liveQEMUsUnder(t, runDir); len(live) > 0 {
		t.Errorf("QEMUs of this run still alive after a failed Up: %v", live)
	}
}

// liveQEMUsUnder lists qemu-system processes whose command line names dir.
func liveQEMUsUnder(t *testing.T, dir string) []int {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var pids []int
	for _, c := range procs {
		b, err := os.ReadFile(c)
		if err != nil || !bytes.HasPrefix(b, []byte("qemu-system")) || !bytes.Contains(b, []byte(dir)) {
			continue
		}
		var pid int
		fmt.Sscanf(filepath.Base(filepath.Dir(c)), "%d", &pid)
		if alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func TestRealQEMUAccelAutoFallsBackToTCG(t *testing.T) {
	needQEMU(t)
	base, _ := blankBase(t)
	runDir, cacheDir := t.TempDir(), t.TempDir()
	rec := &logRecorder{}
	m1, m2 := blankMachine("one", base), blankMachine("two", base)
	m1.Accel, m2.Accel = AccelAuto, AccelAuto
	m1.ProbeTimeout, m2.ProbeTimeout = 2*time.Second, 2*time.Second
	m1.ForwardLinks, m2.ForwardLinks = false, false
	p, err := New(Config{RunDir: runDir, AccelCacheDir: cacheDir, BootTimeout: 3 * time.Second, Logf: rec.logf}, m1, m2)
	if err != nil {
		t.Fatal(err)
	}
	cleanupQEMU(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// A blank disk never answers WinRM, so the KVM trial fails whether or not KVM works here.
	_, err = p.Up(ctx)
	if err == nil {
		t.Fatal("Up succeeded without WinRM")
	}
	if n := strings.Count(err.Error(), "(accel tcg;"); n != 2 {
		t.Errorf("both targets should have ended under TCG after the trial; error:\n%v", err)
	}
	if n := rec.count("falls back to TCG"); n != 1 {
		t.Errorf("%d fallback warnings, want exactly 1; log: %q", n, rec.lines)
	}
	trials := 0
	for _, name := range []string{"one", "two"} {
		if _, err := os.Stat(filepath.Join(runDir, "vm", name, "console.kvm-trial.log")); err == nil {
			trials++
		}
	}
	if trials != 1 {
		t.Errorf("%d KVM trials, want 1 per run", trials)
	}
	b, err := os.ReadFile(filepath.Join(cacheDir, accelCacheFile))
	if err != nil {
		t.Fatalf("the verdict was not cached: %v", err)
	}
	var cached map[string]string
	if err := json.Unmarshal(b, &cached); err != nil || len(cached) != 1 {
		t.Fatalf("cache %s = %s (%v)", cacheDir, b, err)
	}
	for k, v := range cached {
		if v != AccelTCG || !strings.Contains(k, "QEMU emulator version") || !strings.Contains(k, "kernel ") {
			t.Errorf("cache entry %q: %q; want tcg keyed by QEMU version and kernel", k, v)
		}
	}

	// The next provider on this host skips the trial.
	rec2 := &logRecorder{}
	p2, err := New(Config{RunDir: t.TempDir(), AccelCacheDir: cacheDir, BootTimeout: 2 * time.Second, Logf: rec2.logf}, m1)
	if err != nil {
		t.Fatal(err)
	}
	cleanupQEMU(t, p2)
	if _, err := p2.Up(ctx); err == nil || !strings.Contains(err.Error(), "(accel tcg;") {
		t.Errorf("second run: %v; want a TCG boot", err)
	}
	if rec2.count("decided on this host before") != 1 || rec2.count("falls back") != 0 {
		t.Errorf("second run should use the cached verdict without a trial; log: %q", rec2.lines)
	}
}

// TestRealKernelConsoleFromBoot boots a bare kernel (no initramfs: it panics for want of
// a root file system and, with panic=-1, reboots) and checks that the serial console is
// logged from the first line.
func TestRealKernelConsoleFromBoot(t *testing.T) {
	needQEMU(t)
	kernel := os.Getenv("WFPLAB_QEMU_KERNEL")
	if kernel == "" {
		t.Skip("SKIP: set WFPLAB_QEMU_KERNEL to a bzImage (e.g. Debian's vmlinuz) to check the console log of a real kernel")
	}
	p, err := New(Config{RunDir: t.TempDir(), AccelCacheDir: "off", PowerdownWait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	m := Machine{Name: "bare", OS: "win7-x64", Kernel: kernel, Append: "console=ttyS0 panic=-1", Accel: AccelTCG,
		Creds: contract.Credentials{User: "u"}}
	start := time.Now()
	v := startRunning(t, p, m)
	deadline := time.Now().Add(90 * time.Second)
	for !strings.Contains(tailLines(v.paths.Console, 400), "Linux version") {
		if time.Now().After(deadline) {
			t.Fatalf("no kernel banner on the console within 90s; %s", quoteTail(v.paths.Console, 10))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("kernel banner on the console %.1fs after QEMU started (TCG)", time.Since(start).Seconds())
	b, _ := os.ReadFile(v.paths.Console)
	if first, _, _ := strings.Cut(strings.TrimLeft(string(b), "\r\n"), "\n"); !strings.Contains(first, "Linux version") {
		t.Errorf("the console log does not start at boot; first line %q", first)
	}
}

// TestRealKernelKVMTrial runs accel auto's trial on a real kernel with the tiny test guest
// (see netguest_test.go). Where KVM hangs (the project's nested machines) the console
// stays empty and the trial ends at the silence bound, with one warning, and the target
// comes up under TCG; where KVM works, it comes up under KVM without a warning; where the
// host has no usable KVM (no /dev/kvm), QEMU exits at once and the warning says so.
func TestRealKernelKVMTrial(t *testing.T) {
	needQEMU(t)
	kernel := os.Getenv("WFPLAB_QEMU_KERNEL")
	if kernel == "" {
		t.Skip("SKIP: set WFPLAB_QEMU_KERNEL to Debian's vmlinuz (modules beside it) to run accel auto's KVM trial on a real kernel")
	}
	initrd := netguestInitrd(t, modulesFor(kernel))
	rec := &logRecorder{}
	runDir := t.TempDir()
	m := Machine{Name: "trial", OS: "win7-x64", Kernel: kernel, Initrd: initrd, Append: "console=ttyS0 panic=-1",
		Accel: AccelAuto, Creds: contract.Credentials{User: "u"}}
	p, err := New(Config{RunDir: runDir, AccelCacheDir: "off", BootTimeout: 90 * time.Second, PowerdownWait: time.Second, Logf: rec.logf}, m)
	if err != nil {
		t.Fatal(err)
	}
	cleanupQEMU(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("Up: %v", err)
	}
	info, err := p.VM("trial")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("up under %s %.1fs after Up began; log: %q", info.Accel, time.Since(start).Seconds(), rec.lines)
	trial, trialErr := os.ReadFile(filepath.Join(runDir, "vm", "trial", "console.kvm-trial.log"))
	switch info.Accel {
	case AccelTCG:
		if rec.count("falls back to TCG") != 1 {
			t.Errorf("want one fallback warning; log: %q", rec.lines)
		}
		if trialErr != nil {
			t.Fatalf("the trial's console was not kept: %v", trialErr)
		}
		silent := len(trial) == 0
		if rec.count("would not start under KVM") == 1 { // a host without usable KVM
			if !silent {
				t.Errorf("QEMU never ran the guest, yet the trial console holds %d bytes", len(trial))
			}
			t.Logf("KVM is not usable on this host; the trial ended as QEMU started, so the hang path went untested")
		} else if silent != (rec.count("nothing on the serial console") == 1) {
			t.Errorf("trial console %d bytes, but the warning says otherwise: %q", len(trial), rec.lines)
		}
	case AccelKVM:
		if rec.count("falls back") != 0 || trialErr == nil {
			t.Errorf("KVM worked, yet a fallback was recorded; log: %q", rec.lines)
		}
	default:
		t.Errorf("accel %q", info.Accel)
	}
}

// TestRealApplianceBoots boots a real kernel (an appliance: kernel + initramfs whose guest
// answers WinRM on NIC 1) and measures the time to WinRM under TCG.
func TestRealApplianceBoots(t *testing.T) {
	needQEMU(t)
	kernel, initrd := os.Getenv("WFPLAB_QEMU_APPLIANCE_KERNEL"), os.Getenv("WFPLAB_QEMU_APPLIANCE_INITRD")
	if kernel == "" || initrd == "" {
		t.Skip("SKIP: set WFPLAB_QEMU_APPLIANCE_KERNEL and WFPLAB_QEMU_APPLIANCE_INITRD to an appliance to boot it to WinRM")
	}
	m := Machine{Name: "appliance", OS: "win7-x64", Kernel: kernel, Initrd: initrd,
		Append: os.Getenv("WFPLAB_QEMU_APPLIANCE_APPEND"), Accel: AccelTCG, StateDiskMB: 16, ForwardLinks: true,
		Creds: contract.Credentials{User: "wfplab", Password: testPassword}}
	if m.Append == "" {
		m.Append = "console=ttyS0 panic=-1"
	}
	rec := &logRecorder{}
	p, err := New(Config{RunDir: t.TempDir(), AccelCacheDir: "off", BootTimeout: 120 * time.Second, Logf: rec.logf}, m)
	if err != nil {
		t.Fatal(err)
	}
	cleanupQEMU(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	start := time.Now()
	targets, err := p.Up(ctx)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	t.Logf("WinRM answered %.1fs after Up began (TCG)", time.Since(start).Seconds())
	if len(targets) != 1 || targets[0].Endpoint.Host != "127.0.0.1" || targets[0].Creds.Password != testPassword {
		t.Fatalf("targets = %+v", targets)
	}
	if _, err := p.Recover(ctx, "appliance"); err != nil {
		t.Fatalf("recover: %v", err)
	}
	start = time.Now()
	if err := p.WaitReady(ctx, "appliance"); err != nil {
		t.Fatalf("after reset: %v", err)
	}
	t.Logf("WinRM answered %.1fs after a QMP reset (TCG)", time.Since(start).Seconds())
}

func TestRealQEMUPortTakenMeanwhileIsRetried(t *testing.T) {
	needQEMU(t)
	base, _ := blankBase(t)
	rec := &logRecorder{}
	p, err := New(Config{RunDir: t.TempDir(), AccelCacheDir: "off", Logf: rec.logf})
	if err != nil {
		t.Fatal(err)
	}
	m := blankMachine("busy", base).withDefaults()
	v := startRunning(t, p, m) // a VM that holds its ports
	taken := v.ports

	m2 := m
	m2.StateDiskMB = 0
	w := &vm{m: m2, index: 1, paths: newVMPaths(p.cfg.RunDir, "busy2")}
	w.qmp = qmpClient{socket: w.paths.QMP}
	if err := os.MkdirAll(w.paths.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := createOverlay(ctx, p.cfg.QemuImg, m.Image, w.paths.Overlay); err != nil {
		t.Fatal(err)
	}
	w.ports = taken // as if another program had bound them since they were chosen
	err = p.start(ctx, w, AccelTCG, bootWait{bound: time.Second})
	defer w.kill()
	if err == nil || !strings.Contains(err.Error(), "WinRM did not answer") {
		t.Fatalf("start: %v; want QEMU started on fresh ports (and no WinRM from a blank disk)", err)
	}
	if rec.count("retrying with other ports") != 1 {
		t.Errorf("want one retry; log: %q", rec.lines)
	}
	if w.ports.Host.WinRM == taken.Host.WinRM {
		t.Errorf("the retry kept the taken WinRM port %d", taken.Host.WinRM)
	}
}

func TestQEMUThatCannotStartSaysWhy(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.raw")
	os.WriteFile(base, make([]byte, 512), 0o600)
	for _, c := range []struct{ bin, want string }{
		{"/bin/false", "QEMU exited at start (exit status 1)"},
		{filepath.Join(dir, "no-qemu"), "is qemu-system-x86 installed?"},
	} {
		p, err := New(Config{RunDir: filepath.Join(dir, filepath.Base(c.bin)), QemuBinary: c.bin, AccelCacheDir: "off"},
			Machine{Name: "x", OS: "win7-x64", Kernel: base, Accel: AccelTCG, Creds: contract.Credentials{User: "u"}})
		if err != nil {
			t.Fatal(err)
		}
		cleanupQEMU(t, p)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err = p.Up(ctx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "x: ") {
			t.Errorf("%s: %v; want %q naming the target", c.bin, err, c.want)
		}
	}
}

func TestRealQEMUEvidenceOfADeadGuest(t *testing.T) {
	needQEMU(t)
	base, _ := blankBase(t)
	p, err := New(Config{RunDir: t.TempDir(), AccelCacheDir: "off"})
	if err != nil {
		t.Fatal(err)
	}
	v := startRunning(t, p, blankMachine("dead", base))
	os.WriteFile(v.paths.Console, []byte("BUGCHECK 0x000000D1\nlast words\n"), 0o600)
	v.cmd.Process.Signal(syscall.SIGKILL)
	if !v.waitExit(10 * time.Second) {
		t.Fatal("QEMU did not die")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ev, err := p.Evidence(ctx, "dead")
	if err == nil || !strings.Contains(err.Error(), "dead: QEMU is not running") {
		t.Errorf("evidence error %v; want one saying QEMU is not running", err)
	}
	if !strings.HasPrefix(ev.Status, "exited: ") || !strings.Contains(ev.Status, "signal: killed") {
		t.Errorf("status %q; want how QEMU ended", ev.Status)
	}
	if ev.ConsoleTail != "BUGCHECK 0x000000D1\nlast words" || ev.ConsoleLog != v.paths.Console || ev.Screenshot != "" || ev.At.IsZero() {
		t.Errorf("evidence %+v", ev)
	}
	if _, err := p.Recover(ctx, "dead"); err == nil || !strings.Contains(err.Error(), "cannot be reset") {
		t.Errorf("recover of a dead QEMU: %v", err)
	}
	if err := p.Down(ctx); err != nil {
		t.Errorf("down after the guest died: %v", err)
	}
}
