package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeQMP is a QMP server on a unix socket: greeting, qmp_capabilities, then one reply
// per command as reply decides. It records every command it reads.
type fakeQMP struct {
	t        *testing.T
	path     string
	greet    bool
	reply    func(cmd map[string]any) (string, bool) // the reply line; false: never answer
	mu       sync.Mutex
	commands []map[string]any
	conns    int
}

const qmpGreeting = `{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18"}, "capabilities": ["oob"]}}`

func newFakeQMP(t *testing.T, path string, greet bool, reply func(map[string]any) (string, bool)) *fakeQMP {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "qmp.sock")
	}
	ln, err := net.Listen("unix", dialablePath(path))
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeQMP{t: t, path: path, greet: greet, reply: reply}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop); ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conns++
			f.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				go func() { <-stop; c.Close() }()
				f.serve(c)
			}()
		}
	}()
	return f
}

func (f *fakeQMP) serve(c net.Conn) {
	if !f.greet {
		buf := make([]byte, 1)
		c.Read(buf) // hold the connection until the client gives up
		return
	}
	fmt.Fprintln(c, qmpGreeting)
	// QEMU parses a JSON stream, not lines: go-qemu sends commands without a newline.
	dec := json.NewDecoder(c)
	for {
		var cmd map[string]any
		if err := dec.Decode(&cmd); err != nil {
			return
		}
		f.mu.Lock()
		f.commands = append(f.commands, cmd)
		f.mu.Unlock()
		if cmd["execute"] == "qmp_capabilities" {
			fmt.Fprintln(c, `{"return": {}}`)
			continue
		}
		line, ok := f.reply(cmd)
		if !ok {
			continue // never answer
		}
		// An asynchronous event first: the client must not take it for the reply.
		fmt.Fprintln(c, `{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "RTC_CHANGE", "data": {"offset": 0}}`)
		fmt.Fprintln(c, line)
	}
}

func (f *fakeQMP) recorded() []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string]any(nil), f.commands...)
}

// normalQEMU answers like QEMU 7.2; screendump writes a 2x1 PPM.
func normalQEMU(cmd map[string]any) (string, bool) {
	switch cmd["execute"] {
	case "query-status":
		return `{"return": {"status": "running", "singlestep": false, "running": true}}`, true
	case "screendump":
		args, _ := cmd["arguments"].(map[string]any)
		name, _ := args["filename"].(string)
		if err := os.WriteFile(name, []byte("P6\n# qemu\n2 1\n255\n\xff\x00\x00\x00\x00\xff"), 0o600); err != nil {
			return fmt.Sprintf(`{"error": {"class": "GenericError", "desc": %q}}`, err.Error()), true
		}
		return `{"return": {}}`, true
	}
	return `{"return": {}}`, true
}

func TestQMPCommandsSendTheirJSON(t *testing.T) {
	f := newFakeQMP(t, "", true, normalQEMU)
	q := qmpClient{socket: f.path}
	ctx := context.Background()

	st, err := q.status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != "running" || !st.Running {
		t.Errorf("status = %+v, want running", st)
	}
	for _, c := range []struct {
		name string
		run  func(context.Context) error
	}{{"system_powerdown", q.powerdown}, {"system_reset", q.reset}, {"quit", q.quit}} {
		if err := c.run(ctx); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	shot := filepath.Join(t.TempDir(), "s.ppm")
	if err := q.screendump(ctx, shot); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(shot); err != nil {
		t.Errorf("screendump did not reach the server: %v", err)
	}

	var got []string
	for _, c := range f.recorded() {
		b, _ := json.Marshal(c)
		got = append(got, string(b))
	}
	caps := `{"execute":"qmp_capabilities"}`
	want := []string{
		caps, `{"execute":"query-status"}`,
		caps, `{"execute":"system_powerdown"}`,
		caps, `{"execute":"system_reset"}`,
		caps, `{"execute":"quit"}`,
		caps, `{"arguments":{"filename":"` + shot + `"},"execute":"screendump"}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("commands the server read:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	f.mu.Lock()
	conns := f.conns
	f.mu.Unlock()
	if conns != 5 {
		t.Errorf("%d connections for 5 calls; want one connection per call", conns)
	}
}

func TestQMPErrorReplyIsAnError(t *testing.T) {
	f := newFakeQMP(t, "", true, func(map[string]any) (string, bool) {
		return `{"error": {"class": "GenericError", "desc": "Could not open 'x': Permission denied"}}`, true
	})
	err := qmpClient{socket: f.path}.screendump(context.Background(), "/nonexistent/x.ppm")
	if err == nil || !strings.Contains(err.Error(), "Permission denied") || !strings.Contains(err.Error(), "screendump") {
		t.Fatalf("error = %v; want the QMP error's text and the command's name", err)
	}
}

func TestQMPDeadlineWhenTheServerNeverAnswers(t *testing.T) {
	for _, tc := range []struct {
		name  string
		greet bool
	}{{"no greeting", false}, {"no reply to the command", true}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeQMP(t, "", tc.greet, func(map[string]any) (string, bool) { return "", false })
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := qmpClient{socket: f.path}.status(ctx)
			if err == nil || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("error = %v; want a deadline error", err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("the call returned after %s; the deadline was 300ms", d)
			}
		})
	}
}

func TestQMPWithoutSocketSaysSo(t *testing.T) {
	_, err := qmpClient{socket: filepath.Join(t.TempDir(), "none.sock")}.status(context.Background())
	if err == nil || !strings.Contains(err.Error(), "is QEMU running?") {
		t.Fatalf("error = %v; want a hint that QEMU is not running", err)
	}
}

func TestQMPSocketPathLongerThanSunPath(t *testing.T) {
	dir := t.TempDir()
	for len(dir) < 150 {
		dir = filepath.Join(dir, "a-rather-long-folder-name")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "qmp.sock")
	if len(path) <= maxSunPath {
		t.Fatalf("test path too short: %d", len(path))
	}
	f := newFakeQMP(t, path, true, normalQEMU)
	if _, err := (qmpClient{socket: f.path}).status(context.Background()); err != nil {
		t.Fatalf("status over a %d-byte socket path: %v", len(path), err)
	}
}
