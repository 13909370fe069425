package lab_test

// Transport-level behaviour against the sim's WS-Management server (lab/sim/wsman) with
// small hosts of our own: the hangs, slow guests and vanishing guests that a faithful
// simulated Windows never produces on purpose.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wfplab/wfplab/lab"
	"github.com/wfplab/wfplab/lab/contract"
	"github.com/wfplab/wfplab/lab/sim/wsman"
)

const testUser, testPassword = "vagrant", "Pa55-w0rd-never-shown"

// wsmanGuest serves host on a loopback port and returns a target for it.
type wsmanGuest struct {
	t      *testing.T
	srv    *wsman.Server
	addr   string
	target contract.Target
}

func startWSMan(t *testing.T, host wsman.Host) *wsmanGuest {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w := &wsmanGuest{t: t, srv: wsman.NewServer(host, testUser, testPassword), addr: l.Addr().String()}
	go func() { _ = w.srv.Serve(l) }()
	t.Cleanup(func() { _ = w.srv.Close() })
	port := l.Addr().(*net.TCPAddr).Port
	win7, err := contract.LookupOS("win7-x64")
	if err != nil {
		t.Fatal(err)
	}
	w.target = contract.Target{
		Name:     "wsman-" + t.Name(),
		OS:       win7,
		Endpoint: contract.Endpoint{Host: "127.0.0.1", Port: port},
		Creds:    contract.Credentials{User: testUser, Password: testPassword},
	}
	return w
}

// restart serves again on the same address, like a guest after its reboot.
func (w *wsmanGuest) restart() {
	var l net.Listener
	var err error
	for range 50 { // the old socket may linger a moment
		if l, err = net.Listen("tcp", w.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		w.t.Errorf("restart on %s: %v", w.addr, err)
		return
	}
	go func() { _ = w.srv.Serve(l) }()
}

// logRecorder is an Options.Logf that keeps every line.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *logRecorder) logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
}

func (r *logRecorder) text() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "\n")
}

func dial(t *testing.T, target contract.Target, opts lab.Options) *lab.Session {
	t.Helper()
	g, err := lab.Dial(target, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// within fails the test if f does not return within limit: the lab's own deadlines must
// end every wait. limit is generous; only a hang trips it.
func within[T any](t *testing.T, limit time.Duration, f func() T) T {
	t.Helper()
	ch := make(chan T, 1)
	go func() { ch <- f() }()
	select {
	case v := <-ch:
		return v
	case <-time.After(limit):
		t.Fatalf("still waiting after %v: a wait without a deadline", limit)
		panic("unreachable")
	}
}

func waitShells(t *testing.T, srv *wsman.Server, want int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for srv.ShellCount() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d shells open on the server, want %d", srv.ShellCount(), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRunCollectsOutputAndExit(t *testing.T) {
	t.Parallel()
	var lines []string
	var mu sync.Mutex
	w := startWSMan(t, wsman.HostFunc(func(ctx context.Context, c wsman.Command) int {
		mu.Lock()
		lines = append(lines, c.Line)
		mu.Unlock()
		switch c.Line {
		case "ver":
			io.WriteString(c.Stdout, "\r\nMicrosoft Windows [Version 6.1.7600]\r\n")
			return 0
		}
		io.WriteString(c.Stderr, "'"+strings.Fields(c.Line)[0]+"' is not recognized as an internal or external command,\r\n")
		return 1
	}))
	g := dial(t, w.target, lab.Options{})
	res, err := g.Run(context.Background(), "ver")
	if err != nil || res.Exit != 0 || res.Stdout != "\r\nMicrosoft Windows [Version 6.1.7600]\r\n" || res.Stderr != "" {
		t.Fatalf("ver: %+v, %v", res, err)
	}
	res, err = g.Run(context.Background(), "foo bar")
	if err != nil || res.Exit != 1 || !strings.Contains(res.Stderr, "'foo' is not recognized") {
		t.Fatalf("foo bar: %+v, %v", res, err)
	}
	mu.Lock()
	if strings.Join(lines, "|") != "ver|foo bar" {
		t.Errorf("server saw %q", lines)
	}
	mu.Unlock()
	waitShells(t, w.srv, 0)
}

func TestFailedLoginKeepsPasswordSecret(t *testing.T) {
	t.Parallel()
	w := startWSMan(t, wsman.HostFunc(func(context.Context, wsman.Command) int { return 0 }))
	const wrong = "Wr0ng-but-still-S3cret"
	target := w.target
	target.Creds.Password = wrong
	var log logRecorder
	g := dial(t, target, lab.Options{Logf: log.logf, CommandTimeout: 20 * time.Second})
	_, err := g.Run(context.Background(), "ver")
	if err == nil {
		t.Fatal("wrong password accepted")
	}
	// Exercise more paths that log and wrap errors.
	_, perr := g.Preflight(context.Background())
	uerr := g.Upload(context.Background(), []byte("data"), `C:\wfplab\x.bin`)
	rerr := g.Reboot(context.Background())
	for _, e := range []error{err, perr, uerr, rerr} {
		if e == nil {
			t.Fatal("an operation succeeded with a wrong password")
		}
		msg := e.Error()
		t.Log(msg)
		if strings.Contains(msg, wrong) || strings.Contains(msg, testPassword) {
			t.Fatalf("error reveals the password: %s", msg)
		}
		if !strings.HasPrefix(msg, target.Name+": ") {
			t.Fatalf("error does not name the target: %s", msg)
		}
	}
	if !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "check the user and password") {
		t.Fatalf("error does not say what to do: %v", err)
	}
	if errors.Is(err, contract.ErrNoAnswer) {
		t.Fatalf("a 401 is the guest's answer, but the error says it did not answer: %v", err)
	}
	if l := log.text(); strings.Contains(l, wrong) {
		t.Fatalf("log reveals the password:\n%s", l)
	}
	if s := fmt.Sprintf("%v %+v %#v", target, target, target); strings.Contains(s, wrong) {
		t.Fatalf("target formats with the password: %s", s)
	}
}

func TestRunTimeoutIsBounded(t *testing.T) {
	t.Parallel()
	started := make(chan struct{}, 1)
	w := startWSMan(t, wsman.HostFunc(func(ctx context.Context, c wsman.Command) int {
		started <- struct{}{}
		<-ctx.Done() // a command that never ends on its own
		return 0
	}))
	g := dial(t, w.target, lab.Options{CommandTimeout: time.Second, OperationTimeout: time.Second})
	err := within(t, 30*time.Second, func() error {
		_, err := g.Run(context.Background(), "hang")
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "no answer in time") || !strings.Contains(err.Error(), "allow more time") {
		t.Fatalf("error %v", err)
	}
	// The library terminates the command and the shell goes once its receive returns.
	waitShells(t, w.srv, 0)
}

// A guest that does not answer (down, restarting, silent) fails with contract.ErrNoAnswer,
// which tells the runner it may wait for the guest and try again.
func TestNoAnswerIsMarked(t *testing.T) {
	t.Parallel()
	w := startWSMan(t, wsman.HostFunc(func(ctx context.Context, c wsman.Command) int {
		<-ctx.Done()
		return 0
	}))
	g := dial(t, w.target, lab.Options{CommandTimeout: time.Second, OperationTimeout: time.Second})
	_, silent := g.Run(context.Background(), "hang")
	_ = w.srv.Close()
	_, refused := g.Run(context.Background(), "ver")
	for _, err := range []error{silent, refused} {
		if err == nil || !errors.Is(err, contract.ErrNoAnswer) || !strings.HasPrefix(err.Error(), w.target.Name+": ") {
			t.Errorf("want an error naming the target and marked contract.ErrNoAnswer, got %v", err)
		}
	}
	if !strings.Contains(refused.Error(), "connection refused") {
		t.Errorf("the error does not say the connection was refused: %v", refused)
	}
}

func TestCloseAbortsRequestsInFlight(t *testing.T) {
	t.Parallel()
	started := make(chan struct{}, 1)
	w := startWSMan(t, wsman.HostFunc(func(ctx context.Context, c wsman.Command) int {
		started <- struct{}{}
		<-ctx.Done()
		return 0
	}))
	// Long deadlines: only Close can end this Run quickly.
	g, err := lab.Dial(w.target, lab.Options{CommandTimeout: 10 * time.Minute, OperationTimeout: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := g.Run(context.Background(), "hang")
		errc <- err
	}()
	<-started
	g.Close()
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "closed") {
			t.Fatalf("error %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run still blocked after Close")
	}
}

// bootHost answers wmic with a boot time that changes on every restart, and shutdown by
// taking the server down (and, when comeBack, up again after downFor).
type bootHost struct {
	w        *wsmanGuest
	boots    atomic.Int64
	comeBack bool
	downFor  time.Duration
}

func (h *bootHost) Run(ctx context.Context, c wsman.Command) int {
	switch c.Line {
	case "wmic os get LastBootUpTime /value":
		fmt.Fprintf(c.Stdout, "\r\r\n\r\r\nLastBootUpTime=202611280630%02d.500000+000\r\r\n\r\r\n\r\r\n", h.boots.Load())
		return 0
	case "shutdown /r /f /t 0":
		go func() {
			time.Sleep(50 * time.Millisecond)
			_ = h.w.srv.Close()
			if !h.comeBack {
				return
			}
			time.Sleep(h.downFor)
			h.boots.Add(1)
			h.w.restart()
		}()
		return 0
	}
	return 1
}

func TestRebootWaitsForNewBootTime(t *testing.T) {
	t.Parallel()
	h := &bootHost{comeBack: true, downFor: 500 * time.Millisecond}
	h.w = startWSMan(t, h)
	var log logRecorder
	g := dial(t, h.w.target, lab.Options{Logf: log.logf, RebootPoll: 100 * time.Millisecond, RebootTimeout: time.Minute})
	err := within(t, 2*time.Minute, func() error { return g.Reboot(context.Background()) })
	if err != nil {
		t.Fatalf("reboot: %v\nlog:\n%s", err, log.text())
	}
	if h.boots.Load() != 1 {
		t.Fatalf("reboot returned before the guest came back (boots %d)", h.boots.Load())
	}
	if l := log.text(); !strings.Contains(l, "down after") || !strings.Contains(l, "back up after") {
		t.Fatalf("log does not note down and up:\n%s", l)
	}
	bt, err := g.BootTime(context.Background())
	if err != nil || bt != "20261128063001.500000+000" {
		t.Fatalf("boot time after reboot: %q, %v", bt, err)
	}
}

func TestRebootBoundedWhenGuestNeverReturns(t *testing.T) {
	t.Parallel()
	h := &bootHost{comeBack: false}
	h.w = startWSMan(t, h)
	g := dial(t, h.w.target, lab.Options{RebootPoll: 100 * time.Millisecond, RebootTimeout: 2 * time.Second})
	err := within(t, time.Minute, func() error { return g.Reboot(context.Background()) })
	t.Log(err)
	if err == nil || !strings.Contains(err.Error(), "did not answer again") || !strings.Contains(err.Error(), "raise the reboot timeout") {
		t.Fatalf("error %v", err)
	}
}

func TestRebootNoticesShutdownThatDidNotHappen(t *testing.T) {
	t.Parallel()
	w := startWSMan(t, wsman.HostFunc(func(ctx context.Context, c wsman.Command) int {
		if strings.HasPrefix(c.Line, "wmic") {
			io.WriteString(c.Stdout, "LastBootUpTime=20261128063012.500000+000\r\r\n")
		}
		return 0 // shutdown "succeeds" but nothing happens
	}))
	g := dial(t, w.target, lab.Options{RebootPoll: 100 * time.Millisecond, RebootTimeout: time.Second})
	err := within(t, time.Minute, func() error { return g.Reboot(context.Background()) })
	if err == nil || !strings.Contains(err.Error(), "old boot time") {
		t.Fatalf("error %v", err)
	}
}

// agentHost plays a sample stream: H1, then an S1 every tick until stdin ends.
func agentHost(tick time.Duration) wsman.HostFunc {
	return func(ctx context.Context, c wsman.Command) int {
		if !strings.Contains(c.Line, " sample --interval-ms ") {
			return 1
		}
		io.WriteString(c.Stdout, "H1 agent=wfplab-agent ver=0.1.0 interval_ms=20 arch=x64 pid=7\r\n")
		eof := make(chan struct{})
		go func() { _, _ = io.Copy(io.Discard, c.Stdin); close(eof) }()
		for seq := 0; ; seq++ {
			fmt.Fprintf(c.Stdout, "S1 seq=%d t_us=%d np_bytes=1000 np_allocs=1 np_frees=0 cpu_kernel_ms=0 cpu_user_ms=0 cpu_idle_ms=0 drv=absent T.Abcd=%d,0,64\r\n", seq, seq*20000, seq+1)
			select {
			case <-eof:
				return 0
			case <-ctx.Done():
				return 1
			case <-time.After(tick):
			}
		}
	}
}

func TestSamplerStreamsAndStops(t *testing.T) {
	t.Parallel()
	w := startWSMan(t, agentHost(20*time.Millisecond))
	g := dial(t, w.target, lab.Options{})
	s, err := g.StartSampler(context.Background(), 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if h := s.Header(); h.PID != 7 || h.IntervalMS != 20 || h.Arch != "x64" {
		t.Fatalf("header %+v", h)
	}
	var got []uint64
	for ev := range s.Events() {
		if ev.Err != nil {
			t.Fatalf("event error: %v (line %q)", ev.Err, ev.Line)
		}
		if !strings.HasPrefix(ev.Line, "S1 ") || ev.At.IsZero() {
			t.Fatalf("event %+v", ev)
		}
		got = append(got, ev.Sample.Seq)
		if len(got) == 5 {
			break
		}
	}
	if err := within(t, time.Minute, func() error { return s.Stop(context.Background()) }); err != nil {
		t.Fatal(err)
	}
	for ev := range s.Events() { // drains to the close
		if ev.Err != nil {
			t.Fatalf("error after stop: %v", ev.Err)
		}
		got = append(got, ev.Sample.Seq)
	}
	for i, seq := range got {
		if seq != uint64(i) {
			t.Fatalf("sequence %v has a gap or reorder", got)
		}
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	waitShells(t, w.srv, 0)
}

func TestSamplerStopWithoutReader(t *testing.T) {
	t.Parallel()
	w := startWSMan(t, agentHost(time.Millisecond))
	g := dial(t, w.target, lab.Options{CommandTimeout: 20 * time.Second})
	s, err := g.StartSampler(context.Background(), time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // the buffer fills; nobody reads
	if err := within(t, time.Minute, func() error { return s.Stop(context.Background()) }); err != nil {
		t.Fatal(err)
	}
	n := 0
	for range s.Events() {
		n++
	}
	if n == 0 {
		t.Fatal("no events were buffered")
	}
}

func TestSamplerAgentFailsBeforeHeader(t *testing.T) {
	t.Parallel()
	w := startWSMan(t, wsman.HostFunc(func(ctx context.Context, c wsman.Command) int {
		io.WriteString(c.Stdout, "E1 where=SystemPoolTagInformation code=3221225476 msg=buffer%20too%20small\r\n")
		return 2
	}))
	g := dial(t, w.target, lab.Options{})
	err := within(t, time.Minute, func() error {
		_, err := g.StartSampler(context.Background(), 100*time.Millisecond)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "exit code 2") || !strings.Contains(err.Error(), "before its H1 header") {
		t.Fatalf("error %v", err)
	}
	waitShells(t, w.srv, 0)
}

// The library formats its URL as host:port: an IPv6 literal must reach it in brackets.
func TestRunOverIPv6Loopback(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("this host has no IPv6 loopback to test on: %v", err)
	}
	srv := wsman.NewServer(wsman.HostFunc(func(ctx context.Context, c wsman.Command) int {
		io.WriteString(c.Stdout, "AMD64\r\n")
		return 0
	}), testUser, testPassword)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	win7, _ := contract.LookupOS("win7-x64")
	g := dial(t, contract.Target{Name: "v6", OS: win7, Endpoint: contract.Endpoint{Host: "::1", Port: l.Addr().(*net.TCPAddr).Port},
		Creds: contract.Credentials{User: testUser, Password: testPassword}}, lab.Options{})
	res, err := g.Run(context.Background(), "echo %PROCESSOR_ARCHITECTURE%")
	if err != nil || res.Stdout != "AMD64\r\n" {
		t.Fatalf("%+v, %v", res, err)
	}
}

// An agent that ignores the end of its input: Stop must terminate it, within its bound.
func TestSamplerStopTerminatesStubbornAgent(t *testing.T) {
	t.Parallel()
	w := startWSMan(t, wsman.HostFunc(func(ctx context.Context, c wsman.Command) int {
		io.WriteString(c.Stdout, "H1 agent=wfplab-agent ver=0.1.0 interval_ms=50 arch=x86 pid=9\r\n")
		<-ctx.Done() // only terminate ends it
		return 0
	}))
	g := dial(t, w.target, lab.Options{CommandTimeout: 2 * time.Second, OperationTimeout: time.Second})
	s, err := g.StartSampler(context.Background(), 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	err = within(t, time.Minute, func() error { return s.Stop(context.Background()) })
	if err == nil || !strings.Contains(err.Error(), "did not end within") {
		t.Fatalf("Stop: %v", err)
	}
	within(t, time.Minute, func() int {
		n := 0
		for range s.Events() {
			n++
		}
		return n
	})
	waitShells(t, w.srv, 0)
}

// The sampler's context bounds its life: cancelling it ends the stream with an error event.
func TestSamplerEndsWithItsContext(t *testing.T) {
	t.Parallel()
	w := startWSMan(t, agentHost(20*time.Millisecond))
	g := dial(t, w.target, lab.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	s, err := g.StartSampler(ctx, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	<-s.Events()
	cancel()
	last := within(t, time.Minute, func() contract.SampleEvent {
		var last contract.SampleEvent
		for ev := range s.Events() {
			last = ev
		}
		return last
	})
	if last.Err == nil || !strings.Contains(last.Err.Error(), "sample stream ended") {
		t.Fatalf("last event %+v", last)
	}
	if err := within(t, time.Minute, func() error { return s.Stop(context.Background()) }); err != nil {
		t.Fatalf("Stop after the end: %v", err)
	}
}
