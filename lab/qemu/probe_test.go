package qemu

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWinRMProbe(t *testing.T) {
	var method, path string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method, path = r.Method, r.URL.Path
		w.WriteHeader(http.StatusUnauthorized) // any status counts: WinRM wants credentials
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	if err := winrmAnswers(context.Background(), addr); err != nil {
		t.Fatalf("a 401 answer: %v", err)
	}
	if method != "POST" || path != "/wsman" {
		t.Errorf("probe sent %s %s, want POST /wsman", method, path)
	}

	// What QEMU's hostfwd does before the guest listens: accept, then close.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if err := winrmAnswers(context.Background(), ln.Addr().String()); err == nil {
		t.Errorf("a connection closed without an HTTP answer counted as WinRM")
	}

	// Accept and never answer: the probe's own bound ends it.
	silent, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		c, err := silent.Accept()
		if err == nil {
			defer c.Close()
			time.Sleep(probeTimeout + 2*time.Second)
		}
	}()
	start := time.Now()
	if err := winrmAnswers(context.Background(), silent.Addr().String()); err == nil {
		t.Errorf("a silent server counted as WinRM")
	}
	if d := time.Since(start); d > probeTimeout+time.Second {
		t.Errorf("probe took %s, bound is %s", d, probeTimeout)
	}
}

func TestTailLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "console.log")
	if got := quoteTail(path, 3); !strings.Contains(got, "is empty") {
		t.Errorf("missing log: %q", got)
	}
	var b strings.Builder
	for i := range 100000 {
		b.WriteString("line ")
		b.WriteString(strings.Repeat("x", i%7))
		b.WriteString("\r\n")
	}
	b.WriteString("Probing EDD (edd=off to disable)... ok\r\n")
	os.WriteFile(path, []byte(b.String()), 0o600)
	got := tailLines(path, 2)
	if got != "line xxxx\nProbing EDD (edd=off to disable)... ok" {
		t.Errorf("tail = %q", got)
	}
	if q := quoteTail(path, 1); !strings.Contains(q, "ends with:\n    Probing EDD") {
		t.Errorf("quote = %q", q)
	}
}
