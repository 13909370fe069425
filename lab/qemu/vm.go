package qemu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// startupTimeout bounds QEMU's own start: the process running and its QMP socket answering.
const startupTimeout = 20 * time.Second

// pollInterval paces the boot wait's probes.
const pollInterval = 500 * time.Millisecond

// vm is one target's QEMU.
type vm struct {
	m     Machine // defaulted and validated
	index int
	paths vmPaths
	ports vmPorts
	qmp   qmpClient

	mu      sync.Mutex
	accel   string
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the current QEMU process has been waited for
	waitErr error
	shots   int
}

// errPortRace marks a QEMU that could not bind a host port we had found free.
var errPortRace = errors.New("a host port was taken between choosing it and QEMU binding it")

// errExitedAtStart marks a QEMU that exited before its QMP socket answered: it never ran
// the guest (a bad option, or KVM asked for on a host without it).
var errExitedAtStart = errors.New("QEMU exited at start")

// launch starts QEMU under accel and waits until its QMP socket answers. A QEMU that
// exits instead is reported with the tail of its log.
func (p *Provider) launch(ctx context.Context, v *vm, accel string) error {
	for _, f := range []string{v.paths.Pid, v.paths.QMP} {
		os.Remove(f)
	}
	logf, err := os.OpenFile(v.paths.QemuLog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("opening QEMU's log: %w", err)
	}
	fmt.Fprintf(logf, "--- %s: starting %s with -accel %s\n", time.Now().UTC().Format(time.RFC3339), p.cfg.QemuBinary, accel)
	argv := args(v.m, v.index, accel, v.paths, v.ports)
	cmd := exec.Command(p.cfg.QemuBinary, argv...)
	cmd.Dir = v.paths.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LANG=C"} // nothing of wfplab's environment reaches QEMU
	err = p.spawn.start(cmd)
	logf.Close() // the child holds its own copy
	if err != nil {
		return fmt.Errorf("starting %s: %w (is qemu-system-x86 installed?)", p.cfg.QemuBinary, err)
	}
	exited := make(chan struct{})
	v.mu.Lock()
	v.accel, v.cmd, v.exited, v.waitErr = accel, cmd, exited, nil
	v.mu.Unlock()
	go func() {
		err := cmd.Wait()
		v.mu.Lock()
		v.waitErr = err
		v.mu.Unlock()
		close(exited)
	}()

	ctx, cancel := context.WithTimeout(ctx, startupTimeout)
	defer cancel()
	for {
		select {
		case <-exited:
			return v.exitError(errExitedAtStart)
		case <-ctx.Done():
			v.kill()
			if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("starting QEMU: %w", ctx.Err())
			}
			return fmt.Errorf("QEMU's QMP socket did not answer within %s; %s", startupTimeout, v.qemuLogTail())
		case <-time.After(100 * time.Millisecond):
		}
		if _, err := os.Stat(v.paths.QMP); err != nil {
			continue
		}
		qctx, qcancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := v.qmp.status(qctx)
		qcancel()
		if err == nil {
			return nil
		}
	}
}

// exitError describes a QEMU that exited, quoting its log; port clashes wrap errPortRace.
func (v *vm) exitError(what error) error {
	v.mu.Lock()
	werr := v.waitErr
	v.mu.Unlock()
	log := v.qemuLogTail()
	err := fmt.Errorf("%w (%v); %s", what, werr, log)
	if strings.Contains(log, "Could not set up host forwarding rule") || strings.Contains(log, "Address already in use") {
		return fmt.Errorf("%w: %w", errPortRace, err)
	}
	return err
}

// qemuLogTail quotes the last lines of the current QEMU's log.
func (v *vm) qemuLogTail() string {
	t := tailLines(v.paths.QemuLog, 8)
	if i := strings.LastIndex(t, "--- "); i >= 0 { // only the current start's lines
		t = t[i:]
		if j := strings.IndexByte(t, '\n'); j >= 0 {
			t = t[j+1:]
		} else {
			t = ""
		}
	}
	if strings.TrimSpace(t) == "" {
		return "QEMU's log " + v.paths.QemuLog + " says nothing"
	}
	return "QEMU said: " + strings.ReplaceAll(strings.TrimSpace(t), "\n", " | ")
}

// running says whether the current QEMU process still runs.
func (v *vm) running() bool {
	v.mu.Lock()
	ch := v.exited
	v.mu.Unlock()
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits (bounded) for the process to be reaped.
func (v *vm) kill() {
	v.mu.Lock()
	cmd, ch := v.cmd, v.exited
	v.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
	}
}

// waitExit waits up to d for the process to exit.
func (v *vm) waitExit(d time.Duration) bool {
	v.mu.Lock()
	ch := v.exited
	v.mu.Unlock()
	if ch == nil {
		return true
	}
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	}
}

// bootWait is how waitReady judges progress.
type bootWait struct {
	bound time.Duration // WinRM must answer within it
	// silence > 0: fail when the console log is still empty after it (the KVM trial of a
	// direct kernel boot).
	silence time.Duration
}

var errSilent = errors.New("silent console")

// maxProbes is how many WinRM probes may be in flight at once.
const maxProbes = 4

// waitReady waits until WinRM answers through the forwarded port, the QEMU exits, or the
// bound passes. A probe starts every pollInterval, overlapping: until the guest listens,
// user-mode networking accepts the connection and holds it silent, and a lone probe would
// wait out its whole timeout before the next try.
func (p *Provider) waitReady(ctx context.Context, v *vm, w bootWait) error {
	addr := fmt.Sprintf("127.0.0.1:%d", v.ports.Host.WinRM)
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, w.bound)
	defer cancel() // also ends the probes still in flight
	v.mu.Lock()
	exited, accel := v.exited, v.accel
	v.mu.Unlock()
	results := make(chan error, maxProbes)
	inflight := 0
	probe := func() {
		inflight++
		go func() { results <- winrmAnswers(ctx, addr) }()
	}
	probe()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	var last error
	for {
		select {
		case err := <-results:
			inflight--
			if err == nil {
				p.cfg.Logf("qemu: %s: WinRM answers at %s after %.1fs (accel %s)", v.m.Name, addr, time.Since(start).Seconds(), accel)
				return nil
			}
			last = err
		case <-tick.C:
			if w.silence > 0 && time.Since(start) >= w.silence && consoleSize(v.paths.Console) == 0 {
				return fmt.Errorf("%w: nothing on the serial console %.0fs after start under %s", errSilent, w.silence.Seconds(), accel)
			}
			if inflight < maxProbes {
				probe()
			}
		case <-exited:
			return v.exitError(fmt.Errorf("QEMU exited while the guest booted (accel %s)", accel))
		case <-ctx.Done():
			if err := context.Cause(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("waiting for WinRM: %w", err)
			}
			return fmt.Errorf("WinRM did not answer at %s within %s (accel %s; last probe: %v); %s",
				addr, w.bound, accel, last, quoteTail(v.paths.Console, 15))
		}
	}
}
