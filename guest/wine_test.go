package guest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wfplab/wfplab/lab/agentfmt"
	"github.com/wfplab/wfplab/lab/contract"
)

// wine64Path finds Debian's 64-bit wine loader: the `wine64` package installs it under
// /usr/lib/wine; the `wine` package adds the commands on PATH.
func wine64Path() string {
	for _, name := range []string{"wine64", "/usr/lib/wine/wine64"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

type wineRun struct {
	out  string
	code int
}

// runUnderWine runs the x64 agent in prefix; stdin stays open for stdinOpen, then closes.
func runUnderWine(t *testing.T, wine, prefix string, stdinOpen time.Duration, args ...string) wineRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	exe := filepath.Join(guestDir(t), "build", "x64", AgentFile)
	cmd := exec.CommandContext(ctx, wine, append([]string{exe}, args...)...)
	cmd.Env = append(os.Environ(), "WINEPREFIX="+prefix, "WINEDEBUG=-all", "DISPLAY=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A wineserver started by this run inherits the output pipes and lingers; do not
	// wait for it to close them.
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting wine: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(stdinOpen):
		stdin.Close() // end of file on the agent's standard input
		err = <-done
	}
	stdin.Close()
	if ctx.Err() != nil {
		t.Fatalf("agent %v under wine: no exit within the deadline (did it miss stdin's end of file?)\n%s", args, stdout.String())
	}
	code := 0
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
	} else if err != nil {
		t.Fatalf("agent %v under wine: %v", args, err)
	}
	return wineRun{out: stdout.String(), code: code}
}

// streamUnderWine runs exe under wine and closes its standard input once it has printed
// closeAfter lines (wine takes seconds to start, so a fixed delay would be flaky). It
// returns every line and the exit code; the run must end within a minute of stdin's end.
func streamUnderWine(t *testing.T, wine, prefix, exe string, closeAfter int, args ...string) ([]string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, wine, append([]string{exe}, args...)...)
	cmd.Env = append(os.Environ(), "WINEPREFIX="+prefix, "WINEDEBUG=-all", "DISPLAY=")
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting wine: %v", err)
	}
	var lines []string
	rd := bufio.NewReaderSize(stdout, 16<<10)
	closedAt := time.Time{}
	for {
		l, err := rd.ReadString('\n')
		if l != "" {
			lines = append(lines, l)
		}
		if len(lines) == closeAfter && closedAt.IsZero() {
			stdin.Close() // end of file on the agent's standard input
			closedAt = time.Now()
		}
		if err != nil {
			break
		}
	}
	stdin.Close()
	err = cmd.Wait()
	if ctx.Err() != nil {
		t.Fatalf("agent %v under wine: no exit within the deadline (did it miss stdin's end of file?)", args)
	}
	if !closedAt.IsZero() && time.Since(closedAt) > time.Minute {
		t.Errorf("agent %v took %v to stop after stdin closed", args, time.Since(closedAt))
	}
	code := 0
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
	} else if err != nil {
		t.Fatalf("agent %v under wine: %v", args, err)
	}
	for _, l := range lines {
		if !strings.HasSuffix(l, "\r\n") {
			t.Errorf("line %q does not end with CRLF", clip(l))
		}
	}
	return lines, code
}

func clip(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}

// lines splits output into CRLF-terminated lines, failing on a bare LF or a missing end.
func agentLines(t *testing.T, out string) []string {
	t.Helper()
	if out == "" {
		return nil
	}
	if !strings.HasSuffix(out, "\r\n") {
		t.Errorf("output does not end with CRLF: %q", out)
	}
	var lines []string
	for _, l := range strings.SplitAfter(out, "\n") {
		if l == "" {
			continue
		}
		if !strings.HasSuffix(l, "\r\n") {
			t.Errorf("line %q does not end with CRLF", l)
		}
		lines = append(lines, l)
	}
	return lines
}

// The real x64 agent, run under wine, prints lines the lab's parser reads. Wine has
// no nonpaged pool, no callout driver and no wfplabcallout service, so this checks the
// framing and the versions/counters/usage paths, and sample as far as wine allows.
func TestAgentUnderWine(t *testing.T) {
	wine := wine64Path()
	if wine == "" {
		t.Skip("wine is not installed, so the real agent was not run (guest/install-wine.sh installs it; test.sh runs that); " +
			"the golden-line tests still hold the format")
	}
	requireBuild(t)
	prefix := t.TempDir()
	env := append(os.Environ(), "WINEPREFIX="+prefix, "WINEDEBUG=-all", "DISPLAY=")
	server := filepath.Join(filepath.Dir(wine), "wineserver")
	if _, err := os.Stat(server); err != nil {
		server = "wineserver"
	}
	t.Cleanup(func() {
		// Stop this prefix's wineserver before the folder goes away.
		cmd := exec.Command(server, "-k")
		cmd.Env = env
		_ = runWithTimeout(cmd, time.Minute)
	})
	// A persistent wineserver saves seconds per agent run.
	persist := exec.Command(server, "-p")
	persist.Env = env
	if err := runWithTimeout(persist, time.Minute); err != nil {
		t.Logf("wineserver -p: %v (runs will be slower)", err)
	}

	init := exec.Command(wine, "wineboot", "-i")
	init.Env = env
	if err := runWithTimeout(init, 3*time.Minute); err != nil {
		t.Fatalf("wineboot -i in %s: %v", prefix, err)
	}
	t.Run("versions", func(t *testing.T) {
		r := runUnderWine(t, wine, prefix, time.Minute, "versions")
		lines := agentLines(t, r.out)
		if r.code != 0 || len(lines) != 1 {
			t.Fatalf("exit %d, %d lines, want 0 and one V1 line:\n%s", r.code, len(lines), r.out)
		}
		inv, err := agentfmt.ParseInventory(lines[0])
		if err != nil {
			t.Fatalf("%q: %v", lines[0], err)
		}
		if inv.Arch != "x64" || inv.DrvService != "absent" || inv.BootUS == 0 {
			t.Errorf("inventory under wine: %+v", inv)
		}
	})
	for _, cmd := range []string{"counters", "reset"} {
		t.Run(cmd, func(t *testing.T) {
			r := runUnderWine(t, wine, prefix, time.Minute, cmd)
			lines := agentLines(t, r.out)
			if r.code != 0 || len(lines) != 1 {
				t.Fatalf("exit %d, %d lines, want 0 and one C1 line:\n%s", r.code, len(lines), r.out)
			}
			c, err := agentfmt.ParseCounters(lines[0])
			if err != nil {
				t.Fatalf("%q: %v", lines[0], err)
			}
			if c.Driver.State != "absent" {
				t.Errorf("driver state %q without a driver", c.Driver.State)
			}
		})
	}
	// Setting a mode without a driver must fail: the lab would otherwise measure a blocking driver.
	t.Run("mode", func(t *testing.T) {
		r := runUnderWine(t, wine, prefix, time.Minute, "mode", "permit")
		lines := agentLines(t, r.out)
		if r.code != 2 || len(lines) != 1 {
			t.Fatalf("exit %d, %d lines, want 2 and one C1 line:\n%s", r.code, len(lines), r.out)
		}
		c, err := agentfmt.ParseCounters(lines[0])
		if err != nil || c.Driver.State != "absent" || c.Mode != "" {
			t.Errorf("%q: %+v, %v; want drv=absent and no mode", lines[0], c, err)
		}
	})
	t.Run("usage", func(t *testing.T) {
		for _, args := range [][]string{{}, {"bogus"}, {"sample", "--interval-ms", "5"}, {"versions", "extra"},
			{"mode"}, {"mode", "bogus"}} {
			r := runUnderWine(t, wine, prefix, time.Minute, args...)
			lines := agentLines(t, r.out)
			if r.code != 1 || len(lines) != 1 {
				t.Errorf("%v: exit %d with %d lines, want 1 and one E1 line:\n%s", args, r.code, len(lines), r.out)
				continue
			}
			v, err := agentfmt.ParseLine(lines[0])
			if e, ok := v.(*agentfmt.AgentError); err != nil || !ok || e.Where != "usage" {
				t.Errorf("%v: %q parsed as %#v, %v; want E1 where=usage", args, lines[0], v, err)
			}
		}
	})
	t.Run("sample", func(t *testing.T) {
		exe := filepath.Join(guestDir(t), "build", "x64", AgentFile)
		lines, code := streamUnderWine(t, wine, prefix, exe, 1+12, "sample", "--interval-ms", "100")
		if len(lines) < 2 {
			t.Fatalf("exit %d, lines %q: want H1 and at least one more", code, lines)
		}
		h, err := agentfmt.ParseHeader(lines[0])
		if err != nil || h.IntervalMS != 100 || h.Arch != "x64" {
			t.Fatalf("first line %q: %+v, %v", lines[0], h, err)
		}
		samples, poolErrors := 0, 0
		for _, l := range lines[1:] {
			v, err := agentfmt.ParseLine(l)
			if err != nil {
				t.Errorf("%q: %v", clip(l), err)
				continue
			}
			switch x := v.(type) {
			case *contract.Sample:
				if x.Seq != uint64(samples) {
					t.Errorf("seq %d, want %d", x.Seq, samples)
				}
				samples++
			case *agentfmt.AgentError:
				if x.Where == "SystemPoolTagInformation" {
					poolErrors++
				} else {
					t.Errorf("agent error %q", l)
				}
			default:
				t.Errorf("unexpected line %q", clip(l))
			}
		}
		// Either way the agent must keep its schedule and stop at stdin's end of file
		// (exit 0), not at its failure limit. Wine implements no SystemPoolTagInformation,
		// so there it reports one E1 per interval instead of an S1; TestFakePoolUnderWine
		// runs sample.c's S1 path on a synthetic pool.
		if code != 0 {
			t.Errorf("exit %d, want 0 after stdin closed", code)
		}
		if samples+poolErrors < 12 {
			t.Errorf("%d samples and %d pool errors before stdin closed, want 12 lines", samples, poolErrors)
		}
		t.Logf("%d samples, %d pool-query errors, then stopped at stdin's end of file", samples, poolErrors)
	})
	t.Run("sample-fakepool", func(t *testing.T) {
		// sample.c on a synthetic pool of 1500 tags (agent/fakepool/fakepool.c).
		dir := guestDir(t)
		if out, err := run(t, 5*time.Minute, "make", "-C", dir, "fakepool"); err != nil {
			t.Fatalf("make -C %s fakepool: %v\n%s", dir, err, lastLines(out, 30))
		}
		exe := filepath.Join(dir, "build", "x64", "test", "wfplab-agent-fakepool.exe")
		lines, code := streamUnderWine(t, wine, prefix, exe, 1+25, "sample", "--interval-ms", "50")
		if code != 0 {
			t.Errorf("exit %d, want 0 after stdin closed", code)
		}
		if len(lines) < 2 {
			t.Fatalf("lines %q", lines)
		}
		if _, err := agentfmt.ParseHeader(lines[0]); err != nil {
			t.Fatalf("%q: %v", lines[0], err)
		}
		checkFakePoolStream(t, lines)
	})
	t.Run("sample-gives-up", func(t *testing.T) {
		// Stdin stays open; only a failing query can end the run: after 50 in a row.
		r := runUnderWine(t, wine, prefix, time.Minute, "sample", "--interval-ms", "10")
		lines := agentLines(t, r.out)
		if strings.Contains(r.out, "S1 ") {
			t.Logf("this wine answers the pool tag query, so the give-up path cannot be reached here")
			return
		}
		if r.code != 2 || len(lines) != 1+50 {
			t.Fatalf("exit %d with %d lines, want exit 2 after H1 and 50 E1 lines", r.code, len(lines))
		}
		for _, l := range lines {
			if _, err := agentfmt.ParseLine(l); err != nil {
				t.Errorf("%q: %v", l, err)
			}
		}
	})
}

// runWithTimeout runs a helper whose output is not needed. Its stdout and stderr stay
// nil (/dev/null): wineserver daemonizes, and a pipe it inherited would keep Wait
// waiting for it.
func runWithTimeout(cmd *exec.Cmd, d time.Duration) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		_ = cmd.Process.Kill()
		<-done
		return errors.New("timed out")
	}
}
