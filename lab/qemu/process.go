package qemu

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-multierror"
)

// spawner starts processes from one OS thread that stays locked for the provider's life.
// Pdeathsig fires when the thread that forked the child exits, not the process; with a
// goroutine that never unlocks its thread, the signal fires exactly when wfplab dies
// (including kill -9) or when the spawner stops after Down.
type spawner struct {
	reqs chan spawnReq
	stop chan struct{}
	done chan struct{}
}

type spawnReq struct {
	cmd  *exec.Cmd
	errc chan error
}

func startSpawner() *spawner {
	s := &spawner{reqs: make(chan spawnReq), stop: make(chan struct{}), done: make(chan struct{})}
	ready := make(chan struct{})
	go s.serve(ready)
	<-ready
	return s
}

func (s *spawner) serve(ready chan struct{}) {
	runtime.LockOSThread() // kept to the end (but on the main thread): the thread ends with this goroutine
	if syscall.Gettid() == syscall.Getpid() {
		// This is the main thread, which the runtime parks instead of ending, so its
		// children would outlive close. Hold it while another goroutine locks a thread of
		// its own (it cannot get this one), then give it back.
		go s.serve(ready)
		<-ready
		runtime.UnlockOSThread()
		return
	}
	close(ready)
	defer close(s.done)
	for {
		select {
		case r := <-s.reqs:
			r.errc <- r.cmd.Start()
		case <-s.stop:
			return
		}
	}
}

// start starts cmd so that the kernel kills it with SIGKILL when wfplab dies. It also puts
// cmd in its own process group, so a Ctrl-C on wfplab's terminal reaches wfplab, which
// then collects evidence and stops the VMs in order.
func (s *spawner) start(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	cmd.SysProcAttr.Setpgid = true
	errc := make(chan error, 1)
	select {
	case s.reqs <- spawnReq{cmd, errc}:
		return <-errc
	case <-s.done:
		return errors.New("the provider is closed")
	}
}

// close ends the spawner's thread; any child still alive then gets SIGKILL.
func (s *spawner) close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

// procStartTime returns a process's start time in clock ticks since boot (field 22 of
// /proc/PID/stat), which tells a process from a later one that reuses its PID.
func procStartTime(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces and parentheses; fields after it follow
	// the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields after the name", pid, len(f))
	}
	return strconv.ParseUint(f[19], 10, 64) // field 22 is the 20th after the name
}

// writeOwner records in path which wfplab process owns a VM: "PID STARTTIME".
func writeOwner(path string) error {
	pid := os.Getpid()
	st, err := procStartTime(pid)
	if err != nil {
		return fmt.Errorf("recording the VM's owner: %w", err)
	}
	return os.WriteFile(path, fmt.Appendf(nil, "%d %d\n", pid, st), 0o600)
}

// ownerAlive says whether the process recorded in an owner file still runs.
func ownerAlive(path string) (pid int, alive bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	var st uint64
	if _, err := fmt.Sscan(string(b), &pid, &st); err != nil || pid <= 0 {
		return 0, false
	}
	now, err := procStartTime(pid)
	return pid, err == nil && now == st
}

// Reaped is one stale QEMU that ReapStale killed.
type Reaped struct {
	PID     int
	PidFile string
}

func (r Reaped) String() string { return fmt.Sprintf("qemu-system PID %d (%s)", r.PID, r.PidFile) }

// ReapStale kills the QEMUs that earlier runs under resultsRoot left behind: for every
// resultsRoot/*/vm/*/qemu.pid whose process is alive, is a qemu-system binary started
// with "-pidfile <that file>", and whose owning wfplab (owner.pid next to it) is gone.
// Anything else is left alone. The CLI calls it at every start; it returns what it killed,
// and one error per pidfile it could not handle.
func ReapStale(resultsRoot string) ([]Reaped, error) {
	root, err := filepath.Abs(resultsRoot)
	if err != nil {
		return nil, fmt.Errorf("reaping stale VMs: %w", err)
	}
	pidFiles, err := filepath.Glob(filepath.Join(root, "*", "vm", "*", pidFile))
	if err != nil {
		return nil, fmt.Errorf("reaping stale VMs under %s: %w", root, err)
	}
	var killed []Reaped
	var errs *multierror.Error
	for _, pf := range pidFiles {
		pid, ok := stalePID(pf)
		if !ok {
			continue
		}
		if err := killAndWait(pid, pf); err != nil {
			errs = multierror.Append(errs, err)
			continue
		}
		killed = append(killed, Reaped{PID: pid, PidFile: pf})
	}
	return killed, errs.ErrorOrNil()
}

// stalePID returns the PID of pf's process when it is a QEMU of that pidfile whose owner
// is gone.
func stalePID(pf string) (int, bool) {
	b, err := os.ReadFile(pf)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 || pid == os.Getpid() {
		return 0, false
	}
	if !isQemuOf(pid, pf) {
		return 0, false
	}
	if owner, alive := ownerAlive(filepath.Join(filepath.Dir(pf), ownerFile)); alive && owner != 0 {
		return 0, false // a wfplab that is still running owns it
	}
	return pid, true
}

// isQemuOf says whether pid runs a qemu-system-* binary whose argv holds "-pidfile pf".
func isQemuOf(pid int, pf string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(b) == 0 {
		return false
	}
	argv := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	if !strings.HasPrefix(filepath.Base(argv[0]), "qemu-system") {
		return false
	}
	for i := 1; i+1 < len(argv); i++ {
		if (argv[i] == "-pidfile" || argv[i] == "--pidfile") && argv[i+1] == pf {
			return true
		}
	}
	return false
}

// killAndWait sends SIGKILL and waits, bounded, for the process to be gone (or a zombie,
// which its parent reaps).
func killAndWait(pid int, pf string) error {
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("killing stale QEMU PID %d of %s: %w", pid, pf, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if !alive(pid) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("stale QEMU PID %d of %s still runs 5s after SIGKILL", pid, pf)
}

// alive says whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] != 'Z'
}
