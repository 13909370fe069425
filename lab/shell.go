package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/masterzen/winrm"
	"github.com/wfplab/wfplab/lab/contract"
)

// shell is one remote cmd shell, reused for a burst of commands (WinRM limits shells per
// user, and opening one is a round trip).
type shell struct {
	g  *Session
	sh *winrm.Shell
}

// maxShellClose bounds deleting a shell: a guest that is going down may never answer.
const maxShellClose = 15 * time.Second

// withShell opens a shell, runs f in it, and deletes the shell.
func (g *Session) withShell(ctx context.Context, f func(*shell) error) error {
	sh, err := g.openShell(ctx)
	if err != nil {
		return err
	}
	defer sh.close(ctx)
	return f(sh)
}

func (g *Session) openShell(ctx context.Context) (*shell, error) {
	if g.isClosed() {
		return nil, g.errorf("the session is closed; Dial the target again")
	}
	octx, cancel := context.WithTimeout(ctx, g.opts.CommandTimeout)
	defer cancel()
	sh, err := await(octx, g.client.CreateShell, func(s *winrm.Shell, _ error) {
		if s != nil {
			_ = s.Close() // it came too late: do not leave it to count against the quota
		}
	})
	if err != nil {
		return nil, g.transportError("cannot open a WinRM shell", err, octx)
	}
	return &shell{g: g, sh: sh}, nil
}

// close deletes the shell within ctx (and at most maxShellClose): when ctx is already done,
// the delete goes on in the background so the caller's deadline holds. Failure only costs a
// shell the guest drops when idle.
func (s *shell) close(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, min(maxShellClose, s.g.opts.CommandTimeout))
	defer cancel()
	_, err := await(cctx, func() (struct{}, error) { return struct{}{}, s.sh.Close() }, nil)
	if err != nil && cctx.Err() == nil && !s.g.isClosed() {
		s.g.logf("could not delete a WinRM shell (%v); the guest drops it when idle", err)
	}
}

// run runs one command line in the shell, bounded by CommandTimeout. A non-zero exit is
// not an error.
func (s *shell) run(ctx context.Context, line string) (Result, error) {
	g := s.g
	if len(line) > maxCommandLine {
		return Result{}, g.errorf("command line of %d characters is longer than cmd.exe's %d (a lab bug: report it)", len(line), maxCommandLine)
	}
	cctx, cancel := context.WithTimeout(ctx, g.opts.CommandTimeout)
	defer cancel()
	cmd, err := await(cctx, func() (*winrm.Command, error) { return s.sh.ExecuteWithContext(cctx, line) },
		func(c *winrm.Command, _ error) {
			if c != nil {
				drain(c) // its context is done: the library terminates it; keep its pipes flowing
			}
		})
	if err != nil {
		return Result{}, g.transportError(fmt.Sprintf("%q could not start", line), err, cctx)
	}
	var stdout, stderr capBuffer
	copyErrs := make(chan error, 2)
	go func() { _, err := io.Copy(&stdout, cmd.Stdout); copyErrs <- err }()
	go func() { _, err := io.Copy(&stderr, cmd.Stderr); copyErrs <- err }()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-cctx.Done():
		select {
		case <-done:
		default:
			// The library signals terminate by itself once it sees cctx done.
			return Result{}, g.transportError(fmt.Sprintf("%q", line), cctx.Err(), cctx)
		}
	}
	err = errors.Join(<-copyErrs, <-copyErrs)
	if err != nil {
		return Result{}, g.transportError(fmt.Sprintf("%q", line), err, cctx)
	}
	// Like the library's own Run: tell the guest we are done with the command.
	_, _ = await(cctx, func() (struct{}, error) { return struct{}{}, cmd.Close() }, nil)
	return Result{Stdout: stdout.String(), Stderr: stderr.String(), Exit: cmd.ExitCode()}, nil
}

// must runs line and fails unless its exit code is one of ok (0 when ok is empty).
func (s *shell) must(ctx context.Context, line string, ok ...int) (Result, error) {
	res, err := s.run(ctx, line)
	if err != nil {
		return res, err
	}
	if len(ok) == 0 {
		ok = []int{0}
	}
	for _, code := range ok {
		if res.Exit == code {
			return res, nil
		}
	}
	return res, s.g.errorf("%q failed with exit code %d: %s", line, res.Exit, summary(res))
}

// drain reads a command's output away so the library's receive loop never blocks on it.
func drain(c *winrm.Command) {
	go func() { _, _ = io.Copy(io.Discard, c.Stdout) }()
	go func() { _, _ = io.Copy(io.Discard, c.Stderr) }()
}

// transportError explains a failure to talk to the guest and what to do about it.
func (g *Session) transportError(what string, err error, ctx context.Context) error {
	ep := g.target.Endpoint.String()
	msg := err.Error()
	switch {
	case g.isClosed():
		return g.errorf("%s: the session was closed (%w)", what, err)
	case errors.Is(err, context.DeadlineExceeded) || (ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded)):
		return g.errorf("%s: no answer in time (%w); the guest may be hung, rebooting or overloaded: check it, or allow more time (command timeout %v)",
			what, noAnswer{context.DeadlineExceeded}, g.opts.CommandTimeout)
	case errors.Is(err, context.Canceled):
		return g.errorf("%s: cancelled (%w)", what, err)
	case strings.Contains(msg, " 401"):
		return g.errorf("%s: the guest refused the credentials of user %q (HTTP 401, %s); check the user and password, and that the WinRM service allows %s",
			what, g.target.Creds.User, g.authName(), g.authHint())
	case strings.Contains(msg, "HTTPS certificate") || strings.Contains(msg, "answers plain HTTP") || strings.Contains(msg, "offers only Basic"):
		return g.errorf("%s: WinRM request to %s failed: %w", what, ep, err)
	case strings.Contains(msg, "connection refused"):
		return g.errorf("%s: nothing answers at %s (%w); is the guest up, and WinRM enabled there (winrm quickconfig)?", what, ep, noAnswer{errors.New("connection refused")})
	case connDropped(err):
		return g.errorf("%s: WinRM request to %s failed: %w; check that the guest is up and reachable", what, ep, noAnswer{err})
	}
	return g.errorf("%s: WinRM request to %s failed: %w; check that the guest is up and reachable", what, ep, err)
}

// noAnswer marks a transport failure in which the guest did not answer (contract.ErrNoAnswer),
// keeping the cause for errors.Is.
type noAnswer struct{ cause error }

func (e noAnswer) Error() string        { return e.cause.Error() }
func (e noAnswer) Unwrap() error        { return e.cause }
func (e noAnswer) Is(target error) bool { return target == contract.ErrNoAnswer }

// authName is the scheme the session authenticates with, as errors name it.
func (g *Session) authName() string {
	if g.target.Endpoint.Auth == contract.AuthNTLM {
		return "NTLM"
	}
	return "Basic auth"
}

// authHint is the guest setting the session's scheme needs.
func (g *Session) authHint() string {
	if g.target.Endpoint.Auth == contract.AuthNTLM {
		return `Negotiate (winrm set winrm/config/service/auth @{Negotiate="true"})`
	}
	return `Basic auth (winrm set winrm/config/service/auth @{Basic="true"}), or set auth: ntlm`
}

// summary is a short one-line view of a command's output for error messages.
func summary(r Result) string {
	text := strings.TrimSpace(strings.TrimSpace(r.Stdout) + " " + strings.TrimSpace(r.Stderr))
	text = strings.Join(strings.Fields(text), " ")
	if text == "" {
		return "(no output)"
	}
	if len(text) > 300 {
		text = text[:300] + "..."
	}
	return text
}

// capBuffer keeps the first maxOutput bytes of a command's output and drops the rest: the
// lab's commands print little, and a runaway one must not eat the host's memory.
type capBuffer struct {
	mu      sync.Mutex
	b       strings.Builder
	dropped int
}

const maxOutput = 4 << 20

func (c *capBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	room := maxOutput - c.b.Len()
	if room >= len(p) {
		c.b.Write(p)
	} else {
		if room > 0 {
			c.b.Write(p[:room])
		}
		c.dropped += len(p) - max(room, 0)
	}
	return len(p), nil
}

func (c *capBuffer) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dropped > 0 {
		return c.b.String() + fmt.Sprintf("\r\n[%d more bytes dropped]\r\n", c.dropped)
	}
	return c.b.String()
}
