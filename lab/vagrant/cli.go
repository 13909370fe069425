package vagrant

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// cli runs the vagrant executable in the Vagrantfile's folder, each call bounded in time.
type cli struct {
	path string
	dir  string
	env  []string // nil: wfplab's environment
}

// run runs `vagrant args...` and returns its standard output. A failure names the command,
// its exit status or the deadline it missed, and carries its last output lines, passwords
// left out.
func (c cli) run(ctx context.Context, timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.path, args...)
	cmd.Dir, cmd.Env = c.dir, c.env
	// Vagrant's children (VBoxManage, ...) may hold the pipes after it is killed.
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	line := "vagrant " + strings.Join(args, " ")
	switch {
	case err == nil:
		return stdout.String(), nil
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return "", fmt.Errorf("%q in %s did not finish within %s and was stopped%s", line, c.dir, timeout, tail(stdout.String(), stderr.String()))
	case ctx.Err() != nil:
		return "", fmt.Errorf("%q in %s: %w", line, c.dir, ctx.Err())
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return "", fmt.Errorf("%q in %s failed (exit status %d)%s", line, c.dir, exit.ExitCode(), tail(stdout.String(), stderr.String()))
	}
	return "", fmt.Errorf("%q in %s: %w (is Vagrant installed? provider.vagrant names the executable)", line, c.dir, err)
}

// tail is the end of what a command printed, for an error: machine-readable records are
// shown as their messages.
func tail(stdout, stderr string) string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(stderr+"\n"+stdout), "\n") {
		if recs := ParseMachineReadable(l); len(recs) == 1 {
			r := recs[0]
			// ui and error-exit records carry a level or class, then the message.
			if (r.Type != "ui" && r.Type != "error-exit") || len(r.Data) < 2 {
				continue
			}
			l = strings.Join(r.Data[1:], " ")
		}
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	const keep = 15
	if len(lines) > keep {
		lines = lines[len(lines)-keep:]
	}
	if len(lines) == 0 {
		return "; it printed nothing"
	}
	return ":\n    " + strings.ReplaceAll(redact(strings.Join(lines, "\n")), "\n", "\n    ")
}

var lookPath = exec.LookPath
