package qemu

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv makes the test binary a dummy long-running process (see TestMain).
const helperEnv = "WFPLAB_QEMU_TEST_DUMMY"

// parentEnv makes the test binary a stand-in for wfplab: it spawns the dummy named by the
// variable through a spawner, writes the dummy's PID to the file named by parentPIDEnv,
// and waits to be killed.
const (
	parentEnv    = "WFPLAB_QEMU_TEST_PARENT"
	parentPIDEnv = "WFPLAB_QEMU_TEST_PARENT_PIDFILE"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		time.Sleep(60 * time.Second) // bounded: a dummy never outlives a minute
		os.Exit(0)
	}
	if bin := os.Getenv(parentEnv); bin != "" {
		s := startSpawner()
		cmd := exec.Command(bin)
		cmd.Env = []string{helperEnv + "=1"}
		if err := s.start(cmd); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		os.WriteFile(os.Getenv(parentPIDEnv), fmt.Appendf(nil, "%d", cmd.Process.Pid), 0o600)
		time.Sleep(60 * time.Second)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// dummyBinary copies the test binary to dir/name, so that /proc/PID/cmdline starts with it.
func dummyBinary(t *testing.T, dir, name string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	path := filepath.Join(dir, name)
	dst, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// startDummy runs bin with args as an orphan-like process (own process group) and writes
// its PID into pidfile when pidfile is not "".
func startDummy(t *testing.T, bin, pidfile string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	if pidfile != "" {
		if err := os.WriteFile(pidfile, fmt.Appendf(nil, "%d\n", cmd.Process.Pid), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return cmd
}

// vmDir makes root/<run>/vm/<target> and returns it with its pidfile path.
func vmDir(t *testing.T, root, run, target string) (string, string) {
	t.Helper()
	d := filepath.Join(root, run, "vm", target)
	if err := os.MkdirAll(d, 0o700); err != nil {
		t.Fatal(err)
	}
	return d, filepath.Join(d, pidFile)
}

func TestReapStaleKillsOnlyOrphanedQEMUsOfItsPidfiles(t *testing.T) {
	root := t.TempDir()
	bins := t.TempDir()
	qemuBin := dummyBinary(t, bins, "qemu-system-x86_64")
	otherBin := dummyBinary(t, bins, "not-qemu")

	// 1. An orphaned QEMU of an earlier run: reaped.
	_, pf1 := vmDir(t, root, "run-1", "win7-x64")
	stale := startDummy(t, qemuBin, pf1, "-name", "wfplab-win7-x64", "-pidfile", pf1)
	// 2. A QEMU whose pidfile names another file: left alone.
	_, pf2 := vmDir(t, root, "run-1", "vista")
	other := startDummy(t, qemuBin, pf2, "-pidfile", filepath.Join(root, "elsewhere.pid"))
	// 3. A process with the right -pidfile but not a qemu-system binary: left alone.
	_, pf3 := vmDir(t, root, "run-2", "w7")
	notQemu := startDummy(t, otherBin, pf3, "-pidfile", pf3)
	// 4. A QEMU whose wfplab still runs (this test process owns it): left alone.
	d4, pf4 := vmDir(t, root, "run-3", "w7")
	owned := startDummy(t, qemuBin, pf4, "-pidfile", pf4)
	if err := writeOwner(filepath.Join(d4, ownerFile)); err != nil {
		t.Fatal(err)
	}
	// 5. A pidfile of a process long gone, and a garbage pidfile: ignored.
	_, pf5 := vmDir(t, root, "run-4", "w7")
	os.WriteFile(pf5, []byte("999999999\n"), 0o600)
	_, pf6 := vmDir(t, root, "run-4", "w8")
	os.WriteFile(pf6, []byte("not a pid\n"), 0o600)
	// 6. An owner file naming a dead process does not protect an orphan.
	d7, pf7 := vmDir(t, root, "run-5", "w7")
	stale2 := startDummy(t, qemuBin, pf7, "-pidfile", pf7)
	os.WriteFile(filepath.Join(d7, ownerFile), []byte("999999999 12345\n"), 0o600)

	waitCmdline(t, stale.Process.Pid, "-pidfile")
	for _, c := range []*exec.Cmd{other, notQemu, owned, stale2} {
		waitCmdline(t, c.Process.Pid, "-pidfile")
	}

	reaped, err := ReapStale(root)
	if err != nil {
		t.Fatalf("ReapStale: %v", err)
	}
	got := map[int]string{}
	for _, r := range reaped {
		got[r.PID] = r.PidFile
	}
	want := map[int]string{stale.Process.Pid: pf1, stale2.Process.Pid: pf7}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("reaped %v, want %v", reaped, want)
	}
	for _, c := range []*exec.Cmd{stale, stale2} {
		if alive(c.Process.Pid) {
			t.Errorf("orphan PID %d still alive", c.Process.Pid)
		}
	}
	for _, c := range []*exec.Cmd{other, notQemu, owned} {
		if !alive(c.Process.Pid) {
			t.Errorf("PID %d (%s) was killed though it did not match", c.Process.Pid, c.Args)
		}
	}
	if again, err := ReapStale(root); err != nil || len(again) != 0 {
		t.Errorf("a second ReapStale: %v, %v; want nothing to do", again, err)
	}
	if r, err := ReapStale(filepath.Join(root, "no-such-folder")); err != nil || len(r) != 0 {
		t.Errorf("a results folder that does not exist: %v, %v", r, err)
	}
}

// waitCmdline waits until the child has exec'd (its cmdline holds sub).
func waitCmdline(t *testing.T, pid int, sub string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && strings.Contains(string(b), sub) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("PID %d did not exec within 5s", pid)
}

func TestSpawnerChildrenDieWithItsThread(t *testing.T) {
	bin := dummyBinary(t, t.TempDir(), "qemu-system-x86_64")
	s := startSpawner()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	if err := s.start(cmd); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	if cmd.SysProcAttr.Pdeathsig != syscall.SIGKILL || !cmd.SysProcAttr.Setpgid {
		t.Errorf("SysProcAttr %+v: want Pdeathsig SIGKILL and its own process group", cmd.SysProcAttr)
	}
	// Other goroutines' threads come and go; the child must survive them.
	for range 8 {
		done := make(chan struct{})
		go func() {
			runtime.LockOSThread()
			close(done) // exits locked: the runtime ends this thread
		}()
		<-done
	}
	select {
	case err := <-exited:
		t.Fatalf("the child died with an unrelated thread: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	s.close()
	select {
	case err := <-exited:
		if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("child ended with %v; want SIGKILL from Pdeathsig", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the child outlived the spawner's thread by 10s")
	}
	if err := s.start(exec.Command(bin)); err == nil {
		t.Errorf("a closed spawner started a process")
	}
}

func TestSpawnedChildDiesWithKilledParent(t *testing.T) {
	dir := t.TempDir()
	dummy := dummyBinary(t, dir, "qemu-system-x86_64")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	pidOut := filepath.Join(dir, "child.pid")
	parent := exec.Command(self)
	parent.Env = append(os.Environ(), parentEnv+"="+dummy, parentPIDEnv+"="+pidOut)
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { parent.Process.Kill(); parent.Wait() })
	var child int
	for deadline := time.Now().Add(10 * time.Second); child == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the stand-in parent did not start its child within 10s")
		}
		if b, err := os.ReadFile(pidOut); err == nil && len(b) > 0 {
			fmt.Sscan(string(b), &child)
		}
	}
	t.Cleanup(func() { syscall.Kill(child, syscall.SIGKILL) })
	if !alive(child) {
		t.Fatalf("child %d is not running", child)
	}
	parent.Process.Signal(syscall.SIGKILL) // as kill -9 of wfplab
	parent.Wait()
	for deadline := time.Now().Add(10 * time.Second); alive(child); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("child %d outlived its SIGKILLed parent by 10s", child)
		}
	}
}
