package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/masterzen/winrm"
	"github.com/wfplab/wfplab/lab/contract"
)

// Session is one target's WinRM session: one masterzen/winrm client, shells opened per
// burst of commands. Its methods may be called from several goroutines.
type Session struct {
	target contract.Target
	opts   Options
	client *winrm.Client
	conns  *connTracker

	mu           sync.Mutex
	closed       bool
	certUploaded bool
}

// Result of one command.
type Result struct {
	Stdout, Stderr string
	Exit           int
}

// Dial builds the WinRM client for one target (winrm.NewEndpoint + winrm.NewParameters;
// never DefaultParameters). It does not connect yet.
func Dial(t contract.Target, opts Options) (*Session, error) {
	opts = opts.withDefaults()
	if err := checkTarget(t); err != nil {
		return nil, err
	}
	host := t.Endpoint.Host
	// The library formats its URL as host:port; an IPv6 literal needs its brackets.
	if a, err := netip.ParseAddr(host); err == nil && a.Is6() {
		host = "[" + host + "]"
	}
	ep := winrm.NewEndpoint(host, t.Endpoint.Port, t.Endpoint.HTTPS, t.Endpoint.Insecure,
		t.Endpoint.CACert, nil, nil, opts.OperationTimeout+httpSlack)
	params := winrm.NewParameters(wsmanDuration(opts.OperationTimeout), "en-US", 153600)
	conns := &connTracker{conns: map[*trackedConn]struct{}{}}
	g := &Session{target: t, opts: opts, conns: conns}
	tr := &transport{url: t.Endpoint.String(), user: t.Creds.User, pass: t.Creds.Password, dial: conns.dial,
		ntlm:  t.Endpoint.Auth == contract.AuthNTLM,
		limit: opts.OperationTimeout + httpSlack, logf: g.logf}
	params.TransportDecorator = func() winrm.Transporter { return tr }
	client, err := winrm.NewClientWithParameters(ep, t.Creds.User, t.Creds.Password, params)
	if err != nil {
		return nil, g.errorf("cannot build the WinRM client for %s: %v; check the endpoint's TLS settings (CA certificate PEM)", t.Endpoint, err)
	}
	g.client = client
	return g, nil
}

func checkTarget(t contract.Target) error {
	name := t.Name
	if name == "" {
		name = "(unnamed target)"
	}
	var problems []string
	if t.Name == "" {
		problems = append(problems, "the target has no name")
	}
	if t.Endpoint.Host == "" {
		problems = append(problems, "the endpoint has no host")
	}
	if t.Endpoint.Port < 1 || t.Endpoint.Port > 65535 {
		problems = append(problems, fmt.Sprintf("endpoint port %d is not in 1..65535", t.Endpoint.Port))
	}
	if t.Creds.User == "" {
		problems = append(problems, "no user name in the credentials")
	}
	if a := t.Endpoint.Auth; a != "" && !slices.Contains(contract.AuthSchemes, a) {
		problems = append(problems, fmt.Sprintf("auth %q is not one of %s", a, strings.Join(contract.AuthSchemes, ", ")))
	}
	if t.OS.Name == "" {
		problems = append(problems, "no OS from the catalog (contract.LookupOS)")
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s: cannot dial: %s; fix the provider's target definition", name, strings.Join(problems, "; "))
	}
	return nil
}

// Name is the target's name.
func (g *Session) Name() string { return g.target.Name }

// Target is the target this guest was dialled for.
func (g *Session) Target() contract.Target { return g.target }

// Close ends the session: it closes every connection the client holds, which also ends
// requests still in flight (the library cannot cancel those any other way). Later calls fail.
func (g *Session) Close() error {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.conns.closeAll()
	return nil
}

func (g *Session) isClosed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

// Run runs one command line in a shell of its own and collects its output. A non-zero
// exit is not an error; transport failures and timeouts are, wrapped with the target name.
func (g *Session) Run(ctx context.Context, line string) (Result, error) {
	var res Result
	err := g.withShell(ctx, func(sh *shell) error {
		var err error
		res, err = sh.run(ctx, line)
		return err
	})
	return res, err
}

// errorf builds an error that starts with the target's name and never holds the password.
func (g *Session) errorf(format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	// Wrapped errors of this guest already start with its name: say it once.
	inner := strings.ReplaceAll(err.Error(), g.target.Name+": ", "")
	return &redactedError{msg: g.redact(g.target.Name + ": " + inner), cause: errors.Unwrap(err)}
}

// logf sends progress to Options.Logf, prefixed with the target and without the password.
func (g *Session) logf(format string, args ...any) {
	g.opts.Logf("%s", g.redact(g.target.Name+": "+fmt.Sprintf(format, args...)))
}

// redact removes the password from text that may have come from anywhere (library
// errors, guest output), as a last line of defence.
func (g *Session) redact(s string) string {
	if p := g.target.Creds.Password; p != "" {
		s = strings.ReplaceAll(s, p, "<redacted>")
	}
	return s
}

// redactedError carries a message already scrubbed of secrets; Unwrap keeps errors.Is
// working (context.DeadlineExceeded and the like).
type redactedError struct {
	msg   string
	cause error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.cause }

// await runs f in a goroutine and waits for it or for ctx. The library's HTTP calls take no
// context, so when ctx ends first f goes on in the background (bounded by the HTTP timeout,
// or cut short by Close) and late receives its result to clean up.
func await[T any](ctx context.Context, f func() (T, error), late func(T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		go func() {
			r := <-ch
			if late != nil {
				late(r.v, r.err)
			}
		}()
		var zero T
		return zero, ctx.Err()
	}
}

// connTracker is the client's dialer: it remembers every connection so Close can end
// requests the library has no way to cancel.
type connTracker struct {
	mu     sync.Mutex
	closed bool
	conns  map[*trackedConn]struct{}
}

type trackedConn struct {
	net.Conn
	t    *connTracker
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.t.mu.Lock()
		delete(c.t.conns, c)
		c.t.mu.Unlock()
	})
	return c.Conn.Close()
}

var errSessionClosed = errors.New("the guest session is closed")

func (t *connTracker) dial(network, addr string) (net.Conn, error) {
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if closed {
		return nil, errSessionClosed
	}
	d := net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}
	c, err := d.Dial(network, addr)
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, t: t}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		c.Close()
		return nil, errSessionClosed
	}
	t.conns[tc] = struct{}{}
	return tc, nil
}

func (t *connTracker) closeAll() {
	t.mu.Lock()
	t.closed = true
	conns := make([]*trackedConn, 0, len(t.conns))
	for c := range t.conns {
		conns = append(conns, c)
	}
	t.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}
