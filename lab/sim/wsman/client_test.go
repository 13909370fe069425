package wsman

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/masterzen/winrm"
)

// Tests in this file drive the server with the unmodified masterzen/winrm client over HTTP.

func TestRunExitCodesAndOutput(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(t, nil, testPassword)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	cases := []struct {
		line           string
		stdout, stderr string
		exit           int
	}{
		{"echo hello world", "hello world\r\n", "", 0},
		{"exit 7", "", "", 7},
		{"exit -2145124329", "", "", -2145124329},
		{"both", "to stdout\r\n", "to stderr\r\n", 3},
		{"foo bar", "", "'foo' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n", 1},
	}
	for _, tc := range cases {
		stdout, stderr, code, err := c.RunWithContextWithString(ctx, tc.line, "")
		if err != nil {
			t.Fatalf("%q: %v", tc.line, err)
		}
		if stdout != tc.stdout || stderr != tc.stderr || code != tc.exit {
			t.Errorf("%q: got stdout %q stderr %q exit %d, want %q %q %d", tc.line, stdout, stderr, code, tc.stdout, tc.stderr, tc.exit)
		}
	}
	// Every Run cleans up: signal, then delete.
	if n := e.srv.ShellCount(); n != 0 {
		t.Errorf("%d shells left open after Run calls", n)
	}
}

func TestRunWithContextWriters(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(t, nil, testPassword)
	var out, errb bytes.Buffer
	code, err := c.RunWithContext(context.Background(), "both", &out, &errb)
	if err != nil || code != 3 || out.String() != "to stdout\r\n" || errb.String() != "to stderr\r\n" {
		t.Fatalf("got exit %d err %v stdout %q stderr %q", code, err, out.String(), errb.String())
	}
}

func TestLargeOutputIntactAndWithinEnvelope(t *testing.T) {
	e := newEnv(t, nil)
	const envelope = 153600
	c := e.client(t, winrm.NewParameters("PT60S", "en-US", envelope), testPassword)
	const size = 3_000_000
	var out, errb bytes.Buffer
	code, err := c.RunWithContext(context.Background(), "big "+strconv.Itoa(size), &out, &errb)
	if err != nil || code != 0 {
		t.Fatalf("exit %d, err %v, stderr %q", code, err, errb.String())
	}
	if !bytes.Equal(out.Bytes(), pattern(size)) {
		t.Fatalf("output differs: got %d bytes, want %d", out.Len(), size)
	}
	receives := 0
	for _, r := range e.rec.records() {
		if r.action != ActionReceive {
			continue
		}
		receives++
		if r.size > envelope {
			t.Errorf("a ReceiveResponse of %d bytes exceeds the client's MaxEnvelopeSize %d", r.size, envelope)
		}
	}
	// 3 MB in envelopes of 150 KB: at least 20 answers, so the cap was applied.
	if receives < 20 {
		t.Errorf("only %d Receive exchanges for %d bytes: responses are not capped", receives, size)
	}
}

func TestStdinRoundTrip(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(t, nil, testPassword)
	data := make([]byte, 400_000) // more than one Send envelope
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code, err := c.RunWithContextWithInput(context.Background(), "cat", &out, &errb, bytes.NewReader(data))
	if err != nil || code != 0 {
		t.Fatalf("exit %d err %v stderr %q", code, err, errb.String())
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("stdin did not round-trip: got %d bytes, want %d", out.Len(), len(data))
	}

	// The same through the Command's Stdin writer, closed explicitly.
	sh, err := c.CreateShell()
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	cmd, err := sh.ExecuteWithContext(context.Background(), "cat")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(cmd.Stdout)
		got <- string(b)
	}()
	go func() { _, _ = io.Copy(io.Discard, cmd.Stderr) }()
	if _, err := cmd.Stdin.Write([]byte("first line\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := cmd.Stdin.Write([]byte("second line\n")); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Stdin.Close(); err != nil {
		t.Fatal(err)
	}
	if s := waitFor(t, got, "cat output"); s != "first line\nsecond line\n" {
		t.Errorf("cat echoed %q", s)
	}
	cmd.Wait()
	if cmd.ExitCode() != 0 {
		t.Errorf("exit code %d", cmd.ExitCode())
	}
	_ = cmd.Close()
}

func TestStreamingAlongsideOtherCommands(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(t, nil, testPassword)
	sh, err := c.CreateShell()
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	cmd, err := sh.ExecuteWithContext(context.Background(), "stream 20")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, cmd.Stderr) }()
	lines := bufio.NewScanner(cmd.Stdout)
	next := func() string {
		t.Helper()
		done := make(chan string, 1)
		go func() {
			if lines.Scan() {
				done <- lines.Text()
			} else {
				done <- "<eof>"
			}
		}()
		return waitFor(t, done, "a streamed line")
	}
	for i := 0; i < 3; i++ {
		if got, want := next(), fmt.Sprintf("line %d", i); got != want {
			t.Fatalf("streamed line %q, want %q", got, want)
		}
	}
	// Other commands on other shells run while the stream is open.
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, _, code, err := c.RunWithContextWithString(context.Background(), fmt.Sprintf("echo other %d", i), "")
			if err != nil || code != 0 || out != fmt.Sprintf("other %d\r\n", i) {
				t.Errorf("concurrent run %d: %q exit %d err %v", i, out, code, err)
			}
		}()
	}
	wg.Wait()
	for i := 3; i < 6; i++ {
		if got, want := next(), fmt.Sprintf("line %d", i); got != want {
			t.Fatalf("streamed line %q, want %q", got, want)
		}
	}
	// Closing the command signals terminate: the Host's ctx is cancelled.
	go func() {
		for lines.Scan() {
		}
	}()
	if err := cmd.Close(); err != nil {
		t.Fatalf("signal: %v", err)
	}
	waitFor(t, e.host.cancelled, "the stream command's cancellation")
	cmd.Wait()
}

func TestQuietCommandSurvivesOperationTimeout(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(t, winrm.NewParameters("PT1S", "en-US", 153600), testPassword)
	out, _, code, err := c.RunWithContextWithString(context.Background(), "quiet 2500", "")
	if err != nil || code != 0 || out != "done\r\n" {
		t.Fatalf("got %q exit %d err %v", out, code, err)
	}
	timeouts := 0
	for _, r := range e.rec.records() {
		if r.action == ActionReceive && r.status == http.StatusInternalServerError && strings.Contains(r.body, "TimedOut") {
			timeouts++
		}
	}
	if timeouts < 1 {
		t.Fatalf("a 2.5 s quiet command with PT1S saw no TimedOut fault")
	}
}

func TestContextCancelSignalsCommand(t *testing.T) {
	e := newEnv(t, nil)
	// PT1S: masterzen notices the cancel only when its Receive in flight returns.
	c := e.client(t, winrm.NewParameters("PT1S", "en-US", 153600), testPassword)
	ctx, cancel := context.WithCancel(context.Background())
	result := make(chan error, 1)
	go func() {
		var out, errb bytes.Buffer
		_, err := c.RunWithContext(ctx, "block", &out, &errb)
		result <- err
	}()
	waitFor(t, e.host.started, "the command to start")
	cancel()
	waitFor(t, e.host.cancelled, "the Host ctx to be cancelled")
	select {
	case err := <-result:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("RunWithContext returned %v, want context.Canceled", err)
		}
	case <-time.After(wait):
		t.Fatal("RunWithContext did not return after cancel")
	}
	signals := 0
	for _, r := range e.rec.records() {
		if r.action == ActionSignal && r.status == http.StatusOK {
			signals++
		}
	}
	if signals == 0 {
		t.Error("no successful Signal exchange after cancelling the context")
	}
}

func TestWrongPasswordWithClient(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(t, nil, "wrong")
	_, _, _, err := c.RunWithContextWithString(context.Background(), "echo hi", "")
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("want a 401 error, got %v", err)
	}
}

func TestUnknownShellWithClient(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(t, nil, testPassword)
	_, err := c.NewShell("6F1D6D4E-0000-0000-0000-000000000000").ExecuteWithContext(context.Background(), "echo hi")
	expectClientFault(t, err, "InvalidSelectors", "2150858843")
}

// expectClientFault checks the error masterzen returns for a fault. It does not look at the
// HTTP status (its Post drops that error), so the fault surfaces as an unexpected answer
// whose body is kept in ExecuteCommandError.
func expectClientFault(t *testing.T, err error, want ...string) {
	t.Helper()
	var ece *winrm.ExecuteCommandError
	if !errors.As(err, &ece) {
		t.Fatalf("want a fault answer, got %v", err)
	}
	for _, w := range want {
		if !strings.Contains(ece.Body, w) {
			t.Errorf("fault body lacks %q:\n%s", w, ece.Body)
		}
	}
}

func TestShellQuota(t *testing.T) {
	e := newEnv(t, &Server{MaxShellsPerUser: 2})
	c := e.client(t, nil, testPassword)
	s1, err := c.CreateShell()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateShell(); err != nil {
		t.Fatal(err)
	}
	// masterzen ignores the HTTP status and would read no shell id; look at the wire instead.
	resp, body := e.post(t, winrm.NewOpenShellRequest(e.url, nil).String())
	f := expectFault(t, resp, body, http.StatusInternalServerError, sender, xmlName{NSWSMan, "QuotaLimit"})
	if f.WSManCode != "2150859173" || !strings.Contains(f.Reason, "maximum number of 2 concurrent shells") {
		t.Errorf("quota fault code %q reason %q", f.WSManCode, f.Reason)
	}
	if n := e.srv.ShellCount(); n != 2 {
		t.Errorf("%d shells open, want 2", n)
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateShell(); err != nil {
		t.Fatalf("after deleting a shell: %v", err)
	}
}

func TestManyConcurrentShells(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(t, nil, testPassword)
	var wg sync.WaitGroup
	for i := 0; i < 24; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			line := fmt.Sprintf("echo n%d", i)
			if i%3 == 0 {
				line = "big 200000"
			}
			out, _, code, err := c.RunWithContextWithString(context.Background(), line, "")
			if err != nil || code != 0 {
				t.Errorf("%s: exit %d err %v", line, code, err)
				return
			}
			if i%3 == 0 && out != string(pattern(200000)) {
				t.Errorf("%s: output differs (%d bytes)", line, len(out))
			} else if i%3 != 0 && out != fmt.Sprintf("n%d\r\n", i) {
				t.Errorf("%s: got %q", line, out)
			}
		}()
	}
	wg.Wait()
}

func TestHostPanicBecomesExitCode(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(t, nil, testPassword)
	_, _, code, err := c.RunWithContextWithString(context.Background(), "panic", "")
	if err != nil || code != statusAccessViolation {
		t.Fatalf("exit %d err %v, want %d", code, err, statusAccessViolation)
	}
}

func TestWinRM11Dialect(t *testing.T) {
	e := newEnv(t, &Server{WinRM11: true})
	c := e.client(t, nil, testPassword)
	out, _, code, err := c.RunWithContextWithString(context.Background(), "echo legacy", "")
	if err != nil || code != 0 || out != "legacy\r\n" {
		t.Fatalf("got %q exit %d err %v", out, code, err)
	}
	resp, body := e.post(t, winrm.NewOpenShellRequest(e.url, nil).String())
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	ids := findText(t, body, NSWSMan, "Selector", "Name", "ShellId")
	if len(ids) != 1 || !strings.HasPrefix(ids[0], "uuid:") {
		t.Errorf("WinRM 1.1 shell id %q should carry the uuid: prefix", ids)
	}
	if shells := findText(t, body, NSShell, "Shell", "", ""); len(shells) != 0 {
		t.Error("WinRM 1.1 CreateResponse has an rsp:Shell element")
	}
}

// TestCloseCancelsAndRestartsOnSameAddress is the simulated reboot: Close stops everything,
// and the same Server serves a fresh lifetime on the same address afterwards.
func TestCloseCancelsAndRestartsOnSameAddress(t *testing.T) {
	h := newTestHost()
	srv := NewServer(h, testUser, testPassword)
	srv.Logf = t.Logf
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	host, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	ep := winrm.NewEndpoint(host, port, false, false, nil, nil, nil, 90*time.Second)
	c, err := winrm.NewClientWithParameters(ep, testUser, testPassword, winrm.NewParameters("PT60S", "en-US", 153600))
	if err != nil {
		t.Fatal(err)
	}
	if out, _, _, err := c.RunWithContextWithString(context.Background(), "echo before", ""); err != nil || out != "before\r\n" {
		t.Fatalf("before close: %q %v", out, err)
	}
	sh, err := c.CreateShell()
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := sh.ExecuteWithContext(context.Background(), "block")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, cmd.Stdout) }()
	go func() { _, _ = io.Copy(io.Discard, cmd.Stderr) }()
	waitFor(t, h.started, "the command to start")

	if err := srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	waitFor(t, h.cancelled, "Close to cancel the running command")
	select {
	case err := <-served:
		if !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
		}
	case <-time.After(wait):
		t.Fatal("Serve did not return after Close")
	}
	cmd.Wait() // the Receive in flight failed with the connection
	if _, _, _, err := c.RunWithContextWithString(context.Background(), "echo down", ""); err == nil {
		t.Fatal("a request succeeded while the server was down")
	}

	// Restart on the same address (the port is free again once Close returned).
	var l2 net.Listener
	eventually(t, "the address to be free again", func() bool {
		l2, err = net.Listen("tcp", addr)
		return err == nil
	})
	go func() { served <- srv.Serve(l2) }()
	if out, err := runAfterRestart(c, "echo after"); err != nil || out != "after\r\n" {
		t.Fatalf("after restart: %q %v", out, err)
	}
	// The old shell did not survive the reboot.
	_, err = sh.ExecuteWithContext(context.Background(), "echo old")
	expectClientFault(t, err, "InvalidSelectors", "shell was not found")

	// A brand-new Server value can take the address over as well.
	if err := srv.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	<-served
	fresh := NewServer(h, testUser, testPassword)
	var l3 net.Listener
	eventually(t, "the address to be free again", func() bool {
		l3, err = net.Listen("tcp", addr)
		return err == nil
	})
	go func() { served <- fresh.Serve(l3) }()
	defer func() {
		if err := fresh.Close(); err != nil {
			t.Errorf("final Close: %v", err)
		}
	}()
	if out, err := runAfterRestart(c, "echo fresh"); err != nil || out != "fresh\r\n" {
		t.Fatalf("new Server on the same address: %q %v", out, err)
	}
}

// runAfterRestart runs line, retrying when the client's pooled keep-alive connection to the
// previous server lifetime turns out dead (EOF, reset): masterzen's transport does not retry a
// POST itself, and a client of a rebooted Windows host meets the same.
func runAfterRestart(c *winrm.Client, line string) (string, error) {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var out string
		out, _, _, err = c.RunWithContextWithString(context.Background(), line, "")
		if err == nil {
			return out, nil
		}
		if !strings.Contains(err.Error(), "EOF") && !strings.Contains(err.Error(), "connection reset") {
			return out, err
		}
	}
	return "", err
}

func TestShutdownEndsLongPoll(t *testing.T) {
	h := newTestHost()
	srv := NewServer(h, testUser, testPassword)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	host, portStr, _ := net.SplitHostPort(l.Addr().String())
	port, _ := strconv.Atoi(portStr)
	ep := winrm.NewEndpoint(host, port, false, false, nil, nil, nil, 90*time.Second)
	c, err := winrm.NewClientWithParameters(ep, testUser, testPassword, winrm.NewParameters("PT60S", "en-US", 153600))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, _, _, err := c.RunWithContextWithString(context.Background(), "block", "")
		done <- err
	}()
	waitFor(t, h.started, "the command to start")
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	start := time.Now()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	waitFor(t, h.cancelled, "Shutdown to cancel the command")
	// The 60 s long poll must not hold Shutdown up to its OperationTimeout.
	if d := time.Since(start); d > wait/2 {
		t.Errorf("Shutdown took %s", d)
	}
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatal("client did not return after Shutdown")
	}
}
