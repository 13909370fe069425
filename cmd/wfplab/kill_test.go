package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wfplab/wfplab/bench"
)

// killWindow is shortScenario's timing.window: a window that ran less is cut.
const killWindow = 4 * time.Second

// A real `wfplab run` SIGKILLed at a random moment (seeded, logged) keeps every sample a
// reader could see before the kill (committed is acknowledged: the store is WAL, written
// as data arrives), `wfplab report` works on what is left, no cut window gets LEAK or
// CLEAN, and no process or listening port of the run outlives it.
// WFPLAB_KILL_ITERATIONS sets how many kills (default 1); WFPLAB_KILL_SEED the seed.
func TestKillRunAtRandomMoments(t *testing.T) {
	if testing.Short() {
		t.Skip("builds wfplab and runs it: not in -short")
	}
	iterations := 1
	if s := os.Getenv("WFPLAB_KILL_ITERATIONS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			t.Fatalf("WFPLAB_KILL_ITERATIONS=%q: want a count from 1 to 1000", s)
		}
		iterations = n
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("WFPLAB_KILL_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("WFPLAB_KILL_SEED=%q: want an unsigned integer", s)
		}
		seed = n
	}
	t.Logf("kill seed %d (rerun the same moments with WFPLAB_KILL_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	dir := t.TempDir()
	bin := buildWfplab(t, dir)
	sc := writeFile(t, dir, "short.yaml", shortScenario)
	for i := range iterations {
		// Up to 25 s: the short scenario's whole run, so every stage can be hit.
		after := 300*time.Millisecond + time.Duration(rng.Int64N(int64(25*time.Second)))
		t.Run(fmt.Sprintf("kill%02d", i), func(t *testing.T) {
			t.Logf("SIGKILL after %s", after)
			killRunOnce(t, bin, sc, filepath.Join(dir, fmt.Sprintf("out%02d", i)), after)
		})
	}
}

// seen is what a reader saw of a live run just before its kill.
type seen struct {
	samples []bench.PoolPoint
	windows []bench.Window
	ports   []int
}

func killRunOnce(t *testing.T, bin, sc, out string, after time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run", "--scenario", sc, "--out", out, "--seed", "7", "--quiet")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	var last seen
	deadline := time.Now().Add(after)
	finished := false
poll:
	for time.Now().Before(deadline) {
		if s, ok := look(t, out, pid); ok {
			last = s
		}
		select {
		case err := <-done:
			finished = true
			t.Logf("the run ended by itself before the kill (%v)", err)
			break poll
		case <-time.After(150 * time.Millisecond):
		}
	}
	if !finished {
		if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil {
			t.Fatalf("SIGKILL to process group %d: %v", pid, err)
		}
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("wfplab (pid %d) still running 30 s after SIGKILL", pid)
		}
	}
	t.Logf("before the kill a reader saw %d samples, %d windows, %d listening ports", len(last.samples), len(last.windows), len(last.ports))

	// Nothing of the run is left: no process in its group, no port still listening.
	if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process group %d outlived the kill (signal 0: %v)", pid, err)
	}
	for _, p := range last.ports {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p), time.Second); err == nil {
			c.Close()
			t.Errorf("port %d, which the run listened on, still answers after the kill", p)
		}
	}

	entries, _ := os.ReadDir(out)
	if len(entries) == 0 {
		if len(last.samples) > 0 {
			t.Fatal("samples were seen but the run folder is gone")
		}
		t.Logf("killed before the run folder existed; output:\n%s", logs.String())
		return
	}
	runDir := filepath.Join(out, entries[0].Name())
	st, err := bench.OpenReadOnly(filepath.Join(runDir, bench.StoreFile))
	if err != nil {
		t.Fatalf("the killed run's store does not open: %v\noutput:\n%s", err, logs.String())
	}
	kept, err := st.Pool("")
	if err != nil {
		t.Fatal(err)
	}
	windows, err := st.Windows("")
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	have := map[bench.PoolPoint]bool{}
	for _, p := range kept {
		have[p] = true
	}
	lost := 0
	for _, p := range last.samples {
		if !have[p] {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of the %d samples committed before the kill are not in the store (it has %d)", lost, len(last.samples), len(kept))
	}
	if len(windows) < len(last.windows) {
		t.Errorf("the store has %d windows, a reader saw %d before the kill", len(windows), len(last.windows))
	}

	rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer rcancel()
	rep := exec.CommandContext(rctx, bin, "report", runDir)
	text, err := rep.CombinedOutput()
	if code := rep.ProcessState.ExitCode(); code != exitOK && code != exitUnmet {
		t.Fatalf("wfplab report on the killed run: exit %d (%v)\n%s", code, err, text)
	}
	verdicts := reportVerdicts(string(text))
	for _, w := range windows {
		if w.Profile == bench.WarmupWindow {
			continue
		}
		v, ok := verdicts[w.Target+"/"+w.Phase+"/"+w.Profile]
		if !ok {
			t.Errorf("report lists no verdict for window %s/%s/%s\n%s", w.Target, w.Phase, w.Profile, text)
			continue
		}
		cut := w.End.IsZero() || w.End.Sub(w.Start) < killWindow-killWindow/100
		if cut && (v == string(bench.Leak) || v == string(bench.Clean)) {
			t.Errorf("cut window %s/%s/%s (start %s, end %s) got verdict %s, want INCOMPLETE\n%s",
				w.Target, w.Phase, w.Profile, w.Start, w.End, v, text)
		}
	}
}

// look reads the live run's store as any reader would, and the ports its process listens on.
func look(t *testing.T, out string, pid int) (seen, bool) {
	entries, err := os.ReadDir(out)
	if err != nil || len(entries) == 0 {
		return seen{}, false
	}
	db := filepath.Join(out, entries[0].Name(), bench.StoreFile)
	if _, err := os.Stat(db); err != nil {
		return seen{}, false
	}
	st, err := bench.OpenReadOnly(db)
	if err != nil {
		return seen{}, false // the run may be creating it
	}
	defer st.Close()
	var s seen
	if s.samples, err = st.Pool(""); err != nil {
		return seen{}, false
	}
	if s.windows, err = st.Windows(""); err != nil {
		return seen{}, false
	}
	s.ports = listeningPorts(pid)
	return s, true
}

// listeningPorts are the TCP ports pid listens on, from its socket inodes in /proc.
func listeningPorts(pid int) []int {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return nil
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	var ports []int
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			// sl local rem st ... inode: state 0A is LISTEN.
			fs := strings.Fields(sc.Text())
			if len(fs) < 10 || fs[3] != "0A" || !inodes[fs[9]] {
				continue
			}
			if i := strings.LastIndex(fs[1], ":"); i >= 0 {
				if p, err := strconv.ParseInt(fs[1][i+1:], 16, 32); err == nil {
					ports = append(ports, int(p))
				}
			}
		}
		fh.Close()
	}
	return ports
}

// reportVerdicts maps target/phase/profile to the verdict in `wfplab report`'s table.
func reportVerdicts(text string) map[string]string {
	v := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		fs := strings.Fields(line)
		// TARGET PHASE PROFILE LEAK [LO, HI] B/CHAIN ± 95% JUDGED AT VERDICT ...: the
		// verdict is the first word after the interval that names one.
		for i := 3; i+1 < len(fs); i++ {
			if strings.HasSuffix(fs[i], "]") && strings.HasPrefix(fs[i-1], "[") {
				for _, f := range fs[i+1:] {
					if verdictWord(f) {
						v[fs[0]+"/"+fs[1]+"/"+fs[2]] = f
						break
					}
				}
				break
			}
		}
	}
	return v
}

func verdictWord(s string) bool {
	switch bench.Verdict(s) {
	case bench.Leak, bench.Clean, bench.Inconclusive, bench.Incomplete:
		return true
	}
	return false
}

// A run SIGKILLed once some windows ended, then `wfplab run --resume`, meets every
// expectation, and measures no cell twice: windows that had ended keep their times.
func TestResumeFinishesAKilledRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds wfplab and runs it: not in -short")
	}
	dir := t.TempDir()
	bin := buildWfplab(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sc := writeFile(t, dir, "short.yaml", shortScenario)
	out := filepath.Join(dir, "results")
	cmd := exec.CommandContext(ctx, bin, "run", "--scenario", sc, "--out", out, "--seed", "7", "--quiet")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// Killed once three profile windows ended: some cells done, most not.
	var before []bench.Window
	for deadline := time.Now().Add(time.Minute); ; {
		if time.Now().After(deadline) {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			t.Fatal("no three windows ended within a minute")
		}
		if s, ok := look(t, out, cmd.Process.Pid); ok && len(endedCells(s.windows)) >= 3 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the run ended (%v) before it could be killed", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-done
	runDir := onlyRun(t, out)
	before = storedWindows(t, runDir)
	ended := endedCells(before)
	t.Logf("killed with %d of 12 windows ended", len(ended))

	res := exec.CommandContext(ctx, bin, "run", "--resume", runDir, "--quiet")
	text, err := res.CombinedOutput()
	if err != nil || !strings.Contains(string(text), "PASS: 12 of 12 expectations met") {
		t.Fatalf("run --resume: %v, want PASS 12 of 12\n%s", err, text)
	}
	if !strings.Contains(string(text), fmt.Sprintf("%d of 12 cells left to measure", 12-len(ended))) {
		t.Errorf("resume does not say %d of 12 cells are left:\n%s", 12-len(ended), text)
	}
	if entries, _ := os.ReadDir(out); len(entries) != 1 {
		t.Errorf("resume made another run folder: %v", entries)
	}
	now := endedCells(storedWindows(t, runDir))
	if len(now) != 12 {
		t.Errorf("after resume %d of 12 windows ended", len(now))
	}
	for k, w := range ended {
		if got := now[k]; !got.Start.Equal(w.Start) || !got.End.Equal(w.End) {
			t.Errorf("cell %s was measured again: window %s–%s became %s–%s", k, w.Start, w.End, got.Start, got.End)
		}
	}
	if _, err := os.Stat(filepath.Join(runDir, "report.html")); err != nil {
		t.Errorf("no report after resume: %v", err)
	}
}

// endedCells are the profile windows that ran to their end, by target/phase/profile.
func endedCells(ws []bench.Window) map[string]bench.Window {
	m := map[string]bench.Window{}
	for _, w := range ws {
		if w.Profile != bench.WarmupWindow && !w.End.IsZero() && w.End.Sub(w.Start) >= killWindow-killWindow/100 {
			m[w.Target+"/"+w.Phase+"/"+w.Profile] = w
		}
	}
	return m
}

// buildWfplab builds this command into dir, for tests that run it as a real process.
func buildWfplab(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "wfplab")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("building wfplab: %v\n%s", err, out)
	}
	return bin
}

// storedWindows reads a run's windows read-only.
func storedWindows(t *testing.T, runDir string) []bench.Window {
	t.Helper()
	st, err := bench.OpenReadOnly(filepath.Join(runDir, bench.StoreFile))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ws, err := st.Windows("")
	if err != nil {
		t.Fatal(err)
	}
	return ws
}
